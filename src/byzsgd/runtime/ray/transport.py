"""The Ray runtime's transport: one node's side of every channel.

A node runs the same :func:`byzsgd.protocol.step.protocol_step` as the simulator,
holding one row of server parameters (a server) or none (a worker). ``exchange``
sends the node's own message to the receivers of the channel, if it is a sender
there, and collects its quorum, if it is a receiver there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from byzsgd.attacks.base import SERVER_TO_SERVER, WORKER_TO_SERVER
from byzsgd.protocol.plan import ProtocolPlan
from byzsgd.protocol.quorum import random_subsets
from byzsgd.protocol.topology import SERVER, WORKER, generator
from byzsgd.runtime.ray.mailbox import Mailbox

logger = logging.getLogger(__name__)

Send = Callable[[str, int, str, int, int, torch.Tensor], None]


def channel_roles(channel: str) -> tuple[str, str]:
    """(sender role, receiver role) of a channel."""
    if channel == WORKER_TO_SERVER:
        return WORKER, SERVER
    if channel == SERVER_TO_SERVER:
        return SERVER, SERVER
    return SERVER, WORKER


@dataclass
class NodeIdentity:
    """What a node knows of itself and of the system (never who is Byzantine)."""

    role: str
    node_id: int
    num_servers: int
    num_workers: int
    seed: int

    def count(self, role: str) -> int:
        return self.num_servers if role == SERVER else self.num_workers


class NodeTransport:
    """Sends this node's messages and collects its quorums."""

    def __init__(
        self,
        identity: NodeIdentity,
        plan: ProtocolPlan,
        mailbox: Mailbox,
        send: Send,
        *,
        timeout: float,
        omission: float = 0.0,
        send_delay: float = 0.0,
        pack: Callable[[torch.Tensor], object] | None = None,
    ) -> None:
        self.me = identity
        self.plan = plan
        self.mailbox = mailbox
        self.send = send
        self.timeout = timeout
        self.omission = omission
        self.send_delay = send_delay
        self.pack = pack or (lambda message: message)
        self.network = generator(
            identity.seed, "network", identity.role, identity.node_id
        )
        self.subset_generators = {
            name: generator(
                identity.seed, identity.role, identity.node_id, name, "subsets"
            )
            for name in ("server_to_worker", WORKER_TO_SERVER, SERVER_TO_SERVER)
        }
        self.stats = {"timeouts": 0, "missing": 0, "wait": 0.0}

    def exchange(
        self,
        channel: str,
        step: int,
        messages: torch.Tensor,
        *,
        receiver_positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        sender_role, receiver_role = channel_roles(channel)
        if self.me.role == sender_role and messages.shape[0] == 1:
            self.broadcast(channel, step, messages[0], receiver_role)
        quorum = self.plan.channel(channel).quorum
        if self.me.role != receiver_role:
            return messages.new_empty((0, quorum, messages.shape[-1]))
        return self.listen(channel, step).unsqueeze(0)

    def broadcast(
        self, channel: str, step: int, message: torch.Tensor, receiver_role: str
    ) -> None:
        """Send ``message`` to every node of the receiving role."""
        if self.send_delay > 0:
            time.sleep(self.send_delay)
        packed = self.pack(message)  # serialised once for every receiver
        for receiver in range(self.me.count(receiver_role)):
            self.deliver_to(channel, step, receiver_role, receiver, message, packed)

    def deliver_to(
        self,
        channel: str,
        step: int,
        receiver_role: str,
        receiver: int,
        message: torch.Tensor,
        packed: object = None,
    ) -> None:
        if receiver_role == self.me.role and receiver == self.me.node_id:
            self.mailbox.deliver(channel, step, self.me.node_id, message)
            return
        if (
            self.omission > 0
            and float(torch.rand((), generator=self.network)) < self.omission
        ):
            return
        payload = message if packed is None else packed
        self.send(channel, step, receiver_role, receiver, self.me.node_id, payload)

    def listen(self, channel: str, step: int) -> torch.Tensor:
        """This node's quorum on ``channel`` at ``step``: (q, d), NaN where missing."""
        plan = self.plan.channel(channel)
        sender_role, _ = channel_roles(channel)
        n = self.me.count(sender_role)
        expected: Sequence[int] | None
        if plan.policy == "random":
            own = [self.me.node_id] if plan.include_self else None
            gens = [self.subset_generators[channel]]
            expected = random_subsets(n, plan.quorum, gens, own_ids=own)[0].tolist()
        elif plan.policy == "all":
            expected = list(range(n))
        else:
            expected = None
        start = time.monotonic()
        _, heard, timed_out = self.mailbox.collect(
            channel, step, expected=expected, quorum=plan.quorum, timeout=self.timeout
        )
        self.stats["wait"] += time.monotonic() - start
        self.stats["timeouts"] += int(timed_out)
        self.stats["missing"] += int(torch.isnan(heard).all(dim=-1).sum())
        return heard
