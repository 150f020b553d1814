"""The multi-process runtime on Ray: same results as the simulator, crash
tolerance, and a local instance that stays on loopback."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from byzsgd import run

pytestmark = pytest.mark.timeout(600)


def small(runtime: str, **changes) -> dict:
    config = {
        "steps": 20,
        "batch_size": 8,
        "eval_every": 10,
        "num_servers": 4,
        "num_byzantine_servers": 0,
        "num_workers": 6,
        "num_byzantine_workers": 0,
        "runtime": runtime,
        "task": {"name": "digits", "model": "logistic"},
        "server_to_worker": {"policy": "random", "quorum": 3, "attack": "none"},
        "worker_to_server": {
            "policy": "random",
            "quorum": 5,
            "rule": "mda",
            "f": 1,
            "attack": "none",
        },
        "server_to_server": {"policy": "random", "quorum": 3, "attack": "none"},
        "ray": {"num_cpus": 2, "timeout": 60.0},
    }
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            config.setdefault(section, {})[name] = value
        else:
            config[key] = value
    return config


def final_params(folder: Path) -> list[float]:
    return json.loads((folder / "summary.json").read_text())["final_diameter"]


def test_ray_matches_the_simulator_with_random_subsets(tmp_path) -> None:
    ray_summary = run(small("ray"), out=tmp_path / "ray")
    sim_summary = run(small("simulator"), out=tmp_path / "sim")
    for norm in ("l1", "l2", "linf"):
        assert (
            abs(
                ray_summary["final_diameter"][norm]
                - sim_summary["final_diameter"][norm]
            )
            < 1e-5
        )
    assert ray_summary["final_diameter"]["l2"] > 0  # subsets made the servers differ
    for server, accuracy in sim_summary["final_accuracy"].items():
        assert abs(ray_summary["final_accuracy"][server] - accuracy) < 1e-6
    ray_records = [json.loads(x) for x in (tmp_path / "ray" / "metrics.jsonl").open()]
    sim_records = [json.loads(x) for x in (tmp_path / "sim" / "metrics.jsonl").open()]
    for a, b in zip(ray_records, sim_records, strict=True):
        assert abs(a["diameter_linf"] - b["diameter_linf"]) < 1e-5
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-5


def test_killed_processes_do_not_stop_the_run(tmp_path) -> None:
    changes = dict(
        steps=150,
        eval_every=50,
        optimizer={"lr": 0.5},
        server_to_worker__policy="first",
        server_to_worker__quorum=3,
        worker_to_server__policy="first",
        worker_to_server__quorum=5,
        worker_to_server__rule="median",
        server_to_server__policy="first",
        server_to_server__quorum=3,
    )
    crashes = {"crash_servers": [2], "crash_workers": [4], "crash_step": 50}
    crashed = run(small("ray", faults=crashes, **changes), out=tmp_path / "crash")
    intact = run(small("ray", **changes), out=tmp_path / "intact")
    assert crashed["steps"] == 150
    assert crashed["surviving_servers"] == [0, 1, 3]
    worst = min(crashed["final_accuracy"].values())
    reference = min(intact["final_accuracy"].values())
    assert worst >= reference - 0.02, (worst, reference)


def test_local_ray_opens_no_connection_off_loopback(tmp_path) -> None:
    """Trace every connect of every process; the instance sees only ``lo``."""
    assert shutil.which("strace"), "this test traces system calls: install strace"
    trace = tmp_path / "trace"
    script = (
        "from byzsgd import run; import json, sys; "
        f"run(json.loads(sys.argv[1]), out={str(tmp_path / 'run')!r})"
    )
    config = small("ray", steps=3)
    subprocess.run(
        [
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=connect",
            "-o",
            str(trace),
            sys.executable,
            "-c",
            script,
            json.dumps(config),
        ],
        check=True,
        timeout=500,
    )
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["ray_interfaces"] == ["lo"]
    opened = set()
    for line in trace.read_text().splitlines():
        if "connect(" not in line or "AF_INET" not in line:
            continue
        if not (line.endswith("= 0") or "EINPROGRESS" in line):
            continue  # refused or unreachable: nothing left the machine
        match = re.search(
            r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6?, "([^"]+)"', line
        )
        assert match, line
        opened.add(match.group(1) or match.group(2))
    assert opened, "no inet connection traced: the trace did not see Ray's sockets"
    allowed = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
    assert opened <= allowed, f"connections off loopback: {sorted(opened - allowed)}"
    assert not list(Path.home().joinpath(".ray").glob("*token*"))
