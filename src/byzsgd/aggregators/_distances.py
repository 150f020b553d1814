"""Pairwise distances and Gram matrices that stay accurate for Byzantine inputs.

The inputs are centred on a coordinate-wise median before any product. A difference
of close values is exact in floating point, and that median lies in the correct
inputs' range in every coordinate, so close correct vectors keep their distances
whatever their magnitude and wherever the Byzantine vectors are. The Gram product
runs in float32 while its entries cannot overflow, else in float64.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from byzsgd.aggregators._networks import coordinate_median

FLOAT32_SAFE = 1e30
GRAM_CHUNK = 1 << 15


def centred(inputs: torch.Tensor, f: int) -> torch.Tensor:
    """The inputs (..., m, d) minus a centre inside the correct inputs' range.

    The centre is the coordinate-wise median of the first min(m, 2f + 1) inputs: at
    most f of them are Byzantine, so in every coordinate it lies between two correct
    values.
    """
    count = min(inputs.shape[-2], 2 * f + 1)
    return inputs - coordinate_median(inputs[..., :count, :]).unsqueeze(-2)


def gram(inputs: torch.Tensor, f: int) -> torch.Tensor:
    """Inner products (..., m, m) of the centred inputs, in float64.

    Computed over cache-sized chunks of coordinates: each chunk is centred, its
    product taken in float32 where no entry can overflow (else float64), and the
    chunks' products summed in float64.
    """
    m = inputs.shape[-2]
    products = torch.zeros((*inputs.shape[:-2], m, m), dtype=torch.float64)
    for start in range(0, inputs.shape[-1], GRAM_CHUNK):
        x = centred(inputs[..., start : start + GRAM_CHUNK], f)
        scale = float(x.abs().amax()) if x.numel() else 0.0
        if x.dtype == torch.float32 and scale * scale * x.shape[-1] < FLOAT32_SAFE:
            products += x @ x.transpose(-1, -2)
        else:
            x = x.double()
            products += x @ x.transpose(-1, -2)
    # A matrix product need not be exactly symmetric; the searches rely on it.
    return 0.5 * (products + products.transpose(-1, -2))


def squared_distances_from_gram(products: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances (..., m, m) from a Gram matrix, clamped at 0."""
    norms = torch.diagonal(products, dim1=-2, dim2=-1)
    dist = norms.unsqueeze(-1) + norms.unsqueeze(-2) - 2.0 * products
    dist = dist.clamp_min(0.0)
    return dist * (1.0 - torch.eye(dist.shape[-1], dtype=dist.dtype))


def pairwise_squared_distances(inputs: torch.Tensor, f: int) -> torch.Tensor:
    """Squared Euclidean distances (..., m, m) of the m inputs, in float64."""
    return squared_distances_from_gram(gram(inputs, f))


def tie_keys(dist: torch.Tensor) -> torch.Tensor:
    """A value-based key (..., m) per input, to break ties between equal scores.

    Each input's summed squared distance to all the inputs, from their distance
    matrix (..., m, m): equal for identical inputs, independent of the order of the
    inputs, so a rule that breaks ties by it is invariant to permutations, and free
    once the distances are known.
    """
    return dist.sum(dim=-1)


def rank(
    scores: torch.Tensor,
    keys: torch.Tensor | Callable[[], torch.Tensor],
    rtol: float = 1e-6,
) -> torch.Tensor:
    """Indices (..., m) ordering the scores ascending; near-equal scores by key.

    Neighbouring scores within ``rtol`` of each other (relative to their own size)
    count as tied: rounding depends on the inputs' order, the key does not.
    """
    order = scores.argsort(dim=-1, stable=True)
    ordered = scores.gather(-1, order)
    size = torch.maximum(ordered[..., 1:].abs(), ordered[..., :-1].abs())
    gap = ordered[..., 1:] - ordered[..., :-1]
    near = torch.isfinite(size) & (gap <= rtol * size + 1e-300)
    if not bool(near.any()):
        return order
    if callable(keys):
        keys = keys()  # computed only when there are ties
    keys = keys.expand_as(scores)
    flat_order = order.reshape(-1, order.shape[-1]).clone()
    flat_near = near.reshape(-1, near.shape[-1])
    flat_keys = keys.reshape(-1, keys.shape[-1])
    for row in flat_near.any(dim=-1).nonzero().flatten().tolist():
        start = 0
        for i in range(1, flat_order.shape[-1] + 1):
            if i < flat_order.shape[-1] and bool(flat_near[row, i - 1]):
                continue
            group = flat_order[row, start:i]
            flat_order[row, start:i] = group[flat_keys[row, group].argsort(stable=True)]
            start = i
    return flat_order.reshape(order.shape)
