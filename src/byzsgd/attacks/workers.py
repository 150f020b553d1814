"""Byzantine workers: gradients sent to the servers."""

from __future__ import annotations

import math
from statistics import NormalDist

import torch

from byzsgd.attacks.base import (
    WORKER_TO_SERVER,
    Attack,
    AttackView,
    halves,
    register,
    spread,
)


def alie_strength(num_senders: int, num_byzantine: int) -> float:
    """The strength z of Baruch et al. (2019) for n senders of which f are Byzantine.

    s = floor(n/2 + 1) - f correct workers must be "won over"; z is the standard normal
    quantile of (n - s) / n. Where that fraction leaves (0, 1) the formula has no
    value, and the strength falls back to 1.
    """
    needed = math.floor(num_senders / 2 + 1) - num_byzantine
    fraction = (num_senders - needed) / num_senders
    if not 0.0 < fraction < 1.0:
        return 1.0
    return NormalDist().inv_cdf(fraction)


@register
class LittleIsEnough(Attack):
    """A Little Is Enough (Baruch et al., 2019): mean - z * std, coordinate-wise.

    ``z`` is computed from (n, f) by :func:`alie_strength` when not given. The same
    vector goes to every receiver.
    """

    name = "alie"
    channels = frozenset({WORKER_TO_SERVER})

    def __init__(self, z: float | None = None) -> None:
        self.z = z

    def messages(self, view: AttackView) -> torch.Tensor:
        grads = view.correct_messages
        n = grads.shape[0] + view.num_byzantine
        z = self.z if self.z is not None else alie_strength(n, view.num_byzantine)
        std = grads.std(dim=0) if grads.shape[0] > 1 else torch.zeros_like(grads[0])
        return view.broadcast(grads.mean(dim=0) - z * std)


@register
class SignFlip(Attack):
    """The correct mean gradient with its sign flipped, times ``scale``."""

    name = "sign_flip"
    channels = frozenset({WORKER_TO_SERVER})

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def messages(self, view: AttackView) -> torch.Tensor:
        return view.broadcast(-self.scale * view.correct_messages.mean(dim=0))


@register
class Polarise(Attack):
    """Equivocating gradients: half the servers pushed along +u, the others along -u.

    Receiver r gets mean + s_r * scale * spread * u, with s_r = +1 for the first half
    of the receivers and -1 for the rest, u a unit direction drawn once from the
    coalition's generator, and ``spread`` the correct gradients' mean distance to
    their mean. Over many steps this pulls the two halves of the servers apart.
    """

    name = "polarise"
    channels = frozenset({WORKER_TO_SERVER})
    equivocates = True

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self.direction: torch.Tensor | None = None

    def messages(self, view: AttackView) -> torch.Tensor:
        grads = view.correct_messages
        if self.direction is None or self.direction.shape[0] != view.dim:
            u = torch.randn(view.dim, generator=view.generator)
            self.direction = u / u.norm()
        size = self.scale * spread(grads)
        push = halves(view.num_receivers) * size * self.direction
        return view.per_receiver(grads.mean(dim=0) + push)
