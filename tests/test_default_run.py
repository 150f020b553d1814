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
