"""``byzsgd report``: tables and figures from a run folder or a sweep folder.

It writes ``report.md`` (Markdown tables), ``report.json`` (the same numbers) and
PNG figures: the accuracy and diameter curves of every run, a heatmap of the final
accuracy over the two keys a sweep varies (attack x rule, or f_s x f_w, where
those vary), and an overhead table against a fault-free reference run.

Runs that differ only in their seed form one *setting*; a setting's figures are
means over its seeds. The overhead table follows El-Mhamdi et al. (PODC 2020):
the convergence overhead is steps_to_target / steps_to_target(reference) - 1 and
the throughput overhead time_per_step / time_per_step(reference) - 1, where a run
reaches the target when its *worst* correct server's test accuracy does (measured
every ``eval_every`` steps) and the time per step is the simulator's timed seconds
of the protocol step (evaluation excluded) over the steps.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from byzsgd.checkpoint import folder_config
from byzsgd.config import flat_keys
from byzsgd.experiments.report_text import markdown
from byzsgd.experiments.runner import read_summary
from byzsgd.experiments.sweep import MANIFEST_FILE
from byzsgd.recording import (
    CONFIG_FILE,
    ERROR_FILE,
    METRICS_FILE,
    atomic_write,
    dumps,
    read_metrics,
)

IGNORED_KEYS = {"checkpoint_every", "threads"}
HEATMAP_AXES = (
    ("worker_to_server.attack", "worker_to_server.rule"),
    ("num_byzantine_servers", "num_byzantine_workers"),
)


@dataclass
class RunInfo:
    """One run folder as the report sees it."""

    folder: Path
    config: dict[str, Any]
    name: str = ""
    summary: dict[str, Any] | None = None
    error: str | None = None
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def setting(self) -> str:
        """The configuration without its seed: runs of one setting are averaged."""
        rest = {k: v for k, v in self.config.items() if k != "seed"}
        return json.dumps(rest, sort_keys=True, default=str)

    def final_accuracy(self) -> float | None:
        if self.summary is None:
            return None
        values = [a for a in self.summary["final_accuracy"].values() if a is not None]
        return min(values) if values else None

    def steps_to(self, target: float) -> int | None:
        """The first step after which the worst correct server reached ``target``."""
        for record in self.records:
            accuracy = record.get("test_accuracy_min")
            if accuracy is not None and accuracy >= target:
                return int(record["step"]) + 1
        return None

    def seconds_per_step(self) -> float | None:
        if self.summary is None or not self.summary.get("steps_per_second"):
            return None
        return 1.0 / self.summary["steps_per_second"]


def load_runs(path: str | Path) -> list[RunInfo]:
    """The runs of a run folder (one) or of a sweep folder (those of its manifest)."""
    path = Path(path)
    if (path / CONFIG_FILE).is_file():
        return [_load_run(path, "")]
    if (path / MANIFEST_FILE).is_file():
        entries = json.loads((path / MANIFEST_FILE).read_text())["runs"]
        return [
            _load_run(path / e["hash"], e.get("label", ""))
            for e in entries
            if (path / e["hash"] / CONFIG_FILE).is_file()
        ]
    folders = sorted(p.parent for p in path.glob(f"*/{CONFIG_FILE}"))
    if not folders:
        raise FileNotFoundError(
            f"{str(path)!r} is neither a run folder nor a sweep folder (no "
            f"{CONFIG_FILE}, no {MANIFEST_FILE}, no run folders in it)"
        )
    return [_load_run(folder, "") for folder in folders]


def never_started(path: str | Path) -> list[dict[str, Any]]:
    """The sweep's runs that failed before their folder held a configuration."""
    manifest = Path(path) / MANIFEST_FILE
    if not manifest.is_file():
        return []
    entries = json.loads(manifest.read_text())["runs"]
    return [
        {"folder": e["hash"], "setting": e.get("label", ""), "error": e.get("error")}
        for e in entries
        if not (Path(path) / e["hash"] / CONFIG_FILE).is_file()
    ]


def _load_run(folder: Path, name: str) -> RunInfo:
    config = flat_keys(folder_config(folder).to_dict())
    run = RunInfo(folder, config, name, read_summary(folder))
    if (folder / METRICS_FILE).is_file():
        run.records = read_metrics(folder)
    if run.summary is None:
        error = folder / ERROR_FILE
        run.error = (
            json.loads(error.read_text())["message"]
            if error.is_file()
            else "unfinished"
        )
    return run


def varying_keys(runs: list[RunInfo]) -> list[str]:
    """The configuration keys whose values differ between the runs, in key order."""
    keys = sorted({k for run in runs for k in run.config} - IGNORED_KEYS)
    return [k for k in keys if len({json.dumps(r.config.get(k)) for r in runs}) > 1]


def find_reference(runs: list[RunInfo], reference: str | None) -> list[RunInfo]:
    """The reference setting's runs: as named, else plain fault-free averaging.

    ``reference`` is a run folder, or the name or config hash of a run of the
    sweep. Without it: the finished runs with no Byzantine node and the mean as
    gradient rule, fewest servers first (one server is plain SGD).
    """
    if reference is not None:
        matches = [
            r
            for r in runs
            if reference in (r.name, r.folder.name)
            or r.folder.resolve() == Path(reference).resolve()
        ]
        if not matches and (Path(reference) / CONFIG_FILE).is_file():
            matches = [_load_run(Path(reference), "reference")]
        if not matches:
            raise ValueError(
                f"--reference {reference!r} is no run folder and names no run of the "
                "report (by name or config hash)"
            )
        return [r for r in runs + matches if r.setting == matches[0].setting]
    plain = [
        r
        for r in runs
        if r.summary is not None
        and r.config["num_byzantine_servers"] == 0
        and r.config["num_byzantine_workers"] == 0
        and r.config["worker_to_server.rule"] == "mean"
    ]
    if not plain:
        return []
    fewest = min(plain, key=lambda r: r.config["num_servers"])
    return [r for r in plain if r.setting == fewest.setting]


def _settings(runs: list[RunInfo]) -> dict[str, list[RunInfo]]:
    groups: dict[str, list[RunInfo]] = {}
    for run in runs:
        groups.setdefault(run.setting, []).append(run)
    return groups


def _label(run: RunInfo, keys: list[str]) -> str:
    """A sweep's label of the run (name and grid values), else the varying keys."""
    if run.name:
        return run.name
    shown = ", ".join(f"{k}={run.config[k]}" for k in keys if k != "seed")
    return shown or run.folder.name


def _mean(values: list[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)


def overhead_table(
    runs: list[RunInfo], reference: list[RunInfo], target: float, keys: list[str]
) -> list[dict[str, Any]]:
    """One row per setting: steps to target and time per step against the reference."""
    ref_steps = _mean([r.steps_to(target) for r in reference])
    ref_time = _mean([r.seconds_per_step() for r in reference])
    rows = []
    for group in _settings(runs).values():
        finished = [r for r in group if r.summary is not None]
        if not finished:
            continue
        reached = [r.steps_to(target) for r in finished]
        steps = _mean(reached)
        seconds = _mean([r.seconds_per_step() for r in finished])
        rows.append(
            {
                "setting": _label(finished[0], keys),
                "reference": finished[0].setting == reference[0].setting,
                "seeds": len(finished),
                "num_servers": finished[0].config["num_servers"],
                "f_s": finished[0].config["num_byzantine_servers"],
                "f_w": finished[0].config["num_byzantine_workers"],
                "steps_to_target": steps,
                "reached": sum(s is not None for s in reached),
                "convergence_overhead": _ratio(steps, ref_steps),
                "seconds_per_step": seconds,
                "throughput_overhead": _ratio(seconds, ref_time),
                "final_accuracy": _mean([r.final_accuracy() for r in finished]),
            }
        )
    return rows


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or not reference:
        return None
    return value / reference - 1.0


def heatmap(runs: list[RunInfo], keys: list[str]) -> dict[str, Any] | None:
    """Mean final worst accuracy over the two keys the runs vary, if two do."""
    varying = [k for k in keys if k != "seed"]
    axes = next(
        (pair for pair in HEATMAP_AXES if all(k in varying for k in pair)),
        tuple(varying[:2]) if len(varying) >= 2 else None,
    )
    if axes is None:
        return None
    rows_key, columns_key = axes
    rows = sorted({str(r.config[rows_key]) for r in runs})
    columns = sorted({str(r.config[columns_key]) for r in runs})
    cells: dict[str, list[float]] = {}
    for run in runs:
        accuracy = run.final_accuracy()
        if accuracy is not None:
            key = f"{run.config[rows_key]}|{run.config[columns_key]}"
            cells.setdefault(key, []).append(accuracy)
    values = {key: sum(v) / len(v) for key, v in cells.items()}
    return {
        "rows_key": rows_key,
        "columns_key": columns_key,
        "rows": rows,
        "columns": columns,
        "values": values,
    }


def build_report(
    path: str | Path,
    *,
    target_accuracy: float | None = None,
    reference: str | None = None,
) -> dict[str, Any]:
    """Every number of the report of a run or sweep folder, as one dict."""
    return _numbers(path, load_runs(path), target_accuracy, reference)


def _numbers(
    path: str | Path,
    runs: list[RunInfo],
    target_accuracy: float | None,
    reference: str | None,
) -> dict[str, Any]:
    keys = varying_keys(runs)
    refs = find_reference(runs, reference)
    report: dict[str, Any] = {
        "path": str(path),
        "varying_keys": keys,
        "runs": [
            {
                "folder": r.folder.name,
                "setting": _label(r, keys),
                "seed": r.config["seed"],
                "final_accuracy": r.final_accuracy(),
                "final_diameter_l2": (r.summary or {})
                .get("final_diameter", {})
                .get("l2"),
                "error": r.error,
            }
            for r in runs
        ],
        "never_started": never_started(path),
        "heatmap": heatmap(runs, keys),
        "reference": _label(refs[0], keys) if refs else None,
        "target_accuracy": None,
        "overhead": [],
    }
    if refs:
        target = target_accuracy
        if target is None:
            final = _mean([r.final_accuracy() for r in refs])
            target = math.floor(95 * final) / 100 if final is not None else None
        if target is not None:
            report["target_accuracy"] = target
            report["overhead"] = overhead_table(runs, refs, target, keys)
    return report


def write_report(
    path: str | Path,
    out: str | Path | None = None,
    *,
    target_accuracy: float | None = None,
    reference: str | None = None,
) -> dict[str, Any]:
    """Build the report of ``path`` and write its files into ``out`` (or ``path``)."""
    from byzsgd.plots import plot_heatmap, plot_runs

    if target_accuracy is not None and not 0 < target_accuracy <= 1:
        raise ValueError(
            f"--target-accuracy = {target_accuracy} is not allowed; expected a "
            "number in (0, 1]"
        )
    runs = load_runs(path)
    report = _numbers(path, runs, target_accuracy, reference)
    out = Path(out or path)
    out.mkdir(parents=True, exist_ok=True)
    keys = report["varying_keys"]
    curves = {  # one run (the first seed) per setting
        _label(group[0], keys): group[0].records
        for group in _settings([r for r in runs if r.records]).values()
    }
    figures = {"curves": plot_runs(curves, out / "report_curves.png").name}
    if report["heatmap"] is not None:
        figures["heatmap"] = plot_heatmap(report["heatmap"], out / "heatmap.png").name
    report["figures"] = figures
    atomic_write(out / "report.json", dumps(report, indent=2) + "\n")
    atomic_write(out / "report.md", markdown(report))
    return report
