"""The Byzantine coalition: Byzantine nodes pool what they legitimately know.

Each Byzantine sender posts the honest message it would have sent on a channel at a
step (computed from what it received); once every member of that channel has posted
(or after a timeout), the coalition runs the channel's attack once, with those
honest messages as its view of the correct ones, and hands each member its
per-receiver vectors. The coalition sees no correct node's state.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import torch

from byzsgd import attacks
from byzsgd.attacks.base import AttackView
from byzsgd.protocol.plan import ProtocolPlan
from byzsgd.protocol.topology import SERVER, generator
from byzsgd.runtime.channels import conform
from byzsgd.runtime.ray.transport import channel_roles


class Coalition:
    """Colluding Byzantine senders, channel by channel (thread-safe)."""

    def __init__(
        self,
        plan: ProtocolPlan,
        members: dict[str, int],
        *,
        num_servers: int,
        num_workers: int,
        seed: int,
        timeout: float,
    ) -> None:
        self.plan = plan
        self.members = members  # channel -> number of Byzantine senders
        self.counts = {SERVER: num_servers, "worker": num_workers}
        self.timeout = timeout
        self.attacks = {
            name: attacks.make(
                plan.channel(name).attack, name, plan.channel(name).attack_options
            )
            for name in members
        }
        self.generators = {name: generator(seed, "adversary", name) for name in members}
        self.posted: dict[tuple[str, int], dict[int, torch.Tensor]] = {}
        self.forged: dict[tuple[str, int], torch.Tensor | None] = {}
        self._lock = threading.Condition()

    def forge(
        self, channel: str, step: int, member: int, honest: torch.Tensor
    ) -> torch.Tensor | None:
        """Post ``honest``; return this member's vectors (receivers, d), or None."""
        key = (channel, step)
        deadline = time.monotonic() + self.timeout
        with self._lock:
            self.posted.setdefault(key, {})[member] = honest
            self._lock.notify_all()
            while key not in self.forged:
                everyone = len(self.posted[key]) >= self.members[channel]
                if everyone or time.monotonic() >= deadline:
                    self.forged[key] = self._attack(channel, step)
                    self._lock.notify_all()
                    break
                self._lock.wait(max(deadline - time.monotonic(), 0.0))
            result = self.forged[key]
            self._forget(step)
        if result is None:
            return None
        return result[min(member, result.shape[0] - 1)]

    def _attack(self, channel: str, step: int) -> torch.Tensor | None:
        posted = self.posted[(channel, step)]
        honest = torch.stack([posted[m] for m in sorted(posted)])
        plan = self.plan.channel(channel)
        view = AttackView(
            step=step,
            channel=channel,
            correct_messages=honest,
            num_byzantine=self.members[channel],
            num_receivers=self.counts[channel_roles(channel)[1]],
            receiver_positions=None,
            subsets=None,
            rule=plan.rule,
            f=plan.f,
            generator=self.generators[channel],
            quorum=plan.quorum,
            rule_options=plan.rule_options,
        )
        return conform(self.attacks[channel](view), view, honest.dtype)

    def _forget(self, step: int) -> None:
        for key in [k for k in self.forged if k[1] < step - 2]:
            self.forged.pop(key, None)
            self.posted.pop(key, None)


def make_coalition_actor(**options: Any) -> Any:
    import ray

    return ray.remote(num_cpus=0, max_concurrency=64)(Coalition)
