"""Distance-based selection: Krum, Multi-Krum and Bulyan."""

from __future__ import annotations

import torch

from byzsgd.aggregators._checks import at_least, prepare
from byzsgd.aggregators._distances import pairwise_squared_distances, rank, tie_keys
from byzsgd.aggregators._registry import register
from byzsgd.aggregators.coordinate import closest_to_median_mean

KRUM_CONDITION = at_least(2, 3)
BULYAN_CONDITION = at_least(4, 3)


def krum_scores(dist: torch.Tensor, f: int, alive: torch.Tensor | None = None):
    """Each input's summed squared distance to its nearest others (..., m).

    ``dist`` holds squared distances (..., m, m). Among the ``alive`` inputs (all by
    default; a boolean mask (..., m)), each is scored over its n - f - 2 nearest
    other alive inputs, n being the number alive (at least one neighbour); the others
    score +inf.
    """
    m = dist.shape[-1]
    if alive is None:
        alive = torch.ones(dist.shape[:-1], dtype=torch.bool)
    others = alive.unsqueeze(-2) & ~torch.eye(m, dtype=torch.bool)
    masked = dist.masked_fill(~others, torch.inf)
    count = int(alive.sum(dim=-1).min())
    neighbours = max(count - f - 2, 1)
    nearest = masked.topk(neighbours, dim=-1, largest=False).values
    scores = nearest.sum(dim=-1)
    return scores.masked_fill(~alive, torch.inf)


def _average_selected(x: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Mean over the inputs where the mask ``chosen`` (..., m) is true."""
    weights = chosen.to(x.dtype)
    weights = weights / weights.sum(dim=-1, keepdim=True)
    return (weights.unsqueeze(-2) @ x).squeeze(-2)


@register("krum", KRUM_CONDITION)
def krum(inputs: torch.Tensor, *, f: int) -> torch.Tensor:
    r"""Krum (Blanchard et al., 2017).

    Score each input :math:`x_i` by :math:`\sum_{j \in N_i} \|x_i - x_j\|_2^2` over
    its m - f - 2 nearest other inputs (the paper's count; some libraries use
    m - f - 1) and return the input of lowest score. Ties (scores equal to a relative
    1e-6) go to the input of least summed squared distance to all others
    (``tie_keys``), not to the lowest index, so the result does not depend on the
    order of the inputs.
    Condition: m >= 2f + 3. Cost: O(m^2 d) for the distances.

    >>> krum(torch.tensor([[0.0], [0.1], [0.2], [9.0], [-0.1]]), f=1)
    tensor([0.1000])
    """
    x = prepare("krum", inputs, f, KRUM_CONDITION)
    dist = pairwise_squared_distances(x, f)
    best = rank(krum_scores(dist, f), tie_keys(dist))[..., 0]
    index = best[..., None, None].expand(*best.shape, 1, x.shape[-1])
    return x.gather(-2, index).squeeze(-2)


@register("multi_krum", KRUM_CONDITION)
def multi_krum(
    inputs: torch.Tensor, *, f: int, num_selected: int | None = None
) -> torch.Tensor:
    r"""Multi-Krum (Blanchard et al., 2017): the mean of the best Krum scores.

    Scores as in :func:`krum`; averages the ``num_selected`` inputs of lowest score
    (ties as in :func:`krum`). Default ``num_selected = m - f``, the paper's suggestion;
    ``num_selected = 1`` is Krum. Condition: m >= 2f + 3. Cost: O(m^2 d).

    >>> multi_krum(torch.tensor([[0.0], [0.2], [0.4], [9.0], [-0.2]]), f=1)
    tensor([0.1000])
    """
    x = prepare("multi_krum", inputs, f, KRUM_CONDITION)
    m = x.shape[-2]
    count = m - f if num_selected is None else num_selected
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= m:
        raise ValueError(
            f"multi_krum: num_selected must be an integer in [1, m = {m}], "
            f"got {num_selected!r}"
        )
    dist = pairwise_squared_distances(x, f)
    scores = krum_scores(dist, f)
    order = rank(scores, tie_keys(dist))[..., :count]
    chosen = torch.zeros(scores.shape, dtype=torch.bool).scatter(-1, order, True)
    return _average_selected(x, chosen)


@register("bulyan", BULYAN_CONDITION)
def bulyan(inputs: torch.Tensor, *, f: int) -> torch.Tensor:
    r"""Bulyan (El-Mhamdi et al., 2018) over Krum.

    Select theta = m - 2f inputs by Krum, one at a time, removing each selection from
    the candidates (each round scores over n - f - 2 nearest alive others, n alive,
    at least one). Then, per coordinate, average the beta = theta - 2f selected values
    closest to their median. f = 0 gives the mean. Condition: m >= 4f + 3.
    Cost: O(m^2 d + m^3).

    >>> x = torch.tensor([[0.0], [0.1], [0.2], [0.3], [0.4], [0.5], [60.0]])
    >>> bulyan(x, f=1)
    tensor([0.3000])
    """
    x = prepare("bulyan", inputs, f, BULYAN_CONDITION)
    m = x.shape[-2]
    if f == 0:
        return x.mean(dim=-2)
    dist = pairwise_squared_distances(x, f)
    keys = tie_keys(dist)
    alive = torch.ones(dist.shape[:-1], dtype=torch.bool)
    for _ in range(m - 2 * f):
        best = rank(krum_scores(dist, f, alive), keys)[..., :1]
        alive = alive.scatter(-1, best, False)
    selected = ~alive
    order = selected.to(torch.int8).argsort(dim=-1, descending=True, stable=True)
    index = order[..., : m - 2 * f, None].expand(
        *order.shape[:-1], m - 2 * f, x.shape[-1]
    )
    chosen = x.gather(-2, index)
    return closest_to_median_mean(chosen, m - 4 * f)
