"""The in-process simulator: every node in one process, batched over nodes.

The harness around :func:`byzsgd.protocol.step.protocol_step`: it holds the correct
servers' parameters and the correct workers' generators, moves messages with the
:class:`SimulatedTransport`, and measures what only it can know.
"""

from __future__ import annotations

import logging
import time
import zlib

import torch

from byzsgd import metrics
from byzsgd.attacks.base import WORKER_TO_SERVER
from byzsgd.config import CHANNELS, Config, ConfigError
from byzsgd.protocol.step import protocol_step
from byzsgd.protocol.topology import WORKER, Topology
from byzsgd.runtime.channels import SimulatedTransport, restore_generators
from byzsgd.tasks import Task, build_task
from byzsgd.validation import resolve

logger = logging.getLogger(__name__)


class _BatchStreams:
    """Workers' batch generators, saved and restored as a list of states."""

    generators: list[torch.Generator]

    def state_dict(self) -> list[torch.Tensor]:
        return [g.get_state() for g in self.generators]

    def load_state_dict(self, state: list[torch.Tensor]) -> None:
        restore_generators(self.generators, state)


class WorkerPool(_BatchStreams):
    """The correct workers: one batch generator each, one batched gradient call."""

    def __init__(self, task: Task, topology: Topology, batch_size: int) -> None:
        self.task = task
        self.ids = topology.correct_workers
        self.batch_size = batch_size
        self.generators = [topology.generator(WORKER, i, "batches") for i in self.ids]

    def __call__(
        self, step: int, points: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.task.sample_batches(self.ids, self.generators, self.batch_size)
        return self.task.gradients(points, x, y)


class ByzantineWorkers(_BatchStreams):
    """Honest computation for the Byzantine workers, on their own shards.

    The attacks that need it (label flipping) call it through the attack view.
    """

    def __init__(self, task: Task, topology: Topology, batch_size: int) -> None:
        self.task = task
        self.ids = topology.byzantine_workers
        self.batch_size = batch_size
        self.generators = [topology.generator(WORKER, i, "batches") for i in self.ids]

    def __call__(self, points: torch.Tensor, flip_labels: bool) -> torch.Tensor:
        x, y = self.task.sample_batches(self.ids, self.generators, self.batch_size)
        if flip_labels and self.task.num_classes is not None:
            y = self.task.num_classes - 1 - y
        return self.task.gradients(points, x, y)[0]


class Simulator:
    """Runs a validated configuration step by step and returns metric records."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.topology, self.plan = resolve(config)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.task = load_task(config)
        init = self.task.init_params(self.topology.generator("init"))
        servers = len(self.topology.correct_servers)
        self.params = init.expand(servers, -1).clone()
        self.transport = SimulatedTransport(self.topology, self.plan, config.faults)
        self.workers = WorkerPool(self.task, self.topology, config.batch_size)
        if self.topology.byzantine_workers:
            self.transport.channels[WORKER_TO_SERVER].oracle = ByzantineWorkers(
                self.task, self.topology, config.batch_size
            )
        self.rule_generators = {
            name: self.topology.generator("rules", name) for name in CHANNELS
        }
        self.step_index = 0
        # Time of the protocol steps, without the first step this process runs
        # (it pays one-off costs: allocations, lazy imports, kernel choices).
        self.step_seconds = 0.0
        self.timed_steps = 0
        self.warmup_seconds: float | None = None
        logger.info(
            "simulator: %d servers (Byzantine %s), %d workers (Byzantine %s), d = %d",
            config.num_servers,
            list(self.topology.byzantine_servers),
            config.num_workers,
            list(self.topology.byzantine_workers),
            self.task.dim,
        )

    def state_dict(self) -> dict:
        """Everything the next steps depend on: parameters, generators, counters.

        With it, a fresh simulator of the same configuration continues the run bit
        for bit (see :mod:`byzsgd.checkpoint`).
        """
        oracle = self.transport.channels[WORKER_TO_SERVER].oracle
        return {
            "step": self.step_index,
            "step_seconds": self.step_seconds,
            "timed_steps": self.timed_steps,
            "params": self.params.clone(),
            "workers": self.workers.state_dict(),
            "byzantine_workers": [] if oracle is None else oracle.state_dict(),
            "rules": {name: g.get_state() for name, g in self.rule_generators.items()},
            "transport": self.transport.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        if tuple(state["params"].shape) != tuple(self.params.shape):
            raise ValueError(
                f"a checkpoint holds parameters of shape {tuple(state['params'].shape)}"
                f" where the run has {tuple(self.params.shape)}"
            )
        self.step_index = int(state["step"])
        self.step_seconds = float(state["step_seconds"])
        self.timed_steps = int(state.get("timed_steps", state["step"]))
        self.params = state["params"].clone()
        self.workers.load_state_dict(state["workers"])
        oracle = self.transport.channels[WORKER_TO_SERVER].oracle
        if oracle is not None:
            oracle.load_state_dict(state["byzantine_workers"])
        for name, generator in self.rule_generators.items():
            generator.set_state(state["rules"][name])
        self.transport.load_state_dict(state["transport"])

    @property
    def done(self) -> bool:
        return self.step_index >= self.config.steps

    def records(self):
        """Run every remaining step, yielding each step's metric record."""
        while not self.done:
            yield self.step()

    def step(self) -> dict[str, float]:
        """Run one protocol step and return its metric record."""
        t = self.step_index
        self.transport.reset_stats()
        start = time.perf_counter()
        result = protocol_step(
            t,
            self.params,
            plan=self.plan,
            transport=self.transport,
            oracle=self.workers,
            generators=self.rule_generators,
        )
        self._time(time.perf_counter() - start)
        self.params = result.params
        self.step_index += 1

        servers = self.surviving_servers(t)
        workers = self.surviving_workers(t)
        record = metrics.step_record(
            t,
            lr=self.plan.learning_rate(t),
            losses=result.losses[workers],
            half=result.half[servers],
            params=result.params[servers],
            worker_points=result.worker_points[workers],
        )
        record.update(self.transport.stats())
        if self.step_index % self.config.eval_every == 0 or self.done:
            record.update(metrics.evaluation(self.task, self.params[servers]))
        return record

    def _time(self, seconds: float) -> None:
        if self.warmup_seconds is None:
            self.warmup_seconds = seconds
        else:
            self.step_seconds += seconds
            self.timed_steps += 1

    def seconds_per_step(self) -> float:
        """Mean time of a protocol step, warm-up excluded where there are others."""
        if self.timed_steps:
            return self.step_seconds / self.timed_steps
        return self.warmup_seconds or 0.0

    def surviving_servers(self, step: int) -> list[int]:
        """Rows of the correct servers that have not crashed by ``step``."""
        return _survivors(
            self.topology.correct_servers, self.config.faults, "server", step
        )

    def surviving_workers(self, step: int) -> list[int]:
        """Rows of the correct workers that have not crashed by ``step``."""
        return _survivors(
            self.topology.correct_workers, self.config.faults, "worker", step
        )

    def final_evaluation(self) -> dict[str, dict]:
        """Each surviving correct server's test figures after the last step."""
        rows = self.surviving_servers(self.config.steps - 1)
        ids = tuple(self.topology.correct_servers[i] for i in rows)
        return metrics.per_server(self.task, self.params[rows], ids)


def load_task(config: Config) -> Task:
    """Build the task; an unreadable data folder is a configuration error."""
    try:
        return build_task(config.task, num_workers=config.num_workers, seed=config.seed)
    except (OSError, EOFError, zlib.error) as error:
        raise ConfigError(
            f"task.data_dir = {config.task.data_dir!r}: cannot read the data: {error}"
        ) from None


def _survivors(ids: tuple[int, ...], faults, role: str, step: int) -> list[int]:
    crashed = faults.crashed(role, step)
    return [row for row, node in enumerate(ids) if node not in crashed]
