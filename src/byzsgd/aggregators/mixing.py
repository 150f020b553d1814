"""The gather's mixing wrapper: (1 - λ) own + λ Rule(received)."""

from __future__ import annotations

from typing import Any

import torch

from byzsgd.aggregators._checks import all_finite
from byzsgd.aggregators._registry import get


def mix(
    own: torch.Tensor,
    inputs: torch.Tensor,
    *,
    rule: str,
    f: int,
    mixing: float,
    **options: Any,
) -> torch.Tensor:
    r"""Mix a node's own vector (..., d) with a rule over what it received (..., m, d).

    Returns :math:`(1 - \lambda)\,own + \lambda\,\mathrm{Rule}(inputs)`; λ = 1 is the
    plain rule, λ = 0 ignores the inputs. A non-finite aggregate (possible only when
    no input was finite) leaves ``own`` unchanged.

    >>> own = torch.tensor([0.0])
    >>> mix(own, torch.tensor([[4.0], [5.0], [6.0]]), rule="median", f=1, mixing=0.5)
    tensor([2.5000])
    """
    if not 0.0 <= mixing <= 1.0:
        raise ValueError(f"mix: mixing must be in [0, 1], got {mixing!r}")
    if mixing == 0.0:
        return own.clone()
    pulled = get(rule)(inputs, f=f, **options)
    if not all_finite(pulled):
        finite = torch.isfinite(pulled).all(dim=-1, keepdim=True)
        pulled = torch.where(finite, pulled, own)
    return pulled if mixing == 1.0 else torch.lerp(own, pulled, mixing)
