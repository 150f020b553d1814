"""One process per node: a correct or Byzantine server or worker, as a Ray actor.

Each node runs :func:`byzsgd.protocol.step.protocol_step` on its own row of the
system's state; messages go straight to the receiving actors (no coordinator in the
data path), and correct servers and workers report to the harness on the side.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch

from byzsgd.config import Config
from byzsgd.protocol.step import protocol_step
from byzsgd.protocol.topology import SERVER, WORKER, generator
from byzsgd.runtime.ray.mailbox import Mailbox
from byzsgd.runtime.ray.transport import NodeIdentity, NodeTransport, channel_roles

logger = logging.getLogger(__name__)


@dataclass
class NodeSpec:
    """How the launcher describes a node to itself."""

    identity: NodeIdentity
    config: Config
    byzantine: bool = False
    member: int = -1  # index in the Byzantine coalition, for a Byzantine node
    crash_step: int | None = None  # the node's process exits at this step
    straggler: bool = False


class CoalitionTransport(NodeTransport):
    """A Byzantine node's transport: the coalition decides what it sends."""

    def __init__(self, *args: Any, coalition: Any, member: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.coalition = coalition
        self.member = member

    def broadcast(
        self, channel: str, step: int, message: torch.Tensor, receiver_role: str
    ) -> None:
        import ray

        forged = ray.get(
            self.coalition.forge.remote(channel, step, self.member, message)
        )
        if forged is None:  # silent this step
            return
        for receiver in range(self.me.count(receiver_role)):
            self.deliver_to(channel, step, receiver_role, receiver, forged[receiver])


class NodeLoop:
    """The state and loop of one node, independent of Ray (testable in-process)."""

    def __init__(
        self,
        spec: NodeSpec,
        send: Any,
        report: Any,
        coalition: Any = None,
        pack: Any = None,
        flush: Any = None,
    ) -> None:
        from byzsgd.tasks import build_task
        from byzsgd.validation import resolve

        torch.set_num_threads(1)
        self.spec = spec
        config = spec.config
        _, self.plan = resolve(config)
        me = spec.identity
        self.task = build_task(
            config.task, num_workers=config.num_workers, seed=config.seed
        )
        self.mailbox = Mailbox(self.task.dim, max_ahead=config.ray.max_ahead)
        options = dict(
            timeout=config.ray.timeout,
            pack=pack,
            omission=0.0 if spec.byzantine else config.faults.omission,
            send_delay=config.ray.straggler_delay * config.faults.straggler_slowdown
            if spec.straggler
            else 0.0,
        )
        if spec.byzantine:
            self.transport: NodeTransport = CoalitionTransport(
                me,
                self.plan,
                self.mailbox,
                send,
                coalition=coalition,
                member=spec.member,
                **options,
            )
        else:
            self.transport = NodeTransport(me, self.plan, self.mailbox, send, **options)
        self.report = report
        self.flush = flush or (lambda: None)
        init = self.task.init_params(generator(config.seed, "init"))
        rows = 1 if me.role == SERVER else 0
        self.params = init.expand(rows, -1).clone()
        self.batches = generator(config.seed, WORKER, me.node_id, "batches")
        self.rules = {
            name: generator(config.seed, "rules", name)
            for name in ("server_to_worker", "worker_to_server", "server_to_server")
        }

    def gradients(self, step: int, points: torch.Tensor):
        if points.shape[0] == 0:
            return points.clone(), points.new_empty(0)
        x, y = self.task.sample_batches(
            [self.spec.identity.node_id], [self.batches], self.plan.batch_size
        )
        return self.task.gradients(points, x, y)

    def run(self) -> dict[str, Any]:
        me = self.spec.identity
        for step in range(self.spec.config.steps):
            if self.spec.crash_step is not None and step >= self.spec.crash_step:
                logger.info("%s %d crashes at step %d", me.role, me.node_id, step)
                self.flush()  # what it reported before the crash reaches the harness
                os._exit(1)
            self.mailbox.advance(step)
            result = protocol_step(
                step,
                self.params,
                plan=self.plan,
                transport=self.transport,
                oracle=self.gradients,
                generators=self.rules,
            )
            self.params = result.params
            if not self.spec.byzantine:
                self._report(step, result)
        return {"mailbox": dict(self.mailbox.counts), **self.transport.stats}

    def _report(self, step: int, result) -> None:
        me = self.spec.identity
        if me.role == SERVER:
            self.report(
                step,
                me.role,
                me.node_id,
                {"half": result.half[0], "params": result.params[0]},
            )
        else:
            self.report(
                step,
                me.role,
                me.node_id,
                {"point": result.worker_points[0], "loss": result.losses[0]},
            )


def make_node_actor():
    """The Ray actor class, created lazily so that ``import byzsgd`` needs no Ray."""
    import ray

    @ray.remote(num_cpus=0, max_concurrency=8)
    class NodeActor:
        def __init__(self, spec: NodeSpec, harness: Any, coalition: Any) -> None:
            self.spec = spec
            self.harness = harness
            self.coalition = coalition
            self.peers: dict[str, list[Any]] = {}
            self.loop: NodeLoop | None = None

        def connect(self, servers: list[Any], workers: list[Any]) -> bool:
            self.peers = {SERVER: servers, WORKER: workers}
            self.last_report = None
            self.loop = NodeLoop(
                self.spec,
                self._send,
                self._report,
                self.coalition,
                ray.put,
                self._flush,
            )
            return True

        def memory(self) -> float:
            """Resident memory of this node's process, in MiB."""
            with open("/proc/self/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
            return float("nan")

        def deliver(self, channel: str, step: int, sender: int, payload: Any) -> None:
            if self.loop is not None:
                self.loop.mailbox.deliver(channel, step, sender, payload)

        def run(self) -> dict[str, Any]:
            assert self.loop is not None, "connect() first"
            return self.loop.run()

        def _send(self, channel, step, role, receiver, sender, message) -> None:
            self.peers[role][receiver].deliver.remote(channel, step, sender, message)

        def _report(self, step, role, node, values) -> None:
            self.last_report = self.harness.report.remote(step, role, node, values)

        def _flush(self) -> None:
            if self.last_report is not None:
                ray.get(self.last_report)

    return NodeActor


def sender_role(channel: str) -> str:
    return channel_roles(channel)[0]
