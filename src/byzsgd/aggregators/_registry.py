"""Name -> rule registry; each rule is registered with its resilience condition."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from byzsgd.aggregators._checks import Condition


class Rule(Protocol):
    """A rule maps inputs (..., m, d) and f to an output (..., d)."""

    def __call__(self, inputs: torch.Tensor, *, f: int) -> torch.Tensor: ...


_RULES: dict[str, Rule] = {}
_CONDITIONS: dict[str, Condition] = {}


def register(name: str, condition: Condition) -> Callable[[Rule], Rule]:
    """Class the decorated function as rule ``name`` with ``condition`` on (m, f)."""

    def decorate(rule: Rule) -> Rule:
        _RULES[name] = rule
        _CONDITIONS[name] = condition
        return rule

    return decorate


def names() -> list[str]:
    """The names of every registered rule, sorted."""
    return sorted(_RULES)


def get(name: str) -> Rule:
    """The rule called ``name``; an unknown name lists the valid ones."""
    if name not in _RULES:
        raise ValueError(
            f"unknown aggregation rule {name!r}; expected one of: {', '.join(names())}"
        )
    return _RULES[name]


def condition(name: str) -> Condition:
    """The resilience condition of rule ``name`` on (m, f)."""
    get(name)
    return _CONDITIONS[name]
