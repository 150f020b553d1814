"""Start a run on Ray: a private loopback-only instance or an existing cluster.

The launcher starts one actor per node, a harness actor that receives the correct
nodes' reports on a side channel (it alone knows who is correct), and the Byzantine
coalition; then it only watches. Messages go from node to node.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from byzsgd import metrics
from byzsgd.attacks.base import SERVER_TO_SERVER, SERVER_TO_WORKER, WORKER_TO_SERVER
from byzsgd.config import Config
from byzsgd.protocol.topology import SERVER, WORKER, Topology
from byzsgd.runtime.ray.coalition import make_coalition_actor
from byzsgd.runtime.ray.isolated import MARK, namespace_command
from byzsgd.runtime.ray.node import NodeSpec, make_node_actor
from byzsgd.runtime.ray.transport import NodeIdentity
from byzsgd.validation import resolve

logger = logging.getLogger(__name__)

# Verified to keep a local Ray instance on loopback and unix sockets: no external
# bind, no usage reporting, no token under the home folder, and every HTTP request
# (such as the dashboard agent's cloud-metadata probes) sent to a closed local port.
LOOPBACK_ENVIRONMENT = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "disabled",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "no_proxy": "127.0.0.1,localhost",
    "NO_PROXY": "127.0.0.1,localhost",
}


@contextmanager
def ray_session(address: str = "", num_cpus: int = 0) -> Iterator[None]:
    """A Ray connection: ``address`` of a cluster, or a private loopback instance.

    Ray reads part of its environment when it is imported, so the loopback settings
    go in before the first ``import ray`` of the process.
    """
    saved = {key: os.environ.get(key) for key in LOOPBACK_ENVIRONMENT}
    if not address:
        os.environ.update(LOOPBACK_ENVIRONMENT)
    import ray

    if address:
        ray.init(address=address, logging_level=logging.WARNING)
        try:
            yield
        finally:
            ray.shutdown()
        return
    temp = tempfile.mkdtemp(prefix="byzsgd-ray-")
    try:
        ray.init(
            num_cpus=num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            _temp_dir=temp,
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
        yield
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(temp, ignore_errors=True)


class Harness:
    """Receives the correct nodes' reports and turns complete steps into records."""

    def __init__(self, config: Config, topology: Topology) -> None:
        from byzsgd.tasks import build_task

        torch.set_num_threads(1)
        self.config = config
        self.topology = topology
        _, self.plan = resolve(config)
        self.task = build_task(
            config.task, num_workers=config.num_workers, seed=config.seed
        )
        self.pending: dict[int, dict[tuple[str, int], dict]] = {}
        self.records: list[dict[str, Any]] = []
        self.latest: dict[int, torch.Tensor] = {}
        self._lock = threading.Lock()

    def alive(self, role: str, step: int) -> list[int]:
        correct = (
            self.topology.correct_servers
            if role == SERVER
            else self.topology.correct_workers
        )
        crashed = self.config.faults.crashed(role, step)
        return [node for node in correct if node not in crashed]

    def report(self, step: int, role: str, node: int, values: dict) -> None:
        with self._lock:
            box = self.pending.setdefault(step, {})
            box[(role, node)] = values
            if role == SERVER:
                self.latest[node] = values["params"]
            while self._complete(len(self.records)):
                self._record(len(self.records))

    def _complete(self, step: int) -> bool:
        box = self.pending.get(step, {})
        servers = all((SERVER, s) in box for s in self.alive(SERVER, step))
        workers = all((WORKER, w) in box for w in self.alive(WORKER, step))
        return step < self.config.steps and servers and workers

    def _record(self, step: int) -> None:
        box = self.pending.pop(step)
        servers, workers = self.alive(SERVER, step), self.alive(WORKER, step)
        params = torch.stack([box[(SERVER, s)]["params"] for s in servers])
        record = metrics.step_record(
            step,
            lr=self.plan.learning_rate(step),
            losses=torch.stack([box[(WORKER, w)]["loss"] for w in workers]),
            half=torch.stack([box[(SERVER, s)]["half"] for s in servers]),
            params=params,
            worker_points=torch.stack([box[(WORKER, w)]["point"] for w in workers]),
        )
        if (step + 1) % self.config.eval_every == 0 or step + 1 == self.config.steps:
            record.update(metrics.evaluation(self.task, params))
        self.records.append(record)

    def since(self, count: int) -> list[dict[str, Any]]:
        with self._lock:
            return self.records[count:]

    def final(self) -> dict[str, dict]:
        servers = self.alive(SERVER, self.config.steps - 1)
        params = torch.stack([self.latest[s] for s in servers])
        return metrics.per_server(self.task, params, tuple(servers))


class RayRunner:
    """Runs a configuration with one Ray actor per node; yields the harness records."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.topology, self.plan = resolve(config)
        self.step_index = 0
        self.step_seconds = 0.0
        self.node_stats: list[dict[str, Any]] = []
        self.interfaces: list[str] | None = None
        self.startup_seconds = float("nan")
        self.actor_memory: list[float] = []

    def records(self) -> Iterator[dict[str, Any]]:
        """Each step's record, as the harness completes it."""
        isolation = self.config.ray.isolation
        if not self.config.ray.address and isolation != "off":
            command = namespace_command()
            if command is not None:
                yield from self._isolated(command)
                return
            if isolation == "namespace":
                raise RuntimeError(
                    "ray.isolation = 'namespace' but this machine cannot create a "
                    "network namespace (unshare --net --map-root-user failed)"
                )
            logger.warning(
                "no network namespace available: the private Ray instance runs with "
                "loopback settings only, and Ray may still bind every interface"
            )
        yield from self._records()

    def _isolated(self, command: list[str]) -> Iterator[dict[str, Any]]:
        env = {**os.environ, **LOOPBACK_ENVIRONMENT, "RAY_BACKEND_LOG_LEVEL": "error"}
        with tempfile.TemporaryFile("w+") as errors:
            child = subprocess.Popen(
                [*command, sys.executable, "-m", "byzsgd.runtime.ray.isolated"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                env=env,
                preexec_fn=_die_with_parent,
            )
            assert child.stdin is not None and child.stdout is not None
            try:
                yield from self._relay(child)
            finally:
                if child.poll() is None:  # the consumer stopped early
                    child.terminate()
                    child.wait(timeout=60)
            if child.wait() != 0:
                errors.seek(0)
                tail = errors.read()[-2000:]
                raise RuntimeError(
                    f"ray runtime failed (exit {child.returncode}):\n{tail}"
                )

    def _relay(self, child: subprocess.Popen) -> Iterator[dict[str, Any]]:
        """Feed the configuration to the isolated child and relay its messages."""
        child.stdin.write(json.dumps(self.config.to_dict()))
        child.stdin.close()
        for line in child.stdout:
            if not line.startswith(MARK):
                logger.debug("ray: %s", line.rstrip())
                continue
            message = json.loads(line[len(MARK) :])
            kind, payload = message["kind"], message["payload"]
            if kind == "record":
                self.step_index += 1
                yield payload
            elif kind == "final":
                self._final = payload
            elif kind == "stats":
                self.node_stats = payload["node_stats"]
                self.step_seconds = payload["step_seconds"]
                self.startup_seconds = payload["startup_seconds"]
                self.actor_memory = payload["actor_memory"]
            elif kind == "interfaces":
                self.interfaces = payload

    def _records(self) -> Iterator[dict[str, Any]]:
        import ray

        config = self.config
        began = time.perf_counter()
        with ray_session(config.ray.address, config.ray.num_cpus):
            harness = ray.remote(num_cpus=0, max_concurrency=16)(Harness).remote(
                config, self.topology
            )
            actors = self._start(harness)
            start = time.perf_counter()
            self.startup_seconds = start - began
            self.actor_memory = ray.get([actor.memory.remote() for actor in actors])
            runs = [actor.run.remote() for actor in actors]
            pending, quiet_since = list(runs), None
            while self.step_index < config.steps:
                _, pending = ray.wait(pending, num_returns=len(pending), timeout=0.2)
                fresh = ray.get(harness.since.remote(self.step_index))
                for record in fresh:
                    self.step_index += 1
                    self.step_seconds = time.perf_counter() - start
                    yield record
                if pending or fresh:
                    quiet_since = None
                    continue
                # Every node has returned; reports may still be on their way.
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > config.ray.timeout:
                    raise RuntimeError(
                        f"ray runtime: every node stopped, the harness has "
                        f"{self.step_index} of {config.steps} steps; nodes: "
                        f"{_results(runs, self._labels(), 0.0)}"
                    )
            # Correct nodes are done once the harness has every step; Byzantine ones
            # may lag behind on quorums that will never fill, and are not waited for.
            self.node_stats = _results(runs, self._labels(), config.ray.timeout)
            self._final = ray.get(harness.final.remote())

    def _labels(self) -> list[dict[str, Any]]:
        """Role, id and Byzantine flag of each node, in the order they start."""
        labels = []
        for role, count, byzantine in (
            (SERVER, self.config.num_servers, self.topology.byzantine_servers),
            (WORKER, self.config.num_workers, self.topology.byzantine_workers),
        ):
            for node in range(count):
                labels.append(
                    {"role": role, "id": node, "byzantine": node in byzantine}
                )
        return labels

    def final_evaluation(self) -> dict[str, dict]:
        return self._final

    def _start(self, harness: Any) -> list[Any]:
        import ray

        config, topology = self.config, self.topology
        members = {
            SERVER_TO_WORKER: len(topology.byzantine_servers),
            SERVER_TO_SERVER: len(topology.byzantine_servers),
            WORKER_TO_SERVER: len(topology.byzantine_workers),
        }
        coalition = None
        if any(members.values()):
            coalition = make_coalition_actor().remote(
                self.plan,
                {k: v for k, v in members.items() if v},
                num_servers=config.num_servers,
                num_workers=config.num_workers,
                seed=config.seed,
                timeout=config.ray.timeout,
            )
        node_actor = make_node_actor()
        actors = {SERVER: [], WORKER: []}
        for role, count, byzantine in (
            (SERVER, config.num_servers, topology.byzantine_servers),
            (WORKER, config.num_workers, topology.byzantine_workers),
        ):
            crashed = set(getattr(config.faults, f"crash_{role}s"))
            for node in range(count):
                spec = NodeSpec(
                    identity=NodeIdentity(
                        role, node, config.num_servers, config.num_workers, config.seed
                    ),
                    config=config,
                    byzantine=node in byzantine,
                    member=sorted(byzantine).index(node) if node in byzantine else -1,
                    crash_step=config.faults.crash_step if node in crashed else None,
                    straggler=role == WORKER and node in config.faults.stragglers,
                )
                actors[role].append(node_actor.remote(spec, harness, coalition))
        everyone = actors[SERVER] + actors[WORKER]
        ray.get([a.connect.remote(actors[SERVER], actors[WORKER]) for a in everyone])
        return everyone


def _die_with_parent() -> None:
    """In the child, before exec: ask the kernel for SIGTERM when the parent dies."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _results(
    runs: list[Any], labels: list[dict[str, Any]], timeout: float
) -> list[dict[str, Any]]:
    """What each node's loop returned; correct nodes are given ``timeout`` seconds."""
    import ray

    results = []
    deadline = time.monotonic() + timeout
    for ref, label in zip(runs, labels, strict=True):
        wait = 0.0 if label["byzantine"] else max(deadline - time.monotonic(), 0.0)
        try:
            results.append({**label, **ray.get(ref, timeout=wait)})
        except ray.exceptions.GetTimeoutError:
            results.append({**label, "error": "still running"})
        except Exception as error:  # a crashed node's process is gone
            results.append({**label, "error": type(error).__name__})
    return results
