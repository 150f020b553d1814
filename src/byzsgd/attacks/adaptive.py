"""Defence-aware attacks: pick the strength that hurts each receiver's rule most."""

from __future__ import annotations

import torch

from byzsgd import aggregators
from byzsgd.attacks.base import Attack, AttackView, register
from byzsgd.attacks.workers import WORKERS, coordinate_std


class _StrengthSearch(Attack):
    """Search a strength per receiver against the receiver's actual rule.

    For each receiver, and each candidate strength s in ``strengths``, the adversary
    simulates the receiver's aggregate of the correct messages it uses plus its
    Byzantine slots filled with ``vector(s)``, and sends the vector whose aggregate is
    farthest from the correct mean. Receivers may get different strengths, so the
    attack equivocates.
    """

    equivocates = True
    channels = WORKERS

    def __init__(self, strengths: list | None = None) -> None:
        values = self.default_strengths() if strengths is None else list(strengths)
        if not values:
            raise ValueError(f"{self.name}: strengths must not be empty")
        self.strengths = [float(s) for s in values]

    def default_strengths(self) -> list[float]:
        raise NotImplementedError

    def vector(self, messages: torch.Tensor, strength: float) -> torch.Tensor:
        raise NotImplementedError

    def messages(self, view: AttackView) -> torch.Tensor:
        target = view.correct_messages.mean(dim=0)
        rule = aggregators.get(view.rule)
        options = {k: v for k, v in view.rule_options.items() if k != "generator"}
        if "generator" in aggregators.options(view.rule):
            options["generator"] = torch.Generator().manual_seed(view.step)
        candidates = torch.stack(
            [self.vector(view.correct_messages, s) for s in self.strengths]
        )
        chosen = []
        for heard, slots in zip(
            view.heard_correct(), view.byzantine_slots(), strict=True
        ):
            if slots == 0:
                chosen.append(candidates[0])
                continue
            forged = candidates.unsqueeze(1).expand(-1, slots, -1)
            inputs = torch.cat([heard.expand(len(candidates), -1, -1), forged], dim=1)
            f = min(view.f, (inputs.shape[1] - 1) // 2) if view.rule != "mean" else 0
            try:
                outputs = rule(inputs, f=f, **options)
            except ValueError:
                outputs = inputs.mean(dim=1)
            damage = (outputs - target).norm(dim=-1)
            chosen.append(candidates[int(damage.argmax())])
        return view.per_receiver(torch.stack(chosen))


@register
class AdaptiveLittleIsEnough(_StrengthSearch):
    """A Little Is Enough with z chosen per receiver against its rule (mean - z std)."""

    name = "adaptive_alie"

    def default_strengths(self) -> list[float]:
        return [0.25 * k for k in range(1, 13)] + [4.0, 6.0, 10.0, 20.0, 50.0]

    def vector(self, messages: torch.Tensor, strength: float) -> torch.Tensor:
        return messages.mean(dim=0) - strength * coordinate_std(messages)


@register
class AdaptiveInnerProduct(_StrengthSearch):
    """Inner-product manipulation with epsilon chosen per receiver (-eps * mean)."""

    name = "adaptive_ipm"

    def default_strengths(self) -> list[float]:
        return [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0]

    def vector(self, messages: torch.Tensor, strength: float) -> torch.Tensor:
        return -strength * messages.mean(dim=0)
