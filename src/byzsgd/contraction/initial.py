"""Initial positions of the correct servers for a contraction study.

Every function returns float64 points of shape (reps, correct, dim), one independent
configuration per repetition, drawn from ``generator``.
"""

from __future__ import annotations

import torch


def initial_points(
    name: str, reps: int, correct: int, dim: int, generator: torch.Generator
) -> torch.Tensor:
    """The configuration ``name`` (see :data:`byzsgd.contraction.spec.INITS`).

    - ``two_clusters``: the first ⌈c/2⌉ servers at 0, the others at a unit vector u
      (ℓ2; u = 1 in one dimension, a random direction otherwise).
    - ``uniform``: i.i.d. uniform on [0, 1]^d.
    - ``gaussian``: i.i.d. standard normal.
    - ``evenly_spaced``: server i at i/(c − 1) · u on a random unit direction u.
    - ``unit_vectors``: server i at the basis vector e_i (needs d >= c).
    """
    shape = (reps, correct, dim)
    if name == "uniform":
        return torch.rand(shape, generator=generator, dtype=torch.float64)
    if name == "gaussian":
        return torch.randn(shape, generator=generator, dtype=torch.float64)
    if name == "unit_vectors":
        if dim < correct:
            raise ValueError(f"unit_vectors: dim must be >= correct, got {dim}")
        basis = torch.eye(correct, dim, dtype=torch.float64)
        return basis.expand(reps, -1, -1).clone()
    direction = _directions(reps, dim, generator)
    if name == "two_clusters":
        weights = torch.zeros(correct, dtype=torch.float64)
        weights[first_cluster(correct) :] = 1.0
    elif name == "evenly_spaced":
        weights = torch.linspace(0.0, 1.0, correct, dtype=torch.float64)
    else:
        raise ValueError(f"unknown initial configuration {name!r}")
    return weights[None, :, None] * direction[:, None, :]


def first_cluster(correct: int) -> int:
    """How many servers the first of two clusters holds: ⌈c/2⌉."""
    return (correct + 1) // 2


def _directions(reps: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    if dim == 1:
        return torch.ones(reps, 1, dtype=torch.float64)
    draw = torch.randn(reps, dim, generator=generator, dtype=torch.float64)
    return draw / draw.norm(dim=-1, keepdim=True)
