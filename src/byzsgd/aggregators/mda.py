"""Minimum-diameter averaging, exact, by a search on the m x m distance matrix."""

from __future__ import annotations

import torch

from byzsgd.aggregators._checks import at_least, prepare
from byzsgd.aggregators._distances import pairwise_squared_distances, tie_keys
from byzsgd.aggregators._registry import register

MDA_CONDITION = at_least(2, 1)
MAX_SEARCH_NODES = 2_000_000


class SearchBudgetError(RuntimeError):
    """The exact subset search needed more nodes than its bound."""


def _popcount(mask: int) -> int:
    return bin(mask).count("1")


def _vertex_cover(adjacency: list[int], alive: int, budget: int, nodes: list[int]):
    """A set of at most ``budget`` vertices touching every conflict edge, or None.

    Bounded search tree: a vertex of degree above the budget must go; a graph with
    more edges than budget * max degree has no cover; otherwise branch on the vertex
    v of highest degree: v goes, or all of its neighbours go.
    """
    nodes[0] += 1
    if nodes[0] > MAX_SEARCH_NODES:
        raise SearchBudgetError
    best, best_degree, edges = -1, 0, 0
    rest = alive
    while rest:
        low = rest & -rest
        v = low.bit_length() - 1
        degree = _popcount(adjacency[v] & alive)
        edges += degree
        if degree > best_degree:
            best, best_degree = v, degree
        rest ^= low
    edges //= 2
    if best_degree == 0:
        return 0
    if budget == 0 or edges > budget * best_degree:
        return None
    bit = 1 << best
    if best_degree > budget:
        found = _vertex_cover(adjacency, alive & ~bit, budget - 1, nodes)
        return None if found is None else found | bit
    found = _vertex_cover(adjacency, alive & ~bit, budget - 1, nodes)
    if found is not None:
        return found | bit
    neighbours = adjacency[best] & alive
    size = _popcount(neighbours)
    if size > budget:
        return None
    found = _vertex_cover(adjacency, alive & ~neighbours, budget - size, nodes)
    return None if found is None else found | neighbours


def _first_kept(
    adjacency: list[int], order: list[int], f: int, nodes: list[int]
) -> list[int]:
    """The first m - f vertices, in ``order``, with no conflict between them.

    Greedy along ``order``: keep i when some cover of the remaining conflicts,
    within the remaining budget, spares i (i kept forces its neighbours out).
    """
    m = len(order)
    kept: list[int] = []
    removed = 0
    for i in order:
        if len(kept) == m - f:
            break
        forced = adjacency[i] & ~removed
        if forced & sum(1 << k for k in kept):
            removed |= 1 << i
            continue
        trial = removed | forced
        budget = f - _popcount(trial)
        alive = ((1 << m) - 1) & ~trial & ~(1 << i) & ~sum(1 << k for k in kept)
        if budget >= 0 and _vertex_cover(adjacency, alive, budget, nodes) is not None:
            kept.append(i)
            removed = trial
        else:
            removed |= 1 << i
    return kept


def min_diameter_subset(dist: torch.Tensor, f: int, order: list[int]) -> list[int]:
    """The m - f inputs of smallest diameter; on ties, the first along ``order``.

    ``dist`` is one (m, m) distance matrix. A binary search over the candidate
    diameters (the distinct pairwise distances) finds the smallest D at which the
    graph of pairs farther apart than D has a vertex cover of size <= f (the inputs
    to drop); the kept subset is then the first one at D in the lexicographic order
    of the subsets of ``order``, as an enumeration of them would find.
    """
    m = dist.shape[-1]
    values = torch.unique(dist[torch.triu_indices(m, m, 1).unbind()])
    rows = dist.tolist()
    everyone = (1 << m) - 1
    nodes = [0]

    def conflicts(threshold: float) -> list[int]:
        return [
            sum(1 << j for j, value in enumerate(row) if value > threshold)
            for row in rows
        ]

    low, high = 0, len(values) - 1  # at the largest distance nothing conflicts
    while low < high:
        middle = (low + high) // 2
        if _vertex_cover(conflicts(float(values[middle])), everyone, f, nodes) is None:
            low = middle + 1
        else:
            high = middle
    return _first_kept(conflicts(float(values[low])), order, f, nodes)


@register("mda", MDA_CONDITION)
def mda(inputs: torch.Tensor, *, f: int) -> torch.Tensor:
    r"""Minimum-diameter averaging (El-Mhamdi et al., 2020), exact.

    Among the subsets of m - f inputs, take one of smallest diameter
    :math:`\max_{i,j \in S} \|x_i - x_j\|_2` and return its mean. f = 0 gives the
    mean. Condition: m >= 2f + 1.

    Cost: O(m^2 d) for the distances, then an exact search on the m x m matrix
    rather than an enumeration of the C(m, f) subsets: a binary search over the
    O(m^2) candidate diameters, each a bounded search for a vertex cover of size f
    (O(2^f m^2) at worst, usually far less). The search is capped at
    ``MAX_SEARCH_NODES`` nodes per receiver; past the cap, a ``ValueError`` says so
    rather than return an inexact answer.

    Notes
    -----
    Subsets of equal diameter are common (the diameter is set by one pair). Taking
    the first in index order, as an enumeration does, would make the result depend
    on the order of the inputs; byzsgd takes the first in the order of the inputs
    sorted by ``tie_keys`` (each input's summed squared distance to the others),
    which does not.

    >>> mda(torch.tensor([[0.0], [1.0], [2.0], [50.0]]), f=1)
    tensor([1.])
    """
    x = prepare("mda", inputs, f, MDA_CONDITION)
    m = x.shape[-2]
    if f == 0:
        return x.mean(dim=-2)
    dist = pairwise_squared_distances(x, f)
    flat = dist.reshape(-1, m, m)
    orders = tie_keys(dist).reshape(-1, m).argsort(dim=-1, stable=True).tolist()
    keep = torch.zeros(flat.shape[:-1], dtype=x.dtype)
    try:
        for i, matrix in enumerate(flat):
            keep[i, min_diameter_subset(matrix, f, orders[i])] = 1.0
    except SearchBudgetError:
        raise ValueError(
            f"mda: the exact search for m = {m}, f = {f} exceeded "
            f"{MAX_SEARCH_NODES} nodes; use a smaller f or another rule"
        ) from None
    weights = (keep / (m - f)).reshape(dist.shape[:-1])
    return (weights.unsqueeze(-2) @ x).squeeze(-2)
