"""A study's results as tables (terminal and Markdown), CSV, JSON and figures."""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from byzsgd.contraction.spec import AXES, Study
from byzsgd.contraction.study import StudyResult
from byzsgd.recording import atomic_write, dumps, set_aside

RESULT_FILES = ("results.csv", "results.json", "tables.md")
_NUMERIC = ("correct", "f", "dim", "lam")
_SHOWN_AXIS = {"correct": "c", "lam": "λ", "adversary": "adversary", "quorum": "q"}


def table_rows(result: StudyResult, study: Study) -> list[list[str]]:
    """Header and one line per cell: the axes that vary, then the statistics."""
    axes = study.varying() or ["rule"]
    if "quorum" in axes:
        axes[axes.index("quorum")] = "q"
    header = [_SHOWN_AXIS.get(a, a) for a in axes] + [
        "E[Δ'/Δ] (95% CI)",
        "exact",
        "max",
        "pairs",
        "P(no contr.)",
        f"rounds to ÷{study.settings['shrink']:g}",
        "bound",
        "",
    ]
    lines = [header]
    for row in result.rows_of(study.name):
        cells = [_axis_text(row[a]) for a in axes]
        if row["status"] != "ok":
            lines.append(cells + [f"not run: {row['status']}"] + [""] * 7)
            continue
        lines.append(cells + _statistics(row))
    return lines


def _statistics(row: dict[str, Any]) -> list[str]:
    mean, low, high = (_zero(row[k]) for k in ("ratio_mean", "ratio_low", "ratio_high"))
    ratio = f"{mean} [{low}, {high}]"
    exact = "" if row["exact_ratio"] is None else f"{row['exact_ratio']:.4f}"
    if math.isinf(row["rounds_median"]):
        rounds = f"> {row['rounds_run']} ({row['reached']:.0%} reached; "
        rounds += f"Δ/Δ₀ {row['final_ratio_median']:.2g})"
    else:
        rounds = f"{row['rounds_median']:.0f} [{row['rounds_low']:.0f}, "
        rounds += f"{_finite(row['rounds_high'])}]"
    flag = ""
    if row["violates"]:
        flag = "VIOLATES" if row["violation_significant"] else "above (n.s.)"
    return [
        ratio,
        exact,
        f"{row['ratio_max']:.3f}",
        f"{row['pair_ratio']:.3f}",
        f"{row['p_no_contraction']:.2f}",
        rounds,
        f"{row['bound']:.3f}",
        flag,
    ]


def _zero(value: float) -> str:
    """Three decimals, never a negative zero."""
    text = f"{value:.3f}"
    return text[1:] if text == "-0.000" else text


def _finite(value: float) -> str:
    return "cap" if math.isinf(value) else f"{value:.0f}"


def _axis_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def terminal_table(result: StudyResult, study: Study) -> str:
    """Fixed-width columns for the terminal."""
    lines = table_rows(result, study)
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in lines
    ]
    title = f"{study.name}: {study.title} ({study.settings['reps']} repetitions)"
    return "\n".join([title, *(line.rstrip() for line in text)])


def markdown_table(result: StudyResult, study: Study) -> str:
    lines = table_rows(result, study)
    out = ["| " + " | ".join(lines[0]) + " |", "|" + "---|" * len(lines[0])]
    out += ["| " + " | ".join(line) + " |" for line in lines[1:]]
    return "\n".join(out)


def markdown(result: StudyResult) -> str:
    """Every study: its title, its fixed settings and its table."""
    parts = []
    for study in result.studies:
        every = study.axes["policy"] == ["all"]
        fixed = ", ".join(
            f"{_SHOWN_AXIS.get(a, a)} = {_axis_text(study.axes[a][0])}"
            if not (a == "quorum" and every)
            else "q = every live server"
            for a in AXES
            if len(study.axes[a]) == 1
        )
        parts.append(
            f"### {study.name}: {study.title}\n\n{fixed}; "
            f"{study.settings['reps']} repetitions, bound {study.settings['bound']}."
            f"\n\n{markdown_table(result, study)}\n"
        )
    return "\n".join(parts)


def to_csv(rows: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def to_json(result: StudyResult) -> str:
    studies = [
        {"name": s.name, "title": s.title, "axes": s.axes, "settings": s.settings}
        for s in result.studies
    ]
    body = {"studies": studies, "rows": result.rows, "seconds": result.seconds}
    return dumps(body, indent=1) + "\n"


def write_outputs(
    result: StudyResult, out: str | Path, *, overwrite: bool = False
) -> list[Path]:
    """Write results.csv, results.json, tables.md and one figure per study.

    An output folder that already holds results is refused unless ``overwrite``;
    then the old files move into a ``replaced-<timestamp>`` subfolder. Everything
    is written into a hidden staging folder first and moved in by renames at the
    end, ``results.json`` last: a folder with ``results.json`` holds a whole set.
    """
    out = Path(out)
    check_output(out, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".writing-"))
    try:
        texts = (to_csv(result.rows), to_json(result), markdown(result))
        for name, text in zip(RESULT_FILES, texts, strict=True):
            atomic_write(staging / name, text)
        for study in result.studies:
            plot_study(result, study, staging / f"{study.name}.png")
        _replace_results(out, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    figures = [out / f"{study.name}.png" for study in result.studies]
    return [out / name for name in RESULT_FILES] + figures


def _replace_results(out: Path, staging: Path) -> None:
    """Move old results aside, then the new ones in, results.json last."""
    old = [
        p.name for p in out.iterdir() if p.name in RESULT_FILES or p.suffix == ".png"
    ]
    set_aside(out, tuple(old))
    new = sorted(staging.iterdir(), key=lambda p: p.name == "results.json")
    for path in new:
        os.replace(path, out / path.name)


def check_output(out: str | Path, *, overwrite: bool = False) -> None:
    """Refuse, before any work, an output folder that holds results."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output folder {str(out)!r} is a file")
    if not overwrite and any((out / name).exists() for name in RESULT_FILES):
        raise FileExistsError(
            f"output folder {str(out)!r} already holds study results; "
            "choose another --out or pass --overwrite"
        )


def plot_study(result: StudyResult, study: Study, path: Path) -> Path:
    """E[Δ'/Δ] with its interval: a heatmap over two categorical axes, else lines."""
    rows = [r for r in result.rows_of(study.name) if r["status"] == "ok"]
    varying = study.varying()
    figure, axes = plt.subplots(figsize=(7.5, 4.5))
    if len(varying) == 2 and not set(varying) & set(_NUMERIC):
        _heatmap(axes, figure, rows, *varying)
    else:
        _lines(axes, rows, varying, study)
    axes.set_title(f"{study.name}: {study.title}", fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    atomic_write(path, buffer.getvalue())
    return path


def _heatmap(axes, figure, rows, across: str, down: str) -> None:
    columns = list(dict.fromkeys(r[across] for r in rows))
    lines = list(dict.fromkeys(r[down] for r in rows))
    grid = [[math.nan] * len(columns) for _ in lines]
    for r in rows:
        grid[lines.index(r[down])][columns.index(r[across])] = r["ratio_mean"]
    image = axes.imshow(grid, cmap="viridis", aspect="auto")
    axes.set_xticks(range(len(columns)), [str(c) for c in columns], rotation=30)
    axes.set_yticks(range(len(lines)), [str(v) for v in lines])
    for i, line in enumerate(grid):
        for j, value in enumerate(line):
            if not math.isnan(value):
                axes.text(j, i, f"{value:.2f}", ha="center", va="center", color="w")
    figure.colorbar(image, ax=axes, label="E[Δ'/Δ]")


def _lines(axes, rows, varying: list[str], study: Study) -> None:
    numeric = [a for a in varying if a in _NUMERIC]
    x_axis = numeric[0] if numeric else (varying[0] if varying else "rule")
    others = [a for a in varying if a != x_axis]
    series: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        label = ", ".join(f"{_SHOWN_AXIS.get(a, a)}={r[a]}" for a in others)
        series.setdefault(label or "E[Δ'/Δ]", []).append(r)
    for label, points in list(series.items())[:12]:
        xs = [str(p[x_axis]) if x_axis not in _NUMERIC else p[x_axis] for p in points]
        ys = [p["ratio_mean"] for p in points]
        errors = [
            [y - p["ratio_low"] for y, p in zip(ys, points, strict=True)],
            [p["ratio_high"] - y for y, p in zip(ys, points, strict=True)],
        ]
        axes.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=label)
        exact = [(x, p["exact_ratio"]) for x, p in zip(xs, points, strict=True)]
        exact = [(x, v) for x, v in exact if v is not None]
        if exact:
            axes.scatter(*zip(*exact, strict=True), marker="x", color="k", zorder=3)
    bounds = {r["bound"] for r in rows}
    if len(bounds) == 1:
        axes.axhline(bounds.pop(), linestyle="--", color="grey", label="bound")
    axes.axhline(1.0, linestyle=":", color="black", linewidth=0.8)
    axes.set_xlabel(_SHOWN_AXIS.get(x_axis, x_axis))
    axes.set_ylabel("E[Δ'/Δ] (× exact)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
