"""Krum: select the input closest to its nearest neighbours."""

from __future__ import annotations

import torch

from byzsgd.aggregators._checks import at_least, pairwise_squared_distances, prepare
from byzsgd.aggregators._registry import register

KRUM_CONDITION = at_least(2, 3)


def krum_scores(inputs: torch.Tensor, f: int) -> torch.Tensor:
    """Each input's summed squared distance to its m - f - 2 nearest others (..., m)."""
    m = inputs.shape[-2]
    dist = pairwise_squared_distances(inputs)
    dist = dist + torch.diag(torch.full((m,), torch.inf, dtype=dist.dtype))
    nearest = dist.sort(dim=-1).values[..., : m - f - 2]
    return nearest.sum(dim=-1)


@register("krum", KRUM_CONDITION)
def krum(inputs: torch.Tensor, *, f: int) -> torch.Tensor:
    r"""Krum (Blanchard et al., 2017).

    Score each input :math:`x_i` by :math:`\sum_{j \in N_i} \|x_i - x_j\|^2` over its
    m - f - 2 nearest other inputs and return the input of lowest score (the first on
    ties). Condition: m >= 2f + 3. Cost: O(m^2 d) with distances in float64.

    >>> krum(torch.tensor([[0.0], [0.1], [0.2], [9.0], [-0.1]]), f=1)
    tensor([0.])
    """
    x = prepare("krum", inputs, f, KRUM_CONDITION)
    best = krum_scores(x, f).argmin(dim=-1)
    index = best[..., None, None].expand(*best.shape, 1, x.shape[-1])
    return x.gather(-2, index).squeeze(-2)
