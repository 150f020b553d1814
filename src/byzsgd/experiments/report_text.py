"""A report as Markdown: the runs, the heatmap and the overhead table."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: runs, heatmap, overhead table, figures."""
    lines = [f"# Report of {Path(report['path']).name}", ""]
    if report["varying_keys"]:
        lines += [f"Keys that vary: {', '.join(report['varying_keys'])}.", ""]
    lines += ["## Runs", "", "| setting | seed | final worst accuracy | final Δ2 | "
              "status |", "|---|---|---|---|---|"]  # fmt: skip
    for run in report["runs"]:
        lines.append(
            f"| {run['setting']} | {run['seed']} | {_num(run['final_accuracy'])} | "
            f"{_num(run['final_diameter_l2'], '.2e')} | {run['error'] or 'done'} |"
        )
    for run in report.get("never_started", []):
        lines.append(f"| {run['setting']} | - | - | - | {run['error']} |")
    if report["heatmap"] is not None:
        lines += ["", *_heatmap_lines(report["heatmap"])]
    if report["overhead"]:
        lines += ["", *_overhead_lines(report)]
    elif report["reference"] is None:
        lines += ["", "No overhead table: no fault-free reference run (give one "
                  "with --reference)."]  # fmt: skip
    lines += [""] + [f"![{name}]({file})" for name, file in report["figures"].items()]
    return "\n".join(lines) + "\n"


def _heatmap_lines(table: dict[str, Any]) -> list[str]:
    rows, columns = table["rows"], table["columns"]
    lines = [
        f"## Final worst accuracy: {table['rows_key']} x {table['columns_key']}",
        "",
        f"| {table['rows_key']} \\ {table['columns_key']} | "
        + " | ".join(columns)
        + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for r in rows:
        cells = [_num(table["values"].get(f"{r}|{c}")) for c in columns]
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    return lines


def _overhead_lines(report: dict[str, Any]) -> list[str]:
    lines = [
        f"## Overhead against {report['reference']}",
        "",
        f"Target: the worst correct server's test accuracy >= "
        f"{report['target_accuracy']:.2f}. Means over seeds; overheads are "
        "value / reference - 1.",
        "",
        "| setting | n_s | f_s | f_w | seeds | steps to target | convergence "
        "overhead | time per step (ms) | throughput overhead | final accuracy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["overhead"]:
        steps = row["steps_to_target"]
        shown = (
            f"{steps:.0f}"
            if steps is not None
            else f"not reached ({row['reached']}/{row['seeds']})"
        )
        name = (
            f"**{row['setting']}** (reference)" if row["reference"] else row["setting"]
        )
        ms = None if row["seconds_per_step"] is None else 1e3 * row["seconds_per_step"]
        lines.append(
            f"| {name} | {row['num_servers']} | {row['f_s']} | {row['f_w']} | "
            f"{row['seeds']} | {shown} | {_percent(row['convergence_overhead'])} | "
            f"{_num(ms, '.2f')} | {_percent(row['throughput_overhead'])} | "
            f"{_num(row['final_accuracy'])} |"
        )
    return lines


def _num(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.0f} %"
