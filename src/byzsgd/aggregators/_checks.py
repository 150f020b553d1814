"""Shared input checks, resilience conditions and non-finite handling of the rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Condition:
    """A rule's resilience condition on (m inputs, f Byzantine), with its wording."""

    text: str
    holds: Callable[[int, int], bool]

    def check(self, rule: str, m: int, f: int) -> None:
        """Raise ``ValueError`` naming the rule, the condition and the values."""
        if not self.holds(m, f):
            raise ValueError(f"{rule} requires {self.text}; got m = {m}, f = {f}")


def at_least(a: int, b: int) -> Condition:
    """The condition m >= a*f + b."""
    text = f"m >= {a}f + {b}" if a else f"m >= {b}"
    return Condition(text, lambda m, f: m >= a * f + b)


NO_BYZANTINE = Condition("f = 0", lambda m, f: f == 0 and m >= 1)


def check_inputs(rule: str, inputs: torch.Tensor, f: int) -> None:
    """Refuse inputs that are not a floating tensor of shape (..., m, d), or a bad f."""
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"{rule}: inputs must be a torch.Tensor, got {type(inputs)}")
    if not inputs.is_floating_point():
        raise TypeError(
            f"{rule}: inputs must be a real floating tensor, got dtype {inputs.dtype}"
        )
    if inputs.dim() < 2 or inputs.shape[-2] < 1 or inputs.shape[-1] < 1:
        raise ValueError(
            f"{rule}: inputs must have shape (..., m, d) with m, d >= 1, "
            f"got {tuple(inputs.shape)}"
        )
    if isinstance(f, bool) or not isinstance(f, int) or f < 0:
        raise ValueError(f"{rule}: f must be an integer >= 0, got {f!r}")


def finite_rows(inputs: torch.Tensor) -> torch.Tensor:
    """Boolean mask (..., m): the input vectors whose every coordinate is finite."""
    return torch.isfinite(inputs).all(dim=-1)


def all_finite(inputs: torch.Tensor) -> bool:
    """Whether every value is finite: one summing pass, exact check only on doubt."""
    if bool(torch.isfinite(inputs.sum())):
        return True
    return bool(torch.isfinite(inputs).all())


def complete_nonfinite(inputs: torch.Tensor) -> torch.Tensor:
    """Replace every input vector holding a NaN or ±inf by the finite ones' median.

    A non-finite vector is Byzantine. Each is replaced by the coordinate-wise (true)
    median of the finite vectors of its batch element, so the rule that follows sees
    ``m`` finite inputs; a replaced vector lies in the finite inputs' range in every
    coordinate. Where no vector of a batch element is finite, all become zero.
    The input is never modified; it is returned as is when every vector is finite.
    """
    if all_finite(inputs):
        return inputs
    finite = finite_rows(inputs)
    clean = torch.where(finite.unsqueeze(-1), inputs, torch.nan)
    fill = torch.nanquantile(clean.double(), 0.5, dim=-2).to(inputs.dtype)
    fill = torch.nan_to_num(fill, nan=0.0)
    return torch.where(finite.unsqueeze(-1), inputs, fill.unsqueeze(-2))


def prepare(
    rule: str, inputs: torch.Tensor, f: int, condition: Condition
) -> torch.Tensor:
    """Check inputs and the condition, then complete non-finite vectors."""
    check_inputs(rule, inputs, f)
    condition.check(rule, inputs.shape[-2], f)
    return complete_nonfinite(inputs)
