"""Byzantine workers: the gradients they send to the servers."""

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

WORKERS = frozenset({WORKER_TO_SERVER})


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


def coordinate_std(messages: torch.Tensor) -> torch.Tensor:
    """The correct messages' coordinate-wise standard deviation (zero for one)."""
    if messages.shape[0] < 2:
        return torch.zeros_like(messages[0])
    return messages.std(dim=0)


@register
class SignFlip(Attack):
    """The correct mean gradient with its sign flipped, times ``scale``."""

    name = "sign_flip"
    channels = WORKERS

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def messages(self, view: AttackView) -> torch.Tensor:
        return view.broadcast(-self.scale * view.correct_messages.mean(dim=0))


@register
class GaussianNoise(Attack):
    """The correct mean plus Gaussian noise of deviation ``std``, fresh per sender."""

    name = "gaussian"
    channels = WORKERS

    def __init__(self, std: float = 1.0) -> None:
        self.std = std

    def messages(self, view: AttackView) -> torch.Tensor:
        noise = torch.randn(view.num_byzantine, view.dim, generator=view.generator)
        return view.per_sender(view.correct_messages.mean(dim=0) + self.std * noise)


@register
class NonFinite(Attack):
    """Vectors of ``value``: ``"nan"``, ``"inf"`` or ``"-inf"`` (malformed input)."""

    name = "nonfinite"

    def __init__(self, value: str = "nan") -> None:
        if value not in ("nan", "inf", "-inf"):
            raise ValueError(
                f"nonfinite: value = {value!r} is not allowed; expected nan, inf, -inf"
            )
        self.value = float(value)

    def messages(self, view: AttackView) -> torch.Tensor:
        return view.broadcast(torch.full((view.dim,), self.value))


@register
class LittleIsEnough(Attack):
    """A Little Is Enough (Baruch et al., 2019): mean - z * std, coordinate-wise.

    ``z`` is computed from (n, f) by :func:`alie_strength` when not given. The same
    vector goes to every receiver.
    """

    name = "alie"
    channels = WORKERS

    def __init__(self, z: float | None = None) -> None:
        self.z = z

    def messages(self, view: AttackView) -> torch.Tensor:
        grads = view.correct_messages
        n = grads.shape[0] + view.num_byzantine
        z = self.z if self.z is not None else alie_strength(n, view.num_byzantine)
        return view.broadcast(grads.mean(dim=0) - z * coordinate_std(grads))


@register
class InnerProductManipulation(Attack):
    """Inner-product manipulation, "Fall of Empires" (Xie et al., 2020): -eps * mean.

    A small ``epsilon`` keeps the vector close to the correct ones while turning the
    aggregate's inner product with the true gradient negative.
    """

    name = "ipm"
    channels = WORKERS

    def __init__(self, epsilon: float = 0.1) -> None:
        self.epsilon = epsilon

    def messages(self, view: AttackView) -> torch.Tensor:
        return view.broadcast(-self.epsilon * view.correct_messages.mean(dim=0))


@register
class Mimic(Attack):
    """Every Byzantine worker copies correct worker number ``target`` (by rank).

    Rules that reward agreement then over-weight one worker's data: harmful on
    non-iid splits (Karimireddy et al., 2022).
    """

    name = "mimic"
    channels = WORKERS

    def __init__(self, target: int = 0) -> None:
        self.target = target

    def messages(self, view: AttackView) -> torch.Tensor:
        index = min(max(self.target, 0), view.correct_messages.shape[0] - 1)
        return view.broadcast(view.correct_messages[index])


@register
class LabelFlip(Attack):
    """Honest gradients computed on flipped labels (y -> C - 1 - y).

    Each Byzantine worker draws a batch from its own shard and computes the gradient
    at the correct servers' mean parameters (the receivers' positions). Without an
    oracle (a task with no labels), it sends the sign-flipped mean.
    """

    name = "label_flip"
    channels = WORKERS

    def messages(self, view: AttackView) -> torch.Tensor:
        if view.oracle is None or view.receiver_positions is None:
            return view.broadcast(-view.correct_messages.mean(dim=0))
        point = view.receiver_positions.mean(dim=0)
        points = point.expand(view.num_byzantine, -1)
        return view.per_sender(view.oracle(points, True))


@register
class Polarise(Attack):
    """Equivocating gradients: half the servers pushed along +u, the others along -u.

    Receiver r gets mean + s_r * scale * spread * u, with s_r = +1 for the first half
    of the receivers and -1 for the rest, u a unit direction drawn once from the
    coalition's generator, and ``spread`` the correct gradients' mean distance to
    their mean. Over many steps this pulls the two halves of the servers apart.
    """

    name = "polarise"
    channels = WORKERS
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
