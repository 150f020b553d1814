"""Behaviours for every channel: honest-looking, crash, reversed, random."""

from __future__ import annotations

import torch

from byzsgd.attacks.base import Attack, AttackView, register


@register
class Honest(Attack):
    """Byzantine senders that send the correct senders' mean to everyone."""

    name = "none"

    def messages(self, view: AttackView) -> torch.Tensor:
        return view.broadcast(view.correct_messages.mean(dim=0))


@register
class Crash(Attack):
    """Honest-looking (the correct mean) until ``at_step``, silent from then on."""

    name = "crash"

    def __init__(self, at_step: int = 0) -> None:
        if isinstance(at_step, bool) or not isinstance(at_step, int) or at_step < 0:
            raise ValueError(f"crash: at_step must be an integer >= 0, got {at_step!r}")
        self.at_step = at_step

    def messages(self, view: AttackView) -> torch.Tensor | None:
        if view.step >= self.at_step:
            return None
        return view.broadcast(view.correct_messages.mean(dim=0))


@register
class Reversed(Attack):
    """The correct mean reversed and amplified: -k * mean, to every receiver."""

    name = "reversed"

    def __init__(self, k: float = 10.0) -> None:
        self.k = k

    def messages(self, view: AttackView) -> torch.Tensor:
        return view.broadcast(-self.k * view.correct_messages.mean(dim=0))


@register
class RandomVector(Attack):
    """Independent Gaussian vectors N(0, std^2 I), fresh per sender and receiver."""

    name = "random"
    equivocates = True

    def __init__(self, std: float = 1.0) -> None:
        self.std = std

    def messages(self, view: AttackView) -> torch.Tensor:
        shape = (view.num_byzantine, view.num_receivers, view.dim)
        return self.std * torch.randn(shape, generator=view.generator)
