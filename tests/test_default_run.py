"""The embedded default: learns under attack, and drifts apart without the gather."""

from __future__ import annotations

from byzsgd import run
from byzsgd.recording import read_metrics


def test_default_run_learns_and_gather_off_drifts(tmp_path) -> None:
    summary = run(None, out=tmp_path / "default")
    assert summary["steps"] == 300
    assert len(summary["final_accuracy"]) == 4
    assert min(summary["final_accuracy"].values()) >= 0.85
    assert summary["final_diameter"]["linf"] < 0.1

    off = run(None, overrides=["server_to_server.mixing=0"], out=tmp_path / "off")
    l2 = [r["diameter_l2"] for r in read_metrics(tmp_path / "off")]
    thirds = [l2[99], l2[199], l2[299]]
    assert thirds[0] < thirds[1] < thirds[2], thirds
    assert l2[-1] > 20 * summary["final_diameter"]["l2"]
    assert off["final_diameter"]["linf"] > 10 * summary["final_diameter"]["linf"]


def test_time_per_step_leaves_out_the_warm_up_step() -> None:
    from byzsgd.runtime.simulator import Simulator
    from tests.conftest import tiny_config

    simulator = Simulator(tiny_config(steps=5))
    for _ in simulator.records():
        pass
    assert simulator.timed_steps == 4
    assert simulator.warmup_seconds is not None and simulator.warmup_seconds > 0
    assert simulator.seconds_per_step() == simulator.step_seconds / 4
    single = Simulator(tiny_config(steps=1))
    list(single.records())
    assert single.seconds_per_step() == single.warmup_seconds > 0


def test_crashed_correct_nodes_leave_the_simulation_at_the_crash_step() -> None:
    from byzsgd.config import FaultConfig
    from byzsgd.runtime.simulator import Simulator
    from tests.conftest import tiny_config

    faults = FaultConfig(crash_servers=[3], crash_workers=[2, 4], crash_step=5)
    assert faults.crashed("server", 4) == frozenset()
    assert faults.crashed("server", 5) == {3}
    assert faults.crashed("worker", 9) == {2, 4}

    probe = Simulator(tiny_config(steps=8))
    server = probe.topology.correct_servers[0]
    worker = probe.topology.correct_workers[0]
    simulator = Simulator(
        tiny_config(
            steps=8,
            faults__crash_servers=[server],
            faults__crash_workers=[worker],
            faults__crash_step=5,
        )
    )
    servers = len(simulator.topology.correct_servers)
    assert len(simulator.surviving_servers(4)) == servers
    assert len(simulator.surviving_servers(5)) == servers - 1
    assert server not in [
        simulator.topology.correct_servers[i] for i in simulator.surviving_servers(5)
    ]
    list(simulator.records())
    final = simulator.final_evaluation()["loss"]
    assert str(server) not in final and len(final) == servers - 1
