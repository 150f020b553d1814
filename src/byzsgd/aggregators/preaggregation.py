"""Pre-aggregation steps that compose with any rule: NNM, bucketing, ARC.

Each maps inputs (..., m, d) to new inputs (..., m', d) with at most f of them
spoiled, so the rule that follows keeps its f. Compose by name with ``+``:
``get("nnm+krum")``, ``get("bucketing+median")``, ``get("arc+nnm+mda")``.
"""

from __future__ import annotations

import math

import torch

from byzsgd.aggregators._checks import all_finite, check_inputs, complete_nonfinite
from byzsgd.aggregators._distances import pairwise_squared_distances, rank, tie_keys
from byzsgd.aggregators._registry import register_pre


def _same_count(m: int, options: dict) -> int:
    return m


def _bucket_count(m: int, options: dict) -> int:
    return math.ceil(m / options.get("bucket_size", 2))


@register_pre("nnm", _same_count)
def nnm(inputs: torch.Tensor, *, f: int) -> torch.Tensor:
    r"""Nearest-neighbour mixing (Allouah et al., 2023).

    Replace each input by the mean of its m - f nearest inputs, itself included
    (ties broken by value, as in Krum). Keeps m inputs and f. Cost: O(m^2 d).

    >>> nnm(torch.tensor([[0.0], [1.0], [10.0]]), f=1)
    tensor([[0.5000],
            [0.5000],
            [5.5000]])
    """
    check_inputs("nnm", inputs, f)
    x = complete_nonfinite(inputs)
    m = x.shape[-2]
    if f == 0:
        return x.mean(dim=-2, keepdim=True).expand_as(x).clone()
    dist = pairwise_squared_distances(x, f)
    order = rank(dist, tie_keys(dist).unsqueeze(-2))[..., : m - f]
    mixing = torch.zeros(dist.shape, dtype=x.dtype).scatter(-1, order, 1.0 / (m - f))
    return mixing @ x


@register_pre("bucketing", _bucket_count)
def bucketing(
    inputs: torch.Tensor,
    *,
    f: int,
    bucket_size: int = 2,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Bucketing (Karimireddy et al., 2022).

    Shuffle the inputs with ``generator`` and average consecutive groups of
    ``bucket_size`` (the last group may be smaller): ceil(m / s) inputs, of which at
    most f are spoiled. Each batch element draws its own permutation, in order.
    Cost: O(md).

    >>> g = torch.Generator().manual_seed(0)
    >>> bucketing(torch.tensor([[0.0], [2.0], [4.0], [6.0]]), f=1, generator=g).shape
    torch.Size([2, 1])
    """
    check_inputs("bucketing", inputs, f)
    if (
        isinstance(bucket_size, bool)
        or not isinstance(bucket_size, int)
        or bucket_size < 1
    ):
        raise ValueError(
            f"bucketing: bucket_size must be an integer >= 1, got {bucket_size!r}"
        )
    x = complete_nonfinite(inputs)
    m = x.shape[-2]
    count = math.ceil(m / bucket_size)
    batch = int(math.prod(x.shape[:-2]))
    # One averaging matrix per batch element: bucket b averages the inputs that
    # its slice of the shuffled order names.
    weights = torch.zeros(batch, count, m, dtype=x.dtype)
    for row in range(batch):
        perm = torch.randperm(m, generator=generator)
        for b in range(count):
            members = perm[b * bucket_size : (b + 1) * bucket_size]
            weights[row, b, members] = 1.0 / len(members)
    flat = x.reshape(batch, m, x.shape[-1])
    return (weights @ flat).reshape(*x.shape[:-2], count, x.shape[-1])


@register_pre("arc", _same_count)
def arc(inputs: torch.Tensor, *, f: int) -> torch.Tensor:
    r"""Adaptive robust clipping (Allouah et al., 2024).

    With k = floor(2 (f / m) (m - f)), clip the k inputs of largest norm to the norm
    of the (k + 1)-th largest; the others are unchanged. f = 0 changes nothing.
    Cost: O(md).

    >>> arc(torch.tensor([[1.0], [2.0], [-3.0], [40.0]]), f=1)
    tensor([[ 1.],
            [ 2.],
            [-3.],
            [ 3.]])
    """
    check_inputs("arc", inputs, f)
    m = inputs.shape[-2]
    k = math.floor(2 * (f / m) * (m - f))
    norms = inputs.norm(dim=-1).double()
    # A vector holding NaN or inf has a non-finite norm: complete only then.
    x = inputs if all_finite(norms) else complete_nonfinite(inputs)
    if k == 0:
        return x.clone()
    if x is not inputs or not all_finite(norms):
        norms = x.double().norm(dim=-1)
    threshold = norms.sort(dim=-1, descending=True).values[..., k : k + 1]
    factor = (threshold / norms.clamp_min(1e-300)).clamp(max=1.0)
    return x * factor.to(x.dtype).unsqueeze(-1)
