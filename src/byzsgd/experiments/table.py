"""Rows x columns of runs (e.g. attack x rule), summarised in one table.

A table file holds a base configuration and two keys to vary:

```toml
[base]                          # any configuration keys
task = { name = "digits" }

[rows]
key = "worker_to_server.attack"
values = ["none", "sign_flip", "alie"]

[columns]
key = "worker_to_server.rule"
values = ["mean", "median", "krum"]

[columns.extra.mean]            # extra keys for one column value
"worker_to_server.f" = 0
```

Each cell is one run, in its own folder under the output folder; a cell whose
``summary.json`` exists is not run again. The cell's value is the worst final test
accuracy over the correct servers (the highest final test loss for tasks without
accuracy).
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from byzsgd.config import ConfigError, from_dict, set_key
from byzsgd.experiments.runner import Job, Outcome, folder_lock, run_jobs
from byzsgd.recording import atomic_write, dumps

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cell:
    row: str
    column: str
    overrides: dict[str, Any]

    @property
    def folder(self) -> str:
        return f"{self.row}__{self.column}".replace("+", "-").replace("/", "-")


@dataclass
class TableSpec:
    base: dict[str, Any]
    row_key: str
    rows: list[str]
    column_key: str
    columns: list[str]
    extra: dict[str, dict[str, Any]]

    def cells(self) -> list[Cell]:
        cells = []
        for row in self.rows:
            for column in self.columns:
                overrides = {self.row_key: row, self.column_key: column}
                overrides.update(self.extra.get(row, {}))
                overrides.update(self.extra.get(column, {}))
                cells.append(Cell(row, column, overrides))
        return cells


def load_spec(path: str | Path) -> TableSpec:
    """Read and check a table file; every cell's configuration is built once."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"table file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(
            f"table file {str(path)!r} is not valid TOML: {error}"
        ) from None
    for section in ("rows", "columns"):
        part = data.get(section)
        if not isinstance(part, dict) or "key" not in part or not part.get("values"):
            raise ConfigError(
                f"table file {str(path)!r}: [{section}] needs a key and a non-empty "
                "list of values"
            )
    extra: dict[str, dict[str, Any]] = {}
    for section in ("rows", "columns"):
        extra.update(data[section].get("extra", {}))
    spec = TableSpec(
        base=data.get("base", {}),
        row_key=data["rows"]["key"],
        rows=[str(v) for v in data["rows"]["values"]],
        column_key=data["columns"]["key"],
        columns=[str(v) for v in data["columns"]["values"]],
        extra=extra,
    )
    for cell in spec.cells():
        cell_config(spec, cell)
    return spec


def cell_config(spec: TableSpec, cell: Cell):
    """The configuration of one cell: the base, then the cell's keys."""
    config = from_dict(spec.base)
    for key, value in cell.overrides.items():
        set_key(config, key, value)
    return config


def _value(summary: dict[str, Any]) -> float:
    accuracies = [a for a in summary["final_accuracy"].values() if a is not None]
    if accuracies:
        return min(accuracies)
    return max(summary["final_test_loss"].values())


def run_table(
    spec: TableSpec,
    out: str | Path,
    *,
    jobs: int = 1,
    progress: Callable[[Cell], None] | None = None,
) -> dict[str, Any]:
    """Run every cell not yet done and return the table (also written to ``out``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cells = spec.cells()
    work = [Job(cell_config(spec, cell), out / cell.folder) for cell in cells]
    by_folder = dict(zip((job.folder for job in work), cells, strict=True))

    def ended(outcome: Outcome) -> None:
        if progress is not None:
            progress(by_folder[outcome.job.folder])

    with folder_lock(out):
        outcomes = run_jobs(work, max_workers=jobs, progress=ended)
    values = {
        f"{cell.row}|{cell.column}": _cell_value(outcome)
        for cell, outcome in zip(cells, outcomes, strict=True)
    }
    table = {
        "row_key": spec.row_key,
        "column_key": spec.column_key,
        "rows": spec.rows,
        "columns": spec.columns,
        "values": values,
    }
    atomic_write(out / "table.json", dumps(table, indent=2) + "\n")
    atomic_write(out / "table.md", markdown(table))
    return table


def _cell_value(outcome: Outcome) -> Any:
    if outcome.ok:
        return _value(outcome.summary)
    return f"{outcome.status}: {outcome.error['message']}"


def markdown(table: dict[str, Any]) -> str:
    """The table as Markdown, with each column's lowest value (strongest row) bold."""
    rows, columns, values = table["rows"], table["columns"], table["values"]
    header = f"| {table['row_key']} \\ {table['column_key']} | " + " | ".join(columns)
    lines = [header + " |", "|---" * (len(columns) + 1) + "|"]
    lowest = {}
    for c in columns:
        numbers = [values[f"{r}|{c}"] for r in rows if _is_number(values[f"{r}|{c}"])]
        lowest[c] = min(numbers) if numbers else None
    for r in rows:
        cells = []
        for c in columns:
            v = values[f"{r}|{c}"]
            if not _is_number(v):
                cells.append("n/a")
            elif v == lowest[c]:
                cells.append(f"**{v:.3f}**")
            else:
                cells.append(f"{v:.3f}")
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    strongest = [
        f"{c}: {', '.join(r for r in rows if values[f'{r}|{c}'] == lowest[c])}"
        for c in columns
        if lowest[c] is not None
    ]
    lines += ["", "Strongest row per column: " + "; ".join(strongest) + "."]
    refused = {v for v in values.values() if not _is_number(v)}
    lines += [f"n/a: {reason}" for reason in sorted(refused)]
    return "\n".join(lines) + "\n"


def _is_number(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value)
