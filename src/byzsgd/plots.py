"""Figures from a run's metric records."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from byzsgd.recording import atomic_write


def _series(records: list[dict[str, Any]], key: str) -> tuple[list, list]:
    points = [(r["step"] + 1, r[key]) for r in records if r.get(key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def plot_curves(
    records: list[dict[str, Any]], path: str | Path, *, title: str = ""
) -> Path:
    """Test accuracy (or loss) and the diameters against the step; Δ on a log scale."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    metric = "accuracy" if any("test_accuracy_mean" in r for r in records) else "loss"
    steps, low = _series(records, f"test_{metric}_min")
    _, high = _series(records, f"test_{metric}_max")
    if steps:
        left.fill_between(
            steps, low, high, alpha=0.3, label="correct servers (min-max)"
        )
        left.plot(*_series(records, f"test_{metric}_mean"), label="mean of servers")
        left.plot(
            *_series(records, f"test_{metric}_average_model"),
            linestyle="--",
            label="average model",
        )
    left.set_xlabel("step")
    left.set_ylabel(f"test {metric}")
    left.legend(loc="lower right" if metric == "accuracy" else "upper right")
    left.grid(alpha=0.3)

    for norm, label in (("l1", "Δ1"), ("l2", "Δ2"), ("linf", "Δ∞")):
        x, y = _series(records, f"diameter_{norm}")
        right.plot(x, [max(v, 1e-12) for v in y], label=f"{label} (after gather)")
    right.set_yscale("log")
    right.set_xlabel("step")
    right.set_ylabel("diameter of the correct servers")
    right.legend()
    right.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return _save(figure, Path(path))


def plot_metric(
    runs: dict[str, list[dict[str, Any]]],
    metric: str,
    path: str | Path,
    *,
    log: bool = False,
) -> Path:
    """One metric of several runs against the step, one line per run."""
    figure, axes = plt.subplots(figsize=(6.5, 4))
    for label, records in runs.items():
        steps, values = _series(records, metric)
        if not steps:
            plt.close(figure)
            raise ValueError(
                f"metric {metric!r} is not in the records of run {label!r}"
            )
        axes.plot(steps, values, label=label)
    if log:
        axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel(metric)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    return _save(figure, Path(path))


def plot_runs(runs: dict[str, list[dict[str, Any]]], path: str | Path) -> Path:
    """Worst correct server's test accuracy and Δ2 of several runs, side by side."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
    for i, (label, records) in enumerate(runs.items()):
        color = f"C{i % 10}"
        label = label if len(label) <= 60 else label[:59] + "…"
        steps, accuracy = _series(records, "test_accuracy_min")
        if steps:
            left.plot(steps, accuracy, label=label, color=color)
        x, y = _series(records, "diameter_l2")
        if any(v > 0 for v in y):  # one server has no diameter
            right.plot(x, [max(v, 1e-12) for v in y], label=label, color=color)
    left.set_xlabel("step")
    left.set_ylabel("test accuracy (worst correct server)")
    left.grid(alpha=0.3)
    if len(runs) <= 12:
        left.legend(fontsize=7, loc="lower right")
    right.set_yscale("log")
    right.set_xlabel("step")
    right.set_ylabel("Δ2 of the correct servers")
    right.grid(alpha=0.3)
    return _save(figure, Path(path))


def plot_heatmap(table: dict[str, Any], path: str | Path) -> Path:
    """A heatmap of a report's final accuracies over its two varying keys."""
    rows, columns = table["rows"], table["columns"]
    grid = [
        [table["values"].get(f"{r}|{c}", float("nan")) for c in columns] for r in rows
    ]
    size = (1.2 * len(columns) + 3, 0.5 * len(rows) + 2)
    figure, axes = plt.subplots(figsize=size, layout="constrained")
    image = axes.imshow(grid, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    axes.set_xticks(range(len(columns)), columns, rotation=30, ha="right")
    axes.set_yticks(range(len(rows)), rows)
    axes.set_xlabel(table["columns_key"])
    axes.set_ylabel(table["rows_key"])
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            if value == value:  # not NaN
                axes.text(j, i, f"{value:.2f}", ha="center", va="center", color="w")
    figure.colorbar(image, label="final accuracy (worst correct server)")
    return _save(figure, Path(path))


def _save(figure: Any, path: Path) -> Path:
    """Write the figure atomically, in the format its file name says (PNG if none)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix.lstrip(".").lower() or "png", dpi=110)
    plt.close(figure)
    atomic_write(path, buffer.getvalue())
    return path
