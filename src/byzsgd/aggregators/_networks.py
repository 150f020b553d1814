"""Sorting networks for coordinate-wise order statistics of a few inputs.

Sorting m values per coordinate with ``torch.sort`` along a strided dimension is
slow; a fixed compare-exchange network over the m input rows uses only elementwise
``minimum`` / ``maximum`` and, pruned to the ranks a rule needs and run over
cache-sized chunks of coordinates, costs a few passes over the input.
"""

from __future__ import annotations

from functools import lru_cache

import torch

MAX_NETWORK_INPUTS = 32
CHUNK = 1 << 14


def batcher_comparators(m: int) -> list[tuple[int, int]]:
    """Batcher's odd-even merge sort on m wires: (low wire, high wire) in order."""
    pairs = []
    p = 1
    while p < m:
        k = p
        while k >= 1:
            for j in range(k % p, m - k, 2 * k):
                for i in range(min(k, m - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


@lru_cache(maxsize=256)
def pruned_network(
    m: int, ranks: tuple[int, ...]
) -> tuple[tuple[int, int, bool, bool], ...]:
    """The comparators that the sorted outputs ``ranks`` depend on.

    Each entry is (a, b, keep_min, keep_max): write min to wire a and/or max to
    wire b, skipping an output that no later needed comparator or rank reads.
    """
    needed = set(ranks)
    kept: list[tuple[int, int, bool, bool]] = []
    for a, b in reversed(batcher_comparators(m)):
        keep_min, keep_max = a in needed, b in needed
        if keep_min or keep_max:
            kept.append((a, b, keep_min, keep_max))
            needed |= {a, b}
    return tuple(reversed(kept))


def order_statistics(
    inputs: torch.Tensor, ranks: tuple[int, ...]
) -> list[torch.Tensor]:
    """The coordinate-wise ``ranks``-th smallest of the m inputs (..., m, d).

    Returns one tensor (..., d) per rank. Inputs must be finite.
    """
    m, d = inputs.shape[-2], inputs.shape[-1]
    network = pruned_network(m, tuple(ranks))
    outputs = [inputs.new_empty((*inputs.shape[:-2], d)) for _ in ranks]
    for start in range(0, d, CHUNK):
        wires = list(inputs[..., start : start + CHUNK].unbind(-2))
        for a, b, keep_min, keep_max in network:
            low, high = wires[a], wires[b]
            if keep_min:
                wires[a] = torch.minimum(low, high)
            if keep_max:
                wires[b] = torch.maximum(low, high)
        for out, rank in zip(outputs, ranks, strict=True):
            out[..., start : start + CHUNK] = wires[rank]
    return outputs


def coordinate_median(inputs: torch.Tensor) -> torch.Tensor:
    """The coordinate-wise (true) median (..., d) of finite inputs (..., m, d)."""
    m = inputs.shape[-2]
    ranks = ((m - 1) // 2,) if m % 2 == 1 else (m // 2 - 1, m // 2)
    values = ranked(inputs, ranks)
    if len(values) == 1:
        return values[0]
    return 0.5 * values[0] + 0.5 * values[1]  # no overflow near the dtype's maximum


def ranked(inputs: torch.Tensor, ranks: tuple[int, ...]) -> list[torch.Tensor]:
    """Order statistics ``ranks`` of the inputs (..., m, d): a network or a sort."""
    if inputs.shape[-2] <= MAX_NETWORK_INPUTS:
        return order_statistics(inputs, ranks)
    if len(ranks) <= 2:  # a selection per rank beats a full sort
        return [inputs.kthvalue(r + 1, dim=-2).values for r in ranks]
    ordered = inputs.sort(dim=-2).values
    return [ordered[..., r, :] for r in ranks]
