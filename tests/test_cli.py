"""The command line end to end on a tiny configuration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from byzsgd.cli import main
from byzsgd.config import to_toml
from byzsgd.recording import read_metrics
from tests.conftest import tiny_config

SUMMARY_KEYS = {
    "final_accuracy",
    "final_diameter",
    "steps",
    "steps_per_second",
    "config_hash",
    "seed",
}


@pytest.fixture
def tiny_toml(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(to_toml(tiny_config()))
    return path


def test_run_writes_the_run_folder_and_prints_the_summary(tiny_toml, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        ["run", str(tiny_toml), "--set", "steps=10", "--out", str(out), "--json"]
    )
    assert code == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert set(summary) >= SUMMARY_KEYS
    assert summary["steps"] == 10
    assert set(summary["final_diameter"]) == {"l1", "l2", "linf"}
    assert set(summary["final_accuracy"]) == {
        str(i) for i in summary["correct_servers"]
    }
    assert all(0.0 <= a <= 1.0 for a in summary["final_accuracy"].values())
    assert "final diameter" in captured.err and "Δ∞" in captured.err
    for name in ("config.toml", "metrics.jsonl", "summary.json", "curves.png"):
        assert (out / name).stat().st_size > 0, name
    records = read_metrics(out)
    assert [r["step"] for r in records] == list(range(10))
    assert "test_accuracy_min" in records[5] and "test_accuracy_min" in records[-1]
    assert json.loads((out / "summary.json").read_text()) == summary
    assert "steps = 10" in (out / "config.toml").read_text()


def test_existing_run_is_not_overwritten(tiny_toml, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(tiny_toml), "--out", str(out), "--no-progress"]) == 0
    before = (out / "metrics.jsonl").read_text()
    assert main(["run", str(tiny_toml), "--out", str(out), "--no-progress"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (out / "metrics.jsonl").read_text() == before
    assert main(["run", str(tiny_toml), "--out", str(out), "--overwrite"]) == 0
    assert len(read_metrics(out)) == 12


def test_refused_configuration_is_one_line_and_exit_2(tiny_toml, tmp_path, capsys):
    out = tmp_path / "never"
    code = main(["run", str(tiny_toml), "--set", "batch_size=0", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (
        "byzsgd: error: batch_size = 0 is not allowed; expected a finite number > 0"
    )
    assert not out.exists()


def test_missing_config_file_is_refused(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_help_documents_every_key():
    result = subprocess.run(
        [sys.executable, "-m", "byzsgd.cli", "run", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "worker_to_server.quorum" in result.stdout
    assert "server_to_server.mixing" in result.stdout
    assert "faults.omission" in result.stdout


def test_rules_and_attacks_listings(capsys):
    assert main(["rules"]) == 0
    assert "mda" in capsys.readouterr().out
    assert main(["attacks"]) == 0
    assert "polarise" in capsys.readouterr().out


def test_python_api_mirrors_the_cli(tmp_path):
    from byzsgd import run

    summary = run(tiny_config(), overrides=["steps=4"], out=tmp_path / "api")
    assert summary["steps"] == 4
    assert (tmp_path / "api" / "summary.json").exists()


def test_overwrite_keeps_the_replaced_run(tiny_toml, tmp_path) -> None:
    out = tmp_path / "run"
    assert main(["run", str(tiny_toml), "--out", str(out), "--no-progress"]) == 0
    before = (out / "summary.json").read_text()
    assert main(["run", str(tiny_toml), "--out", str(out), "--overwrite"]) == 0
    (backup,) = out.glob("replaced-*")
    assert (backup / "summary.json").read_text() == before
    assert oct((out / "summary.json").stat().st_mode & 0o777) != oct(0o600)
