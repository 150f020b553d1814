"""Coordinate-wise rules: mean, median, trimmed mean, meamed, trimmed midpoint.

Each works on every coordinate separately, through the order statistics of the m
input values of that coordinate (a pruned sorting network for m <= 32, else a sort).
"""

from __future__ import annotations

import torch

from byzsgd.aggregators._checks import (
    NO_BYZANTINE,
    all_finite,
    at_least,
    check_inputs,
    complete_nonfinite,
    prepare,
)
from byzsgd.aggregators._networks import coordinate_median, ranked
from byzsgd.aggregators._registry import register

MAJORITY = at_least(2, 1)


@register("mean", NO_BYZANTINE)
def mean(inputs: torch.Tensor, *, f: int = 0) -> torch.Tensor:
    r"""Arithmetic mean :math:`\frac{1}{m}\sum_i x_i`; resilient to no Byzantine input.

    Condition: f = 0. Cost: O(md).

    >>> mean(torch.tensor([[0.0, 2.0], [2.0, 4.0]]), f=0)
    tensor([1., 3.])
    """
    check_inputs("mean", inputs, f)
    NO_BYZANTINE.check("mean", inputs.shape[-2], f)
    out = inputs.mean(dim=-2)  # one pass; a non-finite input shows in the output
    if all_finite(out):
        return out
    return wide_mean(complete_nonfinite(inputs), dim=-2)


@register("median", MAJORITY)
def median(inputs: torch.Tensor, *, f: int, lower: bool = False) -> torch.Tensor:
    r"""Coordinate-wise median (Yin et al., 2018).

    Each coordinate is the middle of the m sorted values. For even m it is the mean
    of the two middle values (the true median); ``lower=True`` gives the lower of the
    two instead, which is what ``torch.median`` and several libraries return.
    f only enters the condition. Condition: m >= 2f + 1. Cost: O(md log^2 m)
    elementwise operations.

    >>> median(torch.tensor([[0.0], [1.0], [5.0], [9.0]]), f=1)
    tensor([3.])
    >>> median(torch.tensor([[0.0], [1.0], [5.0], [9.0]]), f=1, lower=True)
    tensor([1.])
    """
    x = prepare("median", inputs, f, MAJORITY)
    if lower:
        return ranked(x, ((x.shape[-2] - 1) // 2,))[0]
    return coordinate_median(x)


@register("trimmed_mean", MAJORITY)
def trimmed_mean(inputs: torch.Tensor, *, f: int) -> torch.Tensor:
    r"""Coordinate-wise trimmed mean (Yin et al., 2018).

    Per coordinate, drop the f largest and the f smallest values and average the
    m - 2f others. f = 0 gives the mean. Condition: m >= 2f + 1.
    Cost: O(md log^2 m).

    >>> trimmed_mean(torch.tensor([[0.0], [1.0], [2.0], [100.0]]), f=1)
    tensor([1.5000])
    """
    x = prepare("trimmed_mean", inputs, f, MAJORITY)
    m = x.shape[-2]
    if f == 0:
        return wide_mean(x, dim=-2)
    kept = ranked(x, tuple(range(f, m - f)))
    return wide_mean(torch.stack(kept), dim=0)


@register("meamed", MAJORITY)
def meamed(inputs: torch.Tensor, *, f: int) -> torch.Tensor:
    r"""Mean around the median (Xie et al., 2018).

    Per coordinate, average the m - f values closest to the coordinate's (true)
    median; on ties between two candidate sets, the one of lower values. f = 0 gives
    the mean. Condition: m >= 2f + 1. Cost: O(md log^2 m).

    >>> meamed(torch.tensor([[0.0], [1.0], [2.0], [3.0], [100.0]]), f=2)
    tensor([2.])
    """
    x = prepare("meamed", inputs, f, MAJORITY)
    if f == 0:
        return x.mean(dim=-2)
    return closest_to_median_mean(x, x.shape[-2] - f)


@register("trimmed_midpoint", at_least(3, 1))
def trimmed_midpoint(inputs: torch.Tensor, *, f: int) -> torch.Tensor:
    r"""Trimmed midpoint, the approximate-agreement rule (Dolev et al., 1986).

    Per coordinate, drop the f lowest and the f highest values and return the middle
    of the remaining range, :math:`(v_{(f+1)} + v_{(m-f)}) / 2`. Under full
    reception it halves the correct nodes' range every round whatever the Byzantine
    nodes send. Condition: m >= 3f + 1. Cost: O(md log^2 m).

    >>> trimmed_midpoint(torch.tensor([[0.0], [1.0], [3.0], [50.0]]), f=1)
    tensor([2.])
    """
    x = prepare("trimmed_midpoint", inputs, f, at_least(3, 1))
    low, high = ranked(x, (f, x.shape[-2] - 1 - f))
    return 0.5 * low + 0.5 * high


def wide_mean(x: torch.Tensor, dim: int) -> torch.Tensor:
    """The mean along ``dim``; where float32 overflows, again in float64.

    Large finite values (up to the dtype's maximum) then cannot overflow the sum.
    """
    out = x.mean(dim=dim)
    if x.dtype == torch.float32 and not all_finite(out):
        return x.mean(dim=dim, dtype=torch.float64).float()
    return out


def closest_to_median_mean(x: torch.Tensor, count: int) -> torch.Tensor:
    """Per coordinate, the mean of the ``count`` values closest to the median.

    Those values form a window of ``count`` consecutive sorted values: among the
    m - count + 1 windows, the one of least summed distance to the median (the
    first, of lower values, on ties). The farthest value alone does not decide: a
    value repeated at a window's far end would tie two windows.
    """
    m = x.shape[-2]
    ordered = torch.stack(ranked(x, tuple(range(m))), dim=-2)
    distance = (ordered - coordinate_median(x).unsqueeze(-2)).abs()
    costs = torch.stack(
        [
            distance[..., start : start + count, :].sum(dim=-2)
            for start in range(m - count + 1)
        ],
        dim=-2,
    )
    start = costs.argmin(dim=-2, keepdim=True)
    offsets = torch.arange(count).view(count, 1)
    window = ordered.gather(-2, start + offsets)
    return wide_mean(window, dim=-2)
