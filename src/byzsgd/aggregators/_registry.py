"""Name -> rule registry; each rule is registered with its resilience condition.

Names joined by ``+`` compose pre-aggregation steps with a rule: ``"nnm+krum"``
applies nearest-neighbour mixing, then Krum, with the same f.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import torch

from byzsgd.aggregators._checks import Condition


class Rule(Protocol):
    """A rule maps inputs (..., m, d) and f to an output (..., d)."""

    def __call__(
        self, inputs: torch.Tensor, *, f: int, **options: Any
    ) -> torch.Tensor: ...


@dataclass(frozen=True)
class PreAggregator:
    """A step (..., m, d) -> (..., m', d) that keeps f, with m' as a function of m."""

    name: str
    apply: Callable[..., torch.Tensor]
    output_count: Callable[[int, dict], int]


_RULES: dict[str, Rule] = {}
_CONDITIONS: dict[str, Condition] = {}
_PRE: dict[str, PreAggregator] = {}


def register(name: str, condition: Condition) -> Callable[[Rule], Rule]:
    """Make the decorated function rule ``name`` with ``condition`` on (m, f)."""

    def decorate(rule: Rule) -> Rule:
        _RULES[name] = rule
        _CONDITIONS[name] = condition
        return rule

    return decorate


def register_pre(name: str, output_count: Callable[[int, dict], int]):
    """Make the decorated function pre-aggregation step ``name``."""

    def decorate(step: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        _PRE[name] = PreAggregator(name, step, output_count)
        return step

    return decorate


def names() -> list[str]:
    """The names of every registered rule, sorted (composites not listed)."""
    return sorted(_RULES)


def pre_aggregators() -> list[str]:
    """The names of the pre-aggregation steps, sorted."""
    return sorted(_PRE)


def _split(name: str) -> tuple[list[PreAggregator], str]:
    *steps, last = name.split("+")
    unknown = [s for s in steps if s not in _PRE]
    if unknown or last not in _RULES:
        raise ValueError(
            f"unknown aggregation rule {name!r}; expected one of: {', '.join(names())}"
            f", optionally after pre-aggregation steps joined by + "
            f"({', '.join(pre_aggregators())}), e.g. nnm+krum"
        )
    return [_PRE[s] for s in steps], last


def get(name: str) -> Rule:
    """The rule called ``name`` (or a composite ``pre+...+rule``)."""
    steps, last = _split(name)
    if not steps:
        return _RULES[last]
    return _composite(name)


def condition(name: str, options: dict | None = None) -> Condition:
    """The resilience condition of rule ``name`` on (m, f), given its ``options``."""
    steps, last = _split(name)
    inner = _CONDITIONS[last]
    if not steps:
        return inner
    options = options or {}

    def holds(m: int, f: int) -> bool:
        for step in steps:
            m = step.output_count(m, options)
        return inner.holds(m, f)

    chain = "+".join(step.name for step in steps)
    return Condition(f"{inner.text} on the inputs left by {chain}", holds)


def _accepts(fn: Callable[..., Any]) -> set[str]:
    return set(inspect.signature(fn).parameters) - {"inputs", "f"}


def options(name: str) -> set[str]:
    """The keyword options rule ``name`` (or a composite) accepts."""
    steps, last = _split(name)
    return set().union(*(_accepts(s.apply) for s in steps), _accepts(_RULES[last]))


@lru_cache(maxsize=64)
def _composite(name: str) -> Rule:
    steps, last = _split(name)
    rule = _RULES[last]
    known = set().union(*(_accepts(s.apply) for s in steps), _accepts(rule))

    def composite(inputs: torch.Tensor, *, f: int, **options: Any) -> torch.Tensor:
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"{name}: unknown option {unknown[0]!r}; "
                f"options: {', '.join(sorted(known))}"
            )
        condition(name, options).check(name, inputs.shape[-2], f)
        x = inputs
        for step in steps:
            own = {k: v for k, v in options.items() if k in _accepts(step.apply)}
            x = step.apply(x, f=f, **own)
        own = {k: v for k, v in options.items() if k in _accepts(rule)}
        return rule(x, f=f, **own)

    composite.__name__ = name.replace("+", "_then_")
    composite.__doc__ = f"Composite rule {name}: " + " then ".join(name.split("+"))
    return composite
