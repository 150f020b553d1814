"""The simulator's transport: every channel's messages, faults and attacks in memory.

For each channel and step it builds one (receivers, q, d) tensor of what each correct
receiver heard: correct messages gathered by index, each Byzantine sender's vector
*for that receiver* written in place, and a NaN row for a message that never came.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from byzsgd import attacks
from byzsgd.attacks.base import SERVER_TO_SERVER, WORKER_TO_SERVER, AttackView
from byzsgd.config import FaultConfig
from byzsgd.protocol.plan import ChannelPlan, ProtocolPlan
from byzsgd.protocol.quorum import all_senders, first_arrivals, random_subsets
from byzsgd.protocol.topology import SERVER, WORKER, Topology

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Roles:
    """Ids of a channel's senders and of its correct receivers."""

    sender_role: str
    correct_senders: tuple[int, ...]
    byzantine_senders: tuple[int, ...]
    receiver_role: str
    receivers: tuple[int, ...]

    @property
    def num_senders(self) -> int:
        return len(self.correct_senders) + len(self.byzantine_senders)


def channel_roles(name: str, topology: Topology) -> Roles:
    """Who sends and who (correctly) receives on channel ``name``."""
    servers = (topology.correct_servers, topology.byzantine_servers)
    workers = (topology.correct_workers, topology.byzantine_workers)
    if name == WORKER_TO_SERVER:
        return Roles(WORKER, *workers, SERVER, topology.correct_servers)
    if name == SERVER_TO_SERVER:
        return Roles(SERVER, *servers, SERVER, topology.correct_servers)
    return Roles(SERVER, *servers, WORKER, topology.correct_workers)


def conform(
    forged: object, view: AttackView, dtype: torch.dtype
) -> torch.Tensor | None:
    """The attack's output as (b, r, d) of the channel's dtype, or None for silence.

    Byzantine code may return anything. What can be broadcast to (b, r, d) is; any
    other output is malformed, and every receiver gets a message it will drop.
    """
    if forged is None:
        return None
    shape = (view.num_byzantine, view.num_receivers, view.dim)
    try:
        tensor = torch.as_tensor(forged)
        if tensor.is_complex() or tensor.dtype == torch.bool:
            raise TypeError("not a real tensor")
        return tensor.to(dtype).broadcast_to(shape).clone()
    except (TypeError, RuntimeError, ValueError):
        logger.debug(
            "malformed attack output on %s at step %d", view.channel, view.step
        )
        return torch.full(shape, torch.nan, dtype=dtype)


class SimulatedChannel:
    """One channel: subset policy, benign faults, the adversary, delivery."""

    def __init__(
        self, plan: ChannelPlan, roles: Roles, topology: Topology, faults: FaultConfig
    ) -> None:
        self.plan = plan
        self.roles = roles
        self.faults = faults
        self.attack = attacks.make(plan.attack, plan.name, plan.attack_options)
        self.subset_generators = [
            topology.generator(roles.receiver_role, i, plan.name, "subsets")
            for i in roles.receivers
        ]
        self.network = topology.generator("network", plan.name)
        self.adversary = topology.generator("adversary", plan.name)
        n = roles.num_senders
        self.is_byzantine = torch.zeros(n, dtype=torch.bool)
        self.is_byzantine[list(roles.byzantine_senders)] = True
        self.position = torch.zeros(n, dtype=torch.long)
        self.position[list(roles.correct_senders)] = torch.arange(
            len(roles.correct_senders)
        )
        self.position[list(roles.byzantine_senders)] = torch.arange(
            len(roles.byzantine_senders)
        )
        self.own = list(roles.receivers) if plan.include_self else None
        self.oracle: Callable[[torch.Tensor, bool], torch.Tensor] | None = None
        self.stats: dict[str, float] = {}

    def state_dict(self) -> dict:
        """The channel's generators and its attack's state (for checkpoints)."""
        return {
            "subsets": [g.get_state() for g in self.subset_generators],
            "network": self.network.get_state(),
            "adversary": self.adversary.get_state(),
            "attack": self.attack.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        restore_generators(self.subset_generators, state["subsets"])
        self.network.set_state(state["network"])
        self.adversary.set_state(state["adversary"])
        self.attack.load_state_dict(state["attack"])

    def exchange(
        self,
        step: int,
        messages: torch.Tensor,
        receiver_positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """What each correct receiver heard this step: (r, q, d), NaN where missing."""
        plan, roles = self.plan, self.roles
        subsets = None
        if plan.policy == "random":
            subsets = random_subsets(
                roles.num_senders, plan.quorum, self.subset_generators, own_ids=self.own
            )
        byzantine = self._attack(step, messages, receiver_positions, subsets)
        arrived = self._arrivals(byzantine is None, step)
        if byzantine is not None:
            # A receiver drops a malformed message (NaN, ±inf) as it arrives: it
            # neither fills a quorum nor counts among the first q.
            valid = torch.isfinite(byzantine).all(dim=-1).T  # (r, b)
            arrived[:, self.is_byzantine] &= valid
        wait = torch.zeros(len(roles.receivers))
        if plan.policy == "all":
            chosen = all_senders(roles.num_senders, len(roles.receivers))
        elif plan.policy == "first":
            chosen, wait = first_arrivals(self._delays(arrived), plan.quorum)
        else:
            chosen = subsets
        present = arrived.gather(1, chosen)
        self._record(chosen, present, wait, messages.shape[-1])
        return self._deliver(messages, byzantine, chosen, present)

    def _attack(
        self,
        step: int,
        messages: torch.Tensor,
        positions: torch.Tensor | None,
        subsets: torch.Tensor | None,
    ) -> torch.Tensor | None:
        if not self.roles.byzantine_senders:
            return None
        view = AttackView(
            step=step,
            channel=self.plan.name,
            correct_messages=messages,
            num_byzantine=len(self.roles.byzantine_senders),
            num_receivers=len(self.roles.receivers),
            receiver_positions=positions,
            subsets=subsets,
            rule=self.plan.rule,
            f=self.plan.f,
            generator=self.adversary,
            correct_senders=self.roles.correct_senders,
            byzantine_senders=self.roles.byzantine_senders,
            quorum=self.plan.quorum,
            rule_options=self.plan.rule_options,
            oracle=self.oracle,
        )
        return conform(self.attack(view), view, messages.dtype)

    def _arrivals(self, byzantine_silent: bool, step: int) -> torch.Tensor:
        """Which sender's message reaches which receiver at all: (r, n)."""
        roles = self.roles
        arrived = torch.ones(len(roles.receivers), roles.num_senders, dtype=torch.bool)
        crashed = self.faults.crashed(roles.sender_role, step)
        if crashed:
            arrived[:, sorted(crashed)] = False
        if self.faults.omission > 0:
            lost = torch.rand(arrived.shape, generator=self.network)
            arrived &= (lost >= self.faults.omission) | self.is_byzantine
        if byzantine_silent:
            arrived[:, self.is_byzantine] = False
        if self.own is not None:
            arrived[torch.arange(len(self.own)), self.own] = True
        return arrived

    def _delays(self, arrived: torch.Tensor) -> torch.Tensor:
        """Seeded arrival delays (r, n); +inf for messages that never arrive."""
        delays = torch.ones(arrived.shape)
        if self.faults.delay == "exponential":
            delays.exponential_(generator=self.network)
        if self.roles.sender_role == WORKER and self.faults.stragglers:
            slow = [
                i for i in self.faults.stragglers if i in self.roles.correct_senders
            ]
            delays[:, slow] *= self.faults.straggler_slowdown
        if self.faults.byzantine_delay == "fastest":
            delays[:, self.is_byzantine] = 0.0
        if self.own is not None:
            delays[torch.arange(len(self.own)), self.own] = -1.0
        return delays.masked_fill(~arrived, torch.inf)

    def _deliver(
        self,
        messages: torch.Tensor,
        byzantine: torch.Tensor | None,
        chosen: torch.Tensor,
        present: torch.Tensor,
    ) -> torch.Tensor:
        slot = self.position[chosen]
        heard = messages[slot.clamp_max(messages.shape[0] - 1)]
        if byzantine is not None:
            receiver, column = self.is_byzantine[chosen].nonzero(as_tuple=True)
            heard[receiver, column] = byzantine[slot[receiver, column], receiver]
        if not bool(present.all()):
            heard[~present] = torch.nan
        return heard

    def _record(
        self, chosen: torch.Tensor, present: torch.Tensor, wait: torch.Tensor, dim: int
    ) -> None:
        byzantine = (self.is_byzantine[chosen] & present).sum(dim=1).float()
        correct = (~self.is_byzantine[chosen] & present).sum(dim=1).float()
        delivered = float(present.sum())
        finite_wait = wait[torch.isfinite(wait)]
        self.stats = {
            "byzantine_in_quorum": float(byzantine.mean()),
            "correct_majority": float((correct > self.plan.quorum / 2).float().mean()),
            "missing": float((~present).sum()),
            "timeouts": float((~torch.isfinite(wait)).sum()),
            "wait": float(finite_wait.mean()) if finite_wait.numel() else 0.0,
            "messages": delivered,
            "bytes": delivered * dim * 4,
        }


class SimulatedTransport:
    """All three channels of the protocol, in one process."""

    def __init__(self, topology: Topology, plan: ProtocolPlan, faults: FaultConfig):
        self.channels = {
            name: SimulatedChannel(
                plan.channel(name), channel_roles(name, topology), topology, faults
            )
            for name in (
                "server_to_worker",
                WORKER_TO_SERVER,
                SERVER_TO_SERVER,
            )
        }

    def exchange(
        self,
        channel: str,
        step: int,
        messages: torch.Tensor,
        *,
        receiver_positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.channels[channel].exchange(step, messages, receiver_positions)

    def state_dict(self) -> dict:
        """Every channel's state, by channel name (for checkpoints)."""
        return {name: c.state_dict() for name, c in self.channels.items()}

    def load_state_dict(self, state: dict) -> None:
        for name, channel in self.channels.items():
            channel.load_state_dict(state[name])

    def reset_stats(self) -> None:
        """Forget the last figures, so a channel without traffic reports none."""
        for channel in self.channels.values():
            channel.stats = {}

    def stats(self) -> dict[str, float]:
        """The last exchange's figures of every channel, as flat metric keys."""
        return {
            f"{name}/{key}": value
            for name, channel in self.channels.items()
            for key, value in channel.stats.items()
        }


def restore_generators(generators: list[torch.Generator], states: list) -> None:
    """Set each generator to its saved state; the counts must agree."""
    if len(generators) != len(states):
        raise ValueError(
            f"a checkpoint holds {len(states)} generator states where the run has "
            f"{len(generators)} generators"
        )
    for generator, state in zip(generators, states, strict=True):
        generator.set_state(state)
