"""Checkpoints: a killed run resumes and ends bit for bit as an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from byzsgd import checkpoint, resume, run
from byzsgd.api import make_runner
from byzsgd.attacks import make
from byzsgd.cli import main
from byzsgd.config import ConfigError, to_toml
from byzsgd.recording import (
    CHECKPOINT_FILE,
    METRICS_FILE,
    SUMMARY_FILE,
    RunFolder,
    read_metrics,
)
from tests.conftest import tiny_config

SRC = Path(__file__).resolve().parents[1] / "src"
WALL_CLOCK = {"wall_seconds", "steps_per_second", "run_dir"}


def _cli(*args: str) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    return subprocess.Popen(
        [sys.executable, "-m", "byzsgd.cli", *args, "--no-progress"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.is_file() else 0


def _kill_after_checkpoint(process: subprocess.Popen, folder: Path) -> int:
    """SIGKILL the run once a checkpoint exists and lines were written after it."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if (folder / CHECKPOINT_FILE).is_file():
            state = checkpoint.load(folder)
            if _lines(folder / METRICS_FILE) > state["metrics_lines"]:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
                return int(state["step"])
        time.sleep(0.005)
    raise AssertionError("the run ended before it could be killed after a checkpoint")


def _final_state(folder: Path) -> dict:
    return checkpoint.load(folder)["simulator"]


def _same_state(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_same_state, a, b))
    return a == b


def test_run_killed_with_sigkill_resumes_bitwise(tmp_path) -> None:
    config = tiny_config(
        steps=1500,
        eval_every=50,
        checkpoint_every=40,
        threads=1,
        server_to_worker__attack="stale",
        worker_to_server__attack="label_flip",
        server_to_server__attack="balancing",
        faults__omission=0.1,
    )
    path = tmp_path / "run.toml"
    path.write_text(to_toml(config))
    whole, killed = tmp_path / "whole", tmp_path / "killed"

    reference = _cli("run", str(path), "--out", str(whole))
    victim = _cli("run", str(path), "--out", str(killed))
    step = _kill_after_checkpoint(victim, killed)
    assert victim.returncode == -signal.SIGKILL
    assert 0 < step < config.steps
    assert not (killed / SUMMARY_FILE).exists()
    assert _lines(killed / METRICS_FILE) > step  # lines past the checkpoint

    resumed = _cli("run", "--resume", str(killed))
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()
    assert reference.wait(timeout=300) == 0, reference.stderr.read().decode()

    metrics = (whole / METRICS_FILE).read_bytes()
    assert metrics.count(b"\n") == config.steps
    assert (killed / METRICS_FILE).read_bytes() == metrics
    final_whole, final_killed = _final_state(whole), _final_state(killed)
    for timing in ("step_seconds", "timed_steps"):  # a resumed run warms up again
        final_whole.pop(timing), final_killed.pop(timing)
    assert _same_state(final_killed, final_whole)
    a, b = (json.loads((d / SUMMARY_FILE).read_text()) for d in (whole, killed))
    assert a["steps"] == b["steps"] == config.steps
    assert {k: v for k, v in a.items() if k not in WALL_CLOCK} == {
        k: v for k, v in b.items() if k not in WALL_CLOCK
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {"worker_to_server__rule": "bucketing+median", "faults__omission": 0.2},
        {"server_to_worker__attack": "stale", "server_to_server__attack": "split"},
        {
            "worker_to_server__attack": "label_flip",
            "server_to_server__policy": "first",
            "server_to_server__attack": "balancing",
        },
    ],
)
def test_resume_in_process_matches_an_uninterrupted_run(tmp_path, overrides) -> None:
    config = tiny_config(steps=30, checkpoint_every=7, **overrides)
    whole = run(config, out=tmp_path / "whole")

    # Stop after step 17, past the checkpoint of step 14, as a crash would.
    simulator = make_runner(config)
    folder = RunFolder.create(tmp_path / "cut", config)
    for record in simulator.records():
        folder.append(record)
        if simulator.step_index == 14:
            checkpoint.save(folder, simulator, wall_seconds=0.0)
        if simulator.step_index == 17:
            break
    folder.close()
    assert _lines(tmp_path / "cut" / METRICS_FILE) == 17

    again = resume(tmp_path / "cut")
    assert read_metrics(tmp_path / "cut") == read_metrics(tmp_path / "whole")
    assert {k: v for k, v in again.items() if k not in WALL_CLOCK} == {
        k: v for k, v in whole.items() if k not in WALL_CLOCK
    }
    assert torch.equal(
        _final_state(tmp_path / "cut")["params"],
        _final_state(tmp_path / "whole")["params"],
    )


def test_resume_refuses_what_it_cannot_continue(tmp_path, capsys) -> None:
    config = tiny_config(steps=6, checkpoint_every=0)
    run(config, out=tmp_path / "finished")
    with pytest.raises(ValueError, match="is finished"):
        resume(tmp_path / "finished")

    (tmp_path / "finished" / SUMMARY_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="has no checkpoint"):
        resume(tmp_path / "finished")
    with pytest.raises(FileNotFoundError, match="is no run folder"):
        resume(tmp_path / "nothing")

    run(tiny_config(steps=6, checkpoint_every=3), out=tmp_path / "other")
    (tmp_path / "other" / SUMMARY_FILE).unlink()
    with pytest.raises(ConfigError, match=r"differs .* in steps \(7 != 6\)"):
        resume(tmp_path / "other", overrides=["steps=7"])
    assert main(["run", "--resume", str(tmp_path / "other"), "--set", "seed=3"]) == 2
    assert "in seed (3 != 0)" in capsys.readouterr().err

    (tmp_path / "other" / CHECKPOINT_FILE).replace(
        tmp_path / "finished" / CHECKPOINT_FILE
    )
    with pytest.raises(ValueError, match="was written by configuration"):
        resume(tmp_path / "finished")

    ray = tmp_path / "ray"
    ray.mkdir()
    (ray / "config.toml").write_text(to_toml(tiny_config(runtime="ray")))
    with pytest.raises(ValueError, match="simulator-only"):
        resume(ray)


def test_resume_refuses_metrics_shorter_than_the_checkpoint(tmp_path) -> None:
    run(tiny_config(steps=8, checkpoint_every=4), out=tmp_path / "r")
    (tmp_path / "r" / SUMMARY_FILE).unlink()
    metrics = tmp_path / "r" / METRICS_FILE
    metrics.write_bytes(metrics.read_bytes()[:100])
    with pytest.raises(ValueError, match="metric lines were lost"):
        resume(tmp_path / "r")


def test_resume_refuses_metrics_edited_before_the_checkpoint(tmp_path) -> None:
    run(tiny_config(steps=8, checkpoint_every=4), out=tmp_path / "r")
    (tmp_path / "r" / SUMMARY_FILE).unlink()
    metrics = tmp_path / "r" / METRICS_FILE
    data = metrics.read_bytes()
    at = data.index(b'"step": 0') + len(b'"step": ')
    metrics.write_bytes(data[:at] + b"9" + data[at + 1 :])  # same length, one byte
    with pytest.raises(ValueError, match="does not match its checkpoint"):
        resume(tmp_path / "r")
    (tmp_path / "r" / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"is not a readable checkpoint: .+"):
        resume(tmp_path / "r")


def test_stateful_attacks_round_trip_their_state() -> None:
    stale = make("stale", "server_to_server", {"lag": 2})
    stale.history.extend([torch.zeros(3), torch.ones(3)])
    copy = make("stale", "server_to_server", {"lag": 2})
    copy.load_state_dict(stale.state_dict())
    assert copy.history.maxlen == 3
    assert [t.tolist() for t in copy.history] == [[0.0] * 3, [1.0] * 3]

    polarise = make("polarise", "worker_to_server")
    polarise.direction = torch.tensor([0.6, 0.8])
    state = polarise.state_dict()
    polarise.direction[0] = 5.0  # the saved state is a copy
    fresh = make("polarise", "worker_to_server")
    fresh.load_state_dict(state)
    assert fresh.direction.tolist() == pytest.approx([0.6, 0.8])
