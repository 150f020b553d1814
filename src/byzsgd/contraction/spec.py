"""What a contraction study measures: study files, grids and the cells they expand to.

A study file (TOML) holds settings shared by every study and one ``[[study]]`` table
per study; each axis is a scalar or a list, and the cells of a study are the product
of its list-valued axes. Quorums and bounds are small arithmetic expressions over the
cell (``"n-f"``, ``"1 - lam/2"``) so one grid can span several sizes.
"""

from __future__ import annotations

import ast
import itertools
import math
import operator
import sys
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from byzsgd import aggregators
from byzsgd.config import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

POLICIES = ("random", "all", "include_self", "first")
INITS = ("two_clusters", "uniform", "gaussian", "evenly_spaced", "unit_vectors")
ADVERSARIES = ("none", "crash", "fixed", "split", "worst_case", "balancing")
NORMS = {"l1": 1.0, "l2": 2.0, "linf": math.inf}
_NORM_ALIASES = {"1": "l1", "2": "l2", "inf": "linf"} | {n: n for n in NORMS}

AXES = (
    "correct",
    "f",
    "quorum",
    "policy",
    "rule",
    "lam",
    "norm",
    "dim",
    "init",
    "adversary",
)
SETTINGS = ("reps", "rounds_cap", "shrink", "bound", "seed")
DEFAULTS: dict[str, Any] = {
    "correct": 10,
    "f": 0,
    "quorum": "n-f",
    "policy": "random",
    "rule": "median",
    "lam": 1.0,
    "norm": "linf",
    "dim": 1,
    "init": "gaussian",
    "adversary": "crash",
    "reps": 200,
    "rounds_cap": 100,
    "shrink": 1000.0,
    "bound": "1 - lam/2",
    "seed": 1,
}
LIMITS = {"correct": 200, "f": 200, "dim": 100_000, "reps": 100_000}


@dataclass(frozen=True)
class Cell:
    """One point of a study's grid: a gather round to measure R times.

    ``quorum`` is the expression as written; :attr:`q` is its value for this cell
    (every live sender under the ``all`` policy). ``status`` is ``"ok"`` or why
    the cell cannot be measured (a quorum larger than the live senders, a rule
    whose condition fails, too few dimensions for unit vectors).
    """

    study: str
    correct: int
    f: int
    quorum: str
    policy: str
    rule: str
    lam: float
    norm: str
    dim: int
    init: str
    adversary: str
    reps: int
    rounds_cap: int
    shrink: float
    bound: str
    seed: int
    q: int = 0
    status: str = "ok"

    @property
    def n(self) -> int:
        """All servers, correct and Byzantine."""
        return self.correct + self.f

    @property
    def silent(self) -> bool:
        """Whether the Byzantine servers send nothing (they crashed)."""
        return self.adversary in ("none", "crash") or self.f == 0

    @property
    def live(self) -> int:
        """How many servers reply: the correct ones, and the Byzantine unless silent."""
        return self.correct if self.silent else self.n

    @property
    def bound_value(self) -> float:
        return evaluate(self.bound, self.variables(), "bound")

    def variables(self) -> dict[str, float]:
        return {
            "n": self.n,
            "c": self.correct,
            "f": self.f,
            "q": self.q,
            "lam": self.lam,
        }

    def axes(self) -> dict[str, Any]:
        """The cell's coordinates in the grid, with the quorum's value."""
        values = {axis: getattr(self, axis) for axis in AXES}
        values["q"] = self.q
        return values

    def key(self, exclude: tuple[str, ...] = ()) -> str:
        """A stable text naming the cell (but the ``exclude`` axes) for seeding."""
        return "|".join(
            f"{axis}={getattr(self, axis)}" for axis in AXES if axis not in exclude
        )


@dataclass
class Study:
    """One named grid and its text for the reader."""

    name: str
    title: str
    axes: dict[str, list[Any]]
    settings: dict[str, Any] = field(default_factory=dict)

    def varying(self) -> list[str]:
        """The axes with more than one value, in grid order."""
        return [axis for axis in AXES if len(self.axes[axis]) > 1]

    def cells(self) -> list[Cell]:
        cells = []
        for values in itertools.product(*(self.axes[a] for a in AXES)):
            cell = Cell(
                study=self.name, **dict(zip(AXES, values, strict=True)), **self.settings
            )
            cells.append(resolve(cell))
        return cells


def default_study_path() -> Path:
    return Path(str(resources.files("byzsgd.contraction") / "default.toml"))


def load(
    source: str | Path | dict | None = None,
    overrides: dict[str, Any] | None = None,
    only: list[str] | None = None,
) -> list[Study]:
    """The studies of a TOML file (or a dict of the same shape; None: the default).

    ``overrides`` replace an axis or a setting in every study; ``only`` keeps the
    studies with those names. Every value is checked here, before any work.
    """
    if source is None:
        source = default_study_path()
    if isinstance(source, dict):
        data = source
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"study file {str(path)!r} does not exist")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"study file {str(path)!r}: {error}") from None
    studies = _parse(data, dict(overrides or {}))
    if only:
        known = [s.name for s in studies]
        missing = [name for name in only if name not in known]
        if missing:
            raise ConfigError(
                f"no study named {missing[0]!r}; studies: {', '.join(known)}"
            )
        studies = [s for s in studies if s.name in only]
    return studies


def _parse(data: dict[str, Any], overrides: dict[str, Any]) -> list[Study]:
    shared = {k: v for k, v in data.items() if k != "study"}
    tables = data.get("study", [{"name": "study"}])
    if isinstance(tables, dict):
        tables = [tables]
    if not isinstance(tables, list) or not tables:
        raise ConfigError("study: expected one or more [[study]] tables")
    _check_keys(shared, "top level")
    for key in overrides:
        if key not in AXES and key not in SETTINGS:
            raise ConfigError(_unknown_key(key, "--set"))
    studies, names = [], set()
    for index, table in enumerate(tables):
        where = f"study {index + 1}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a table, got {table!r}")
        name = str(table.get("name", f"study{index + 1}"))
        if name in names:
            raise ConfigError(f"{where}: study name {name!r} is used twice")
        names.add(name)
        title = str(table.get("title", name))
        values = {k: v for k, v in table.items() if k not in ("name", "title")}
        _check_keys(values, f"study {name!r}")
        merged = DEFAULTS | shared | values | overrides
        axes = {axis: _axis(name, axis, merged[axis]) for axis in AXES}
        settings = {key: _setting(name, key, merged[key]) for key in SETTINGS}
        studies.append(Study(name, title, axes, settings))
    return studies


def _check_keys(table: dict[str, Any], where: str) -> None:
    for key in table:
        if key not in AXES and key not in SETTINGS:
            raise ConfigError(_unknown_key(key, where))


def _unknown_key(key: str, where: str) -> str:
    return (
        f"{where}: unknown key {key!r}; expected one of: {', '.join(AXES + SETTINGS)}"
    )


def _axis(study: str, axis: str, value: Any) -> list[Any]:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ConfigError(f"study {study!r}: {axis} is an empty list")
    return [_check_value(study, axis, v) for v in values]


def _check_value(study: str, axis: str, value: Any) -> Any:
    where = f"study {study!r}: {axis} = {value!r}"
    if axis in ("correct", "f", "dim"):
        low = 0 if axis == "f" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{where}: expected an integer >= {low}")
        if value > LIMITS[axis]:
            raise ConfigError(f"{where}: expected at most {LIMITS[axis]}")
        return value
    if axis == "quorum":
        text = str(value) if not isinstance(value, bool) else ""
        try:
            evaluate(text, {"n": 1, "c": 1, "f": 0}, "quorum")
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
        return text
    if axis == "lam":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number in [0, 1]")
        if not 0.0 <= float(value) <= 1.0:
            raise ConfigError(f"{where}: expected a number in [0, 1]")
        return float(value)
    if axis == "norm":
        name = _NORM_ALIASES.get(str(value).lower())
        if name is None:
            raise ConfigError(f"{where}: expected one of 1, 2, inf")
        return name
    if axis == "rule":
        _check_rule(where, value)
        return value
    choices = {"policy": POLICIES, "init": INITS, "adversary": ADVERSARIES}[axis]
    if value not in choices:
        raise ConfigError(f"{where}: expected one of: {', '.join(choices)}")
    return value


def _check_rule(where: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a rule name")
    try:
        aggregators.get(value)
    except (KeyError, ValueError):
        raise ConfigError(
            f"{where}: unknown rule; expected one of: {', '.join(aggregators.names())}"
        ) from None


def _setting(study: str, key: str, value: Any) -> Any:
    where = f"study {study!r}: {key} = {value!r}"
    if key == "bound":
        variables = {"n": 2, "c": 1, "f": 1, "q": 1, "lam": 0.5}
        text = str(value)
        try:
            evaluate(text, variables, "bound")
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
        return text
    if key == "shrink":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number > 1")
        if not math.isfinite(value) or value <= 1:
            raise ConfigError(f"{where}: expected a finite number > 1")
        return float(value)
    low = {"reps": 2, "rounds_cap": 0, "seed": 0}[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{where}: expected an integer >= {low}")
    if key in LIMITS and value > LIMITS[key]:
        raise ConfigError(f"{where}: expected at most {LIMITS[key]}")
    return value


def resolve(cell: Cell) -> Cell:
    """The cell with its quorum evaluated and, if it cannot be measured, why."""
    live = cell.live
    if cell.policy == "all":
        q = live
    else:
        q = evaluate(cell.quorum, cell.variables(), "quorum")
        if q != int(q):
            return replace(cell, status=f"quorum {cell.quorum} = {q} is no integer")
        q = int(q)
    cell = replace(cell, q=q)
    if not 1 <= q <= live:
        return replace(cell, status=f"quorum {q} not in [1, {live}] live servers")
    if cell.init == "unit_vectors" and cell.dim < cell.correct:
        return replace(cell, status=f"unit vectors need dim >= {cell.correct}")
    condition = aggregators.condition(cell.rule)
    if not condition.holds(q, cell.f):
        return replace(cell, status=f"{cell.rule} needs {condition.text}")
    return cell


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
    except SyntaxError:
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

    return value(tree)


def _bad_expression(text: str, what: str, variables: dict[str, float]) -> str:
    names = ", ".join(sorted(variables))
    return (
        f"{what} {text!r} is not a number or an expression of {names} with + - * / //"
    )
