"""Coordinate-wise rules: mean, median and trimmed mean."""

from __future__ import annotations

import torch

from byzsgd.aggregators._checks import NO_BYZANTINE, at_least, prepare
from byzsgd.aggregators._registry import register


@register("mean", NO_BYZANTINE)
def mean(inputs: torch.Tensor, *, f: int = 0) -> torch.Tensor:
    r"""Arithmetic mean :math:`\frac{1}{m}\sum_i x_i`; resilient to no Byzantine input.

    Condition: f = 0. Cost: O(md). Non-finite vectors are first completed by the
    finite ones' median (see ``complete_nonfinite``).

    >>> mean(torch.tensor([[0.0, 2.0], [2.0, 4.0]]), f=0)
    tensor([1., 3.])
    """
    x = prepare("mean", inputs, f, NO_BYZANTINE)
    return x.mean(dim=-2)


@register("median", at_least(2, 1))
def median(inputs: torch.Tensor, *, f: int, lower: bool = False) -> torch.Tensor:
    r"""Coordinate-wise median (Yin et al., 2018).

    Each coordinate is the middle of the m sorted values; for even m it is the mean of
    the two middle values (the true median), or with ``lower=True`` the lower of them
    (what ``torch.median`` returns). Condition: m >= 2f + 1. Cost: O(md log m).

    >>> median(torch.tensor([[0.0], [1.0], [5.0], [9.0]]), f=1)
    tensor([3.])
    """
    x = prepare("median", inputs, f, at_least(2, 1))
    m = x.shape[-2]
    if m % 2 == 1 or lower:
        return x.median(dim=-2).values
    ordered = x.sort(dim=-2).values
    return 0.5 * (ordered[..., m // 2 - 1, :] + ordered[..., m // 2, :])


@register("trimmed_mean", at_least(2, 1))
def trimmed_mean(inputs: torch.Tensor, *, f: int) -> torch.Tensor:
    r"""Coordinate-wise trimmed mean (Yin et al., 2018).

    Per coordinate, drop the f largest and the f smallest values and average the
    m - 2f others. f = 0 gives the mean. Condition: m >= 2f + 1. Cost: O(md log m).

    >>> trimmed_mean(torch.tensor([[0.0], [1.0], [2.0], [100.0]]), f=1)
    tensor([1.5000])
    """
    x = prepare("trimmed_mean", inputs, f, at_least(2, 1))
    m = x.shape[-2]
    if f == 0:
        return x.mean(dim=-2)
    ordered = x.sort(dim=-2).values
    return ordered[..., f : m - f, :].mean(dim=-2)
