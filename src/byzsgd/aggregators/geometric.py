"""Iterative rules that live in the span of the inputs: geometric median and
centred clipping, both run on the inputs' Gram matrix.

Each iterate is an affine combination of the inputs (and of a starting point), so
its distance to every input follows from the Gram matrix: after one O(m^2 d)
product, every iteration costs O(m^2), whatever d.
"""

from __future__ import annotations

import torch

from byzsgd.aggregators._checks import at_least, prepare
from byzsgd.aggregators._distances import gram
from byzsgd.aggregators._networks import coordinate_median
from byzsgd.aggregators._registry import register

MAJORITY = at_least(2, 1)


def _distances_to(weights: torch.Tensor, products: torch.Tensor) -> torch.Tensor:
    """||z - a_j|| for z = sum_i w_i a_i, from the Gram matrix of the atoms a."""
    gw = (products @ weights.unsqueeze(-1)).squeeze(-1)
    zz = (weights * gw).sum(dim=-1, keepdim=True)
    diag = torch.diagonal(products, dim1=-2, dim2=-1)
    return (zz - 2.0 * gw + diag).clamp_min(0.0).sqrt()


def _combine(weights: torch.Tensor, atoms: torch.Tensor) -> torch.Tensor:
    return (weights.to(atoms.dtype).unsqueeze(-2) @ atoms).squeeze(-2)


@register("geometric_median", MAJORITY)
def geometric_median(
    inputs: torch.Tensor,
    *,
    f: int,
    smoothing: float = 1e-6,
    tolerance: float = 1e-7,
    max_iterations: int = 200,
) -> torch.Tensor:
    r"""Geometric median by smoothed Weiszfeld iterations (Pillutla et al., 2022).

    Approximates :math:`\arg\min_z \sum_i \|z - x_i\|_2`. From the coordinate-wise
    median (so that, where the minimiser is not unique, the answer still moves with
    the inputs and ignores their order), iterate
    :math:`z \leftarrow \sum_i \beta_i x_i / \sum_i \beta_i` with
    :math:`\beta_i = 1 / \max(\nu, \|z - x_i\|)`, ν = ``smoothing`` times the
    inputs' median distance to a robust centre, until the step is below
    ``tolerance`` times that scale or after ``max_iterations``. f only enters the
    condition.
    Condition: m >= 2f + 1. Cost: O(m^2 d) + O(m^2) per iteration.

    >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [100.0, 100.0]])
    >>> geometric_median(x, f=1).round(decimals=2)
    tensor([0.5000, 0.5000])
    """
    x = prepare("geometric_median", inputs, f, MAJORITY)
    m = x.shape[-2]
    if m == 1:
        return x[..., 0, :].clone()
    atoms = torch.cat([x, coordinate_median(x).unsqueeze(-2)], dim=-2)
    products = gram(atoms, f)
    norms = torch.diagonal(products, dim1=-2, dim2=-1)[..., :m].clamp_min(0).sqrt()
    scale = norms.median(dim=-1, keepdim=True).values
    floor = (smoothing * scale).clamp_min(1e-150)
    weights = torch.zeros(products.shape[:-1], dtype=products.dtype)
    weights[..., m] = 1.0
    for _ in range(max_iterations):
        dist = _distances_to(weights, products)[..., :m]
        beta = 1.0 / torch.maximum(dist, floor)
        new = torch.zeros_like(weights)
        new[..., :m] = beta / beta.sum(dim=-1, keepdim=True)
        delta = (new - weights).unsqueeze(-1)
        moved = (delta.transpose(-1, -2) @ products @ delta).reshape(scale.shape)
        weights = new
        if bool((moved.clamp_min(0).sqrt() <= tolerance * scale).all()):
            break
    return _combine(weights, atoms)


@register("centered_clipping", MAJORITY)
def centered_clipping(
    inputs: torch.Tensor,
    *,
    f: int,
    radius: float | None = None,
    iterations: int = 3,
    start: torch.Tensor | str = "median",
) -> torch.Tensor:
    r"""Centred clipping (Karimireddy et al., 2021).

    From a starting point v, repeat ``iterations`` times
    :math:`v \leftarrow v + \frac{1}{m}\sum_i \mathrm{clip}_\tau(x_i - v)` with
    :math:`\mathrm{clip}_\tau(u) = u \min(1, \tau / \|u\|)`. ``start`` is
    ``"median"`` (coordinate-wise, the default), ``"mean"``, ``"zero"`` or a tensor
    (..., d), such as the previous aggregate, as in the paper's momentum setting.
    ``radius`` τ defaults to the median distance of the inputs to the starting point
    (the paper leaves τ to tuning). f only enters the condition.
    Condition: m >= 2f + 1 (the paper's guarantee needs a smaller Byzantine fraction).
    Cost: O(m^2 d) + O(m^2) per iteration.

    >>> x = torch.tensor([[0.0], [1.0], [2.0], [1000.0]])
    >>> centered_clipping(x, f=1, radius=1.0, iterations=1)
    tensor([1.5000])
    """
    x = prepare("centered_clipping", inputs, f, MAJORITY)
    m = x.shape[-2]
    if isinstance(start, torch.Tensor):
        origin = start.to(x.dtype).expand(*x.shape[:-2], x.shape[-1])
    elif start == "median":
        origin = coordinate_median(x)
    elif start == "mean":
        origin = x.mean(dim=-2)
    elif start == "zero":
        origin = torch.zeros_like(x[..., 0, :])
    else:
        raise ValueError(
            f"centered_clipping: start = {start!r} is not allowed; expected "
            "'median', 'mean', 'zero' or a tensor"
        )
    atoms = torch.cat([x, origin.unsqueeze(-2)], dim=-2)
    products = gram(atoms, f)
    weights = torch.zeros(products.shape[:-1], dtype=products.dtype)
    weights[..., m] = 1.0
    tau = None if radius is None else torch.as_tensor(radius, dtype=products.dtype)
    for _ in range(iterations):
        dist = _distances_to(weights, products)[..., :m]
        if tau is None:
            tau = dist.median(dim=-1, keepdim=True).values
        clip = torch.minimum(torch.ones_like(dist), tau / dist.clamp_min(1e-300)) / m
        weights = weights * (1.0 - clip.sum(dim=-1, keepdim=True))
        weights[..., :m] += clip
    return _combine(weights, atoms)
