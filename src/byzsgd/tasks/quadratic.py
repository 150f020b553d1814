"""A synthetic least-squares problem whose minimiser is known exactly.

Samples are ``x ~ N(0, I_d)`` and ``y = x . w_star + noise * e`` with
``e ~ N(0, 1)`` and ``w_star ~ N(0, I_d)``; the model is ``x . w`` without bias,
trained with half the squared error. Because the loss is a quadratic in ``w``, the
distance of a server's parameters to the minimiser measures progress directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from byzsgd.config import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegressionData:
    """Generated features, targets and the weights that generated them (float64)."""

    x: np.ndarray
    y: np.ndarray
    true_weights: np.ndarray


def generate(
    *, dim: int, num_samples: int, noise: float, rng: np.random.Generator
) -> RegressionData:
    """Draw ``w_star``, then ``num_samples`` pairs ``(x, y)`` around it.

    Examples
    --------
    >>> data = generate(dim=3, num_samples=5, noise=0.0, rng=np.random.default_rng(0))
    >>> data.x.shape, bool(np.allclose(data.x @ data.true_weights, data.y))
    ((5, 3), True)
    """
    _check(dim=dim, num_samples=num_samples, noise=noise)
    true_weights = rng.standard_normal(dim)
    x = rng.standard_normal((num_samples, dim))
    y = x @ true_weights + noise * rng.standard_normal(num_samples)
    return RegressionData(x=x, y=y, true_weights=true_weights)


def least_squares(x: np.ndarray, y: np.ndarray) -> torch.Tensor:
    """The minimiser of ``0.5 * mean((x @ w - y) ** 2)`` over ``w``, as float32.

    Solved in float64 with :func:`numpy.linalg.lstsq`; with at least ``dim``
    independent samples this is the unique zero of the empirical gradient
    ``x.T @ (x @ w - y) / n``.

    Examples
    --------
    >>> x = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    >>> least_squares(x, x @ np.array([3.0, -1.0]))
    tensor([ 3., -1.])
    """
    solution, *_ = np.linalg.lstsq(np.asarray(x, np.float64), np.asarray(y), rcond=None)
    return torch.as_tensor(solution, dtype=torch.float32)


def _check(*, dim: int, num_samples: int, noise: float) -> None:
    if dim < 1:
        raise ConfigError(f"task.dim = {dim!r} is not allowed; expected a value >= 1")
    if num_samples < 2:
        raise ConfigError(
            f"task.num_samples = {num_samples!r} is not allowed; expected a value >= 2"
        )
    if not noise >= 0.0:
        raise ConfigError(
            f"task.noise = {noise!r} is not allowed; expected a value >= 0"
        )
