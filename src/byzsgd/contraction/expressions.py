"""Arithmetic expressions of a study's cells: quorums ("n-f") and bounds ("1 - lam/2").

Only numbers, the cell's variables and + - * / // are allowed; anything else, a
division by zero, an overflow or a result that is not finite is refused with the
expression named.
"""

from __future__ import annotations

import ast
import math
import operator

from byzsgd.config import ConfigError

_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
}


def evaluate(text: str, variables: dict[str, float], what: str) -> float:
    """The value of an arithmetic expression over ``variables`` (+ - * / // only)."""
    try:
        tree = ast.parse(str(text).strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        raise ConfigError(_bad_expression(text, what, variables)) from None

    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.Name) and node.id in variables:
            return variables[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            right = value(node.right)
            if right == 0 and isinstance(node.op, (ast.Div, ast.FloorDiv)):
                raise ConfigError(f"{what} {text!r} divides by zero")
            return _OPERATORS[type(node.op)](value(node.left), right)
        raise ConfigError(_bad_expression(text, what, variables))

    try:
        result = value(tree)
    except ConfigError:
        raise
    except (OverflowError, RecursionError, ValueError):
        raise ConfigError(
            f"{what} {text!r} cannot be evaluated: out of range"
        ) from None
    if not math.isfinite(result):
        raise ConfigError(f"{what} {text!r} is not finite")
    return result


def check(text: str, names: tuple[str, ...], what: str) -> str:
    """``text`` if it is a well-formed expression of ``names``; values come later."""
    try:
        tree = ast.parse(str(text).strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        raise ConfigError(_bad_expression(text, what, dict.fromkeys(names))) from None
    allowed = (ast.Expression, ast.Constant, ast.Name, ast.UnaryOp, ast.BinOp)
    allowed += (ast.USub, ast.Load, *_OPERATORS)
    for node in ast.walk(tree):
        bad_constant = isinstance(node, ast.Constant) and type(node.value) not in (
            int,
            float,
        )
        bad_name = isinstance(node, ast.Name) and node.id not in names
        if not isinstance(node, allowed) or bad_constant or bad_name:
            raise ConfigError(_bad_expression(text, what, dict.fromkeys(names)))
    return str(text)


def _bad_expression(text: str, what: str, variables: dict[str, float]) -> str:
    names = ", ".join(sorted(variables))
    return (
        f"{what} {text!r} is not a number or an expression of {names} with + - * / //"
    )
