"""Minimum-diameter averaging: average the m - f inputs of smallest diameter."""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import torch

from byzsgd.aggregators._checks import at_least, pairwise_squared_distances, prepare
from byzsgd.aggregators._registry import register

MDA_CONDITION = at_least(2, 1)
MAX_SUBSETS = 200_000


@lru_cache(maxsize=64)
def _subsets(m: int, size: int) -> torch.Tensor:
    return torch.tensor(list(itertools.combinations(range(m), size)), dtype=torch.long)


def mda_selection(inputs: torch.Tensor, f: int) -> torch.Tensor:
    """Indices (..., m - f) of the subset of smallest diameter (first on ties)."""
    m = inputs.shape[-2]
    count = math.comb(m, f)
    if count > MAX_SUBSETS:
        raise ValueError(
            f"mda enumerates C(m, f) subsets; C({m}, {f}) = {count} exceeds the bound "
            f"{MAX_SUBSETS}; choose a smaller f or another rule"
        )
    subsets = _subsets(m, m - f)
    dist = pairwise_squared_distances(inputs)
    rows = subsets[:, :, None]
    cols = subsets[:, None, :]
    diameters = dist[..., rows, cols].flatten(-2).amax(dim=-1)
    return subsets[diameters.argmin(dim=-1)]


@register("mda", MDA_CONDITION)
def mda(inputs: torch.Tensor, *, f: int) -> torch.Tensor:
    r"""Minimum-diameter averaging (El-Mhamdi et al., 2020).

    Among the subsets of m - f inputs, take one of smallest diameter
    :math:`\max_{i,j \in S} \|x_i - x_j\|_2` (the first in lexicographic order on
    ties) and return its mean. f = 0 gives the mean. Condition: m >= 2f + 1.
    Cost: O(m^2 d) for the distances plus an exact enumeration of C(m, f) subsets
    on the m x m distance matrix.

    >>> mda(torch.tensor([[0.0], [1.0], [2.0], [50.0]]), f=1)
    tensor([1.])
    """
    x = prepare("mda", inputs, f, MDA_CONDITION)
    if f == 0:
        return x.mean(dim=-2)
    chosen = mda_selection(x, f)
    index = chosen[..., None].expand(*chosen.shape, x.shape[-1])
    return x.gather(-2, index).mean(dim=-2)
