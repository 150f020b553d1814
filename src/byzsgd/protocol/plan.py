"""The resolved protocol knobs: per-channel quorum, policy, rule and f; step sizes."""

from __future__ import annotations

from dataclasses import dataclass, field

from byzsgd.attacks.base import SERVER_TO_SERVER, SERVER_TO_WORKER, WORKER_TO_SERVER

POLICIES = ("random", "first", "all")
LR_SCHEDULES = ("constant", "inverse")


@dataclass(frozen=True)
class ChannelPlan:
    """One channel with every ``auto`` value resolved."""

    name: str
    num_senders: int
    quorum: int
    policy: str
    rule: str
    f: int
    attack: str = "none"
    attack_options: dict = field(default_factory=dict)
    rule_options: dict = field(default_factory=dict)
    include_self: bool = False


@dataclass(frozen=True)
class ProtocolPlan:
    """The three channels, the gather's mixing and period, and the step sizes."""

    server_to_worker: ChannelPlan
    worker_to_server: ChannelPlan
    server_to_server: ChannelPlan
    mixing: float = 1.0
    period: int = 1
    lr: float = 0.1
    lr_schedule: str = "constant"
    lr_decay: float = 0.0
    batch_size: int = 32

    def channel(self, name: str) -> ChannelPlan:
        return {
            SERVER_TO_WORKER: self.server_to_worker,
            WORKER_TO_SERVER: self.worker_to_server,
            SERVER_TO_SERVER: self.server_to_server,
        }[name]

    def learning_rate(self, step: int) -> float:
        """eta_t: constant, or lr / (1 + lr_decay * t) for the inverse schedule."""
        if self.lr_schedule == "inverse":
            return self.lr / (1.0 + self.lr_decay * step)
        return self.lr

    def gather_due(self, step: int) -> bool:
        """Whether the servers gather after step ``step`` (every ``period`` steps)."""
        return self.mixing > 0.0 and (step + 1) % self.period == 0
