"""Reports: run and sweep tables, heatmap axes, overhead against a reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from byzsgd import run
from byzsgd.cli import main
from byzsgd.experiments.report import RunInfo, build_report, heatmap, write_report
from byzsgd.recording import read_metrics
from tests.conftest import tiny_config

PLAIN = {
    "num_servers": 1,
    "num_byzantine_servers": 0,
    "num_byzantine_workers": 0,
    **{
        f"{channel}__{key}": value
        for channel in ("server_to_worker", "worker_to_server", "server_to_server")
        for key, value in (("policy", "all"), ("rule", "mean"), ("attack", "none"))
    },
}


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    """Four finished runs side by side, as a sweep folder without a manifest."""
    root = tmp_path_factory.mktemp("sweep")
    common = {"steps": 40, "eval_every": 4, "checkpoint_every": 0}
    sign, alie = (
        {"worker_to_server__attack": "sign_flip"},
        {"worker_to_server__attack": "alie"},
    )
    settings = {
        "plain": PLAIN,
        "median-sign": {"worker_to_server__rule": "median", **sign},
        "mda-sign": {"worker_to_server__rule": "mda", **sign},
        "mda-alie": {"worker_to_server__rule": "mda", **alie},
    }
    for name, overrides in settings.items():
        run(tiny_config(**common, **overrides), out=root / name)
    return root


def _steps_to(records: list[dict], target: float) -> int | None:
    hits = [r["step"] + 1 for r in records if r.get("test_accuracy_min", 0) >= target]
    return hits[0] if hits else None


def test_overhead_against_the_plain_reference(sweep_dir, tmp_path) -> None:
    report = write_report(sweep_dir, tmp_path / "out", target_accuracy=0.5)
    assert report["reference"].startswith("num_byzantine_servers=0")
    rows = {row["setting"]: row for row in report["overhead"]}
    (reference,) = [row for row in rows.values() if row["reference"]]
    assert reference["num_servers"] == 1 and reference["convergence_overhead"] == 0

    ref_records = read_metrics(sweep_dir / "plain")
    ref_summary = json.loads((sweep_dir / "plain" / "summary.json").read_text())
    assert reference["steps_to_target"] == _steps_to(ref_records, 0.5)
    for name in ("median-sign", "mda-sign", "mda-alie"):
        records = read_metrics(sweep_dir / name)
        summary = json.loads((sweep_dir / name / "summary.json").read_text())
        (row,) = [
            r
            for r in rows.values()
            if r["final_accuracy"] == min(summary["final_accuracy"].values())
            and not r["reference"]
            and r["steps_to_target"] == _steps_to(records, 0.5)
        ]
        steps = _steps_to(records, 0.5)
        if steps is not None:
            expected = steps / reference["steps_to_target"] - 1
            assert row["convergence_overhead"] == pytest.approx(expected)
        expected = ref_summary["steps_per_second"] / summary["steps_per_second"] - 1
        assert row["throughput_overhead"] == pytest.approx(expected)

    text = (tmp_path / "out" / "report.md").read_text()
    assert "## Overhead against" in text and "target" in text.lower()
    assert "worker_to_server.attack x worker_to_server.rule" in text
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == report
    for figure in ("report_curves.png", "heatmap.png"):
        assert (tmp_path / "out" / figure).read_bytes().startswith(b"\x89PNG")


def test_unreached_target_and_named_reference(sweep_dir) -> None:
    report = build_report(
        sweep_dir, target_accuracy=0.999, reference=str(sweep_dir / "mda-sign")
    )
    rows = report["overhead"]
    assert [r["reference"] for r in rows].count(True) == 1
    assert all(r["steps_to_target"] is None for r in rows)
    assert all(r["convergence_overhead"] is None for r in rows)
    assert all(r["throughput_overhead"] is not None for r in rows)


def test_heatmap_axes_follow_the_keys_that_vary(tmp_path) -> None:
    def info(f_s: int, f_w: int, accuracy: float, seed: int) -> RunInfo:
        config = {
            "num_byzantine_servers": f_s,
            "num_byzantine_workers": f_w,
            "seed": seed,
        }
        summary = {"final_accuracy": {"0": accuracy, "1": accuracy + 0.1}}
        return RunInfo(tmp_path, config, summary=summary)

    runs = [info(0, 1, 0.8, 0), info(0, 1, 0.6, 1), info(1, 2, 0.5, 0)]
    keys = ["num_byzantine_servers", "num_byzantine_workers", "seed"]
    table = heatmap(runs, keys)
    assert (table["rows_key"], table["columns_key"]) == tuple(keys[:2])
    assert table["values"] == {"0|1": pytest.approx(0.7), "1|2": 0.5}
    assert heatmap(runs[:1], ["seed"]) is None


def test_single_run_report_and_bad_input(sweep_dir, tmp_path, capsys) -> None:
    out = tmp_path / "one"
    assert main(["report", str(sweep_dir / "mda-alie"), "--out", str(out)]) == 0
    assert "No overhead table" in capsys.readouterr().out
    assert (out / "report_curves.png").is_file() and not (out / "heatmap.png").exists()

    assert main(["report", str(sweep_dir), "--target-accuracy", "1.5"]) == 2
    assert "--target-accuracy = 1.5 is not allowed" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "neither a run folder nor a sweep folder" in capsys.readouterr().err
    assert main(["report", str(sweep_dir), "--reference", "nope"]) == 2
    assert "--reference 'nope' is no run folder" in capsys.readouterr().err
