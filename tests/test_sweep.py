"""Sweeps: products of values, one folder per run, failures isolated, no work redone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from byzsgd.cli import main
from byzsgd.config import ConfigError
from byzsgd.experiments.sweep import MANIFEST_FILE, load_grid, run_sweep
from byzsgd.recording import ERROR_FILE, SUMMARY_FILE

SRC = Path(__file__).resolve().parents[1] / "src"

GRID = """
[base]
steps = 4
batch_size = 8
eval_every = 2
checkpoint_every = 2
num_servers = 4
num_byzantine_servers = 1
num_workers = 4
num_byzantine_workers = 1
task = {{ name = "digits", model = "logistic" }}
server_to_worker = {{ policy = "random", attack = "split" }}
worker_to_server = {{ policy = "random", rule = "median" }}
server_to_server = {{ policy = "random", attack = "split" }}

[grid]
"worker_to_server.attack" = ["sign_flip", "alie"]
seed = [0, 1]

[[include]]
name = "broken data"
"task.name" = "mnist"
"task.data_dir" = "{missing}"
"""


def _grid(tmp_path, text: str = GRID, **fields: str):
    path = tmp_path / "grid.toml"
    path.write_text(text.format(missing=tmp_path / "no-such-folder", **fields))
    return path


def test_failed_run_does_not_stop_the_others_and_is_reported(tmp_path, capsys) -> None:
    path = _grid(tmp_path)
    out = tmp_path / "sweep"
    assert main(["sweep", str(path), "--out", str(out), "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "5 runs" in captured.out and "4 done, 1 failed" in captured.out
    assert "failed: ConfigError: task.data_dir" in captured.err

    manifest = json.loads((out / MANIFEST_FILE).read_text())
    (broken,) = [r for r in manifest["runs"] if r["status"] == "failed"]
    assert broken["name"] == "broken data"
    error = json.loads((out / broken["hash"] / ERROR_FILE).read_text())
    assert error["type"] == "ConfigError" and "no-such-folder" in error["message"]
    assert "Traceback" in error["traceback"]
    done = [r for r in manifest["runs"] if r["status"] == "done"]
    assert len(done) == 4
    assert {tuple(r["values"].values()) for r in done} == {
        ("sign_flip", 0),
        ("sign_flip", 1),
        ("alie", 0),
        ("alie", 1),
    }
    for entry in done:
        summary = json.loads((out / entry["hash"] / SUMMARY_FILE).read_text())
        assert summary["config_hash"] == entry["hash"] and summary["steps"] == 4

    # The report shows the four runs and lists the one that never started.
    assert main(["report", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert len(report["runs"]) == 4
    (never,) = report["never_started"]
    assert never["folder"] == broken["hash"] and "no-such-folder" in never["error"]
    assert "no-such-folder" in (out / "report.md").read_text()
    capsys.readouterr()

    # Again: only the failed run is tried, and fails the same way.
    tried = []
    again = run_sweep(load_grid(path), out, jobs=2, progress=tried.append)
    assert [o.job.folder.name for o in tried] == [broken["hash"]]
    assert again["counts"] == {"failed": 1, "skipped": 4}


def test_finished_sweep_does_no_work_and_an_interrupted_run_continues(
    tmp_path,
) -> None:
    text = GRID.split("[[include]]")[0]
    grid = load_grid(_grid(tmp_path, text))
    out = tmp_path / "sweep"
    first = run_sweep(grid, out, jobs=2)
    assert first["counts"] == {"done": 4}
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    tried = []
    again = run_sweep(grid, out, jobs=2, progress=tried.append)
    assert tried == []
    assert again["counts"] == {"done": 4}
    for path, stamp in stamps.items():  # not one file written again
        assert path.stat().st_mtime_ns == stamp, path

    # A run stopped after its last checkpoint ends from it with the same results.
    victim = out / first["runs"][0]["hash"]
    before = json.loads((victim / SUMMARY_FILE).read_text())
    (victim / SUMMARY_FILE).unlink()
    metrics = (victim / "metrics.jsonl").read_bytes()
    third = run_sweep(grid, out, jobs=1, progress=tried.append)
    assert len(tried) == 1 and third["counts"] == {"done": 1, "skipped": 3}
    assert (victim / "metrics.jsonl").read_bytes() == metrics
    after = json.loads((victim / SUMMARY_FILE).read_text())
    assert after["final_accuracy"] == before["final_accuracy"]
    assert not list(victim.glob("replaced-*"))  # resumed, not started again


def test_every_configuration_is_checked_before_any_run(tmp_path, capsys) -> None:
    bad = GRID.replace('"alie"', '"bogus"')
    with pytest.raises(
        ConfigError, match=r"run worker_to_server.attack = 'bogus', seed = 0: .*bogus"
    ):
        load_grid(_grid(tmp_path, bad)).runs()
    assert main(["sweep", str(_grid(tmp_path, bad)), "--out", str(tmp_path / "o")])
    assert "attack = 'bogus' is not allowed" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()

    refused = GRID.replace('rule = "median"', 'rule = "krum"')
    with pytest.raises(ConfigError, match=r"worker_to_server\.rule"):
        load_grid(_grid(tmp_path, refused)).runs()
    with pytest.raises(ConfigError, match=r"\[grid\] seed = 3 .*expected a list"):
        load_grid(_grid(tmp_path, GRID.replace("seed = [0, 1]", "seed = 3")))
    with pytest.raises(ConfigError, match=r"unknown section \[rows\]"):
        load_grid(_grid(tmp_path, GRID + "\n[rows]\nkey = 1\n"))
    with pytest.raises(ConfigError, match="unknown config key 'bogus'"):
        load_grid(_grid(tmp_path, GRID.replace("seed = [0, 1]", "bogus = [1]"))).runs()


def test_a_folder_holding_another_grid_is_refused(tmp_path, capsys) -> None:
    text = GRID.split("[[include]]")[0]
    out = tmp_path / "sweep"
    first = _grid(tmp_path, text)
    assert main(["sweep", str(first), "--out", str(out), "--no-progress"]) == 0
    other = tmp_path / "other.toml"
    other.write_text(first.read_text().replace("seed = [0, 1]", "seed = [0, 1, 2]"))
    assert main(["sweep", str(other), "--out", str(out), "--no-progress"]) == 2
    assert "holds the sweep of another grid" in capsys.readouterr().err
    assert (out / "grid.toml").read_text() == first.read_text()

    # --overwrite keeps the old grid and manifest, and reuses the finished runs.
    args = ["sweep", str(other), "--out", str(out), "--no-progress", "--overwrite"]
    assert main(args) == 0
    (backup,) = [p for p in out.iterdir() if p.name.startswith("replaced-")]
    assert (backup / "grid.toml").read_text() == first.read_text()
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["counts"] == {"done": 2, "skipped": 4}
    assert "6 runs" in capsys.readouterr().out

    # A comment is no other grid; a subset of finished runs with --overwrite
    # replaces the grid and manifest without running anything.
    commented = tmp_path / "commented.toml"
    commented.write_text("# the same runs\n" + other.read_text())
    assert main(["sweep", str(commented), "--out", str(out), "--no-progress"]) == 0
    subset = tmp_path / "subset.toml"
    subset.write_text(first.read_text().replace("seed = [0, 1]", "seed = [0]"))
    args = ["sweep", str(subset), "--out", str(out), "--no-progress", "--overwrite"]
    assert main(args) == 0
    assert (out / "grid.toml").read_text() == subset.read_text()
    assert json.loads((out / MANIFEST_FILE).read_text())["counts"] == {"skipped": 2}
    assert len([p for p in out.iterdir() if p.name.startswith("replaced-")]) == 2

    # A folder of other files is no sweep folder.
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    args = ["sweep", str(first), "--out", str(stranger), "--no-progress"]
    assert main(args) == 2
    assert "holds files but no sweep" in capsys.readouterr().err


def test_one_sweep_at_a_time_per_folder(tmp_path) -> None:
    from byzsgd.experiments.runner import folder_lock

    grid = load_grid(_grid(tmp_path, GRID.split("[[include]]")[0]))
    out = tmp_path / "sweep"
    out.mkdir()
    with folder_lock(out), pytest.raises(FileExistsError, match="in use by another"):
        run_sweep(grid, out, jobs=1)
    assert not (out / MANIFEST_FILE).exists()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_killing_a_sweep_ends_its_processes(tmp_path) -> None:
    text = GRID.split("[[include]]")[0].replace("steps = 4", "steps = 4000")
    path = _grid(tmp_path, text)
    out = tmp_path / "sweep"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "byzsgd.cli", "sweep", str(path)]
    command += ["--out", str(out), "--jobs", "2", "--no-progress"]
    sweep = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob("*/metrics.jsonl")):
        time.sleep(0.05)
    pool = [pid for pid in _children(sweep.pid) if _alive(pid)]
    assert pool, "the sweep started no process"
    sweep.send_signal(signal.SIGKILL)
    sweep.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(map(_alive, pool)):
        time.sleep(0.05)
    assert not any(map(_alive, pool))
