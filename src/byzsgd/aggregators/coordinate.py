"""Coordinate-wise rules: mean, median and trimmed mean."""

from __future__ import annotations

import torch

from byzsgd.aggregators._checks import NO_BYZANTINE, at_least, prepare
from byzsgd.aggregators._networks import MAX_NETWORK_INPUTS, order_statistics
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
    (what ``torch.median`` returns). Condition: m >= 2f + 1. Cost: O(md log^2 m)
    elementwise operations through a sorting network pruned to the middle ranks
    (m <= 32), else a sort.

    >>> median(torch.tensor([[0.0], [1.0], [5.0], [9.0]]), f=1)
    tensor([3.])
    """
    x = prepare("median", inputs, f, at_least(2, 1))
    m = x.shape[-2]
    ranks = ((m - 1) // 2,) if m % 2 == 1 or lower else (m // 2 - 1, m // 2)
    values = _ranked(x, ranks)
    return values[0] if len(values) == 1 else 0.5 * (values[0] + values[1])


@register("trimmed_mean", at_least(2, 1))
def trimmed_mean(inputs: torch.Tensor, *, f: int) -> torch.Tensor:
    r"""Coordinate-wise trimmed mean (Yin et al., 2018).

    Per coordinate, drop the f largest and the f smallest values and average the
    m - 2f others. f = 0 gives the mean. Condition: m >= 2f + 1. Cost: a sorting
    network (m <= 32) or a sort, O(md log^2 m).

    >>> trimmed_mean(torch.tensor([[0.0], [1.0], [2.0], [100.0]]), f=1)
    tensor([1.5000])
    """
    x = prepare("trimmed_mean", inputs, f, at_least(2, 1))
    m = x.shape[-2]
    if f == 0:
        return x.mean(dim=-2)
    kept = _ranked(x, tuple(range(f, m - f)))
    return torch.stack(kept).sum(dim=0) / (m - 2 * f)


def _ranked(x: torch.Tensor, ranks: tuple[int, ...]) -> list[torch.Tensor]:
    """The coordinate-wise order statistics ``ranks`` of the inputs (..., m, d)."""
    if x.shape[-2] <= MAX_NETWORK_INPUTS:
        return order_statistics(x, ranks)
    ordered = x.sort(dim=-2).values
    return [ordered[..., r, :] for r in ranks]
