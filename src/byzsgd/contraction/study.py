"""Run the cells of one or more studies and summarise each as a row of statistics."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from byzsgd.contraction import adversaries, exact
from byzsgd.contraction.engine import Measurement, measure
from byzsgd.contraction.spec import Cell, Study, load

logger = logging.getLogger(__name__)

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


@dataclass
class StudyResult:
    """The studies run, one row per cell (in grid order), and the time they took."""

    studies: list[Study]
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def rows_of(self, study: str) -> list[dict[str, Any]]:
        return [row for row in self.rows if row["study"] == study]


def run_study(
    source: str | Path | dict | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    only: list[str] | None = None,
    progress: Callable[[Cell], None] | None = None,
) -> StudyResult:
    """Measure every cell of the studies in ``source`` (None: the default study).

    Parameters
    ----------
    source:
        A study file, a dict of the same shape, or None for the embedded default.
    overrides:
        Axis or setting values applied to every study (``{"reps": 50}``).
    only:
        Names of the studies to run; default all.
    progress:
        Called after each cell.

    Returns
    -------
    StudyResult
        One row per cell with E[Δ'/Δ] and its 95 % confidence interval, the
        exact value where one exists, P(no contraction), the rounds to shrink Δ by
        the study's factor, and the comparison with the bound.
    """
    studies = load(source, overrides, only)
    result = StudyResult(studies)
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small tensors: threads cost more than they give
    try:
        for study in studies:
            cells = study.cells()
            measured = _measure_all(cells, progress)
            result.rows.extend(summarise(cell, measured.get(cell)) for cell in cells)
            logger.info("study %s: %d cells", study.name, len(cells))
    finally:
        torch.set_num_threads(threads)
    result.seconds = time.perf_counter() - start
    return result


def _measure_all(
    cells: list[Cell], progress: Callable[[Cell], None] | None
) -> dict[Cell, Measurement]:
    """Measure every valid cell; cells differing only in the norm share their runs
    unless the adversary aims at a norm."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        if cell.status != "ok":
            continue
        aims = adversaries.make(cell.adversary).needs_norm
        key = cell.key(exclude=() if aims else ("norm",))
        groups.setdefault(key, []).append(cell)
    measured: dict[Cell, Measurement] = {}
    for group in groups.values():
        results = measure(group[0], [cell.norm for cell in group])
        for cell in group:
            measured[cell] = results[cell.norm]
            if progress is not None:
                progress(cell)
    for cell in cells:
        if cell.status != "ok" and progress is not None:
            progress(cell)
    return measured


def summarise(cell: Cell, measured: Measurement | None) -> dict[str, Any]:
    """One cell's row: its axes, the statistics, and whether the bound holds."""
    row: dict[str, Any] = {"study": cell.study, **cell.axes(), "n": cell.n}
    row.update(reps=cell.reps, rounds_cap=cell.rounds_cap, shrink=cell.shrink)
    row["margin"] = cell.margin
    row["status"] = cell.status
    if measured is None:
        return row
    ratio = measured.ratio
    row["ratio_mean"], row["ratio_low"], row["ratio_high"] = mean_interval(ratio)
    row["ratio_max"] = float(ratio.max())
    row["pair_ratio"] = float(measured.pair_ratio.mean())
    stuck = int((ratio >= 1.0 - 1e-12).sum())
    row["p_no_contraction"] = stuck / cell.reps
    row["p_no_contraction_low"], row["p_no_contraction_high"] = wilson(stuck, cell.reps)
    row["rounds_median"], row["rounds_low"], row["rounds_high"] = median_interval(
        measured.rounds
    )
    row["reached"] = float(torch.isfinite(measured.rounds).double().mean())
    row["rounds_run"] = measured.rounds_run
    row["final_ratio_median"] = float(measured.final.median())
    row["exact_ratio"] = row["exact_p_no_contraction"] = None
    if exact.applies(cell):
        row["exact_ratio"], row["exact_p_no_contraction"] = exact.exact_values(cell)

    row["bound"] = bound = cell.bound_value
    value = row["exact_ratio"] if row["exact_ratio"] is not None else row["ratio_mean"]
    row["violates"] = value > bound + 1e-9
    certain = row["exact_ratio"] is not None or row["ratio_low"] > bound + 1e-9
    row["violation_significant"] = bool(row["violates"] and certain)
    return row


def mean_interval(values: torch.Tensor) -> tuple[float, float, float]:
    """The mean and its 95 % normal confidence interval."""
    mean = float(values.mean())
    half = Z95 * float(values.std()) / math.sqrt(values.numel())
    return mean, mean - half, mean + half


def wilson(successes: int, trials: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion."""
    p = successes / trials
    denominator = 1 + Z95**2 / trials
    centre = (p + Z95**2 / (2 * trials)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / trials + Z95**2 / (4 * trials**2))
    half /= denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def median_interval(rounds: torch.Tensor) -> tuple[float, float, float]:
    """The median and a 95 % distribution-free interval from order statistics.

    Repetitions that did not shrink within the cap count as +inf, so a median of
    inf reads "not within the cap".
    """
    ordered = rounds.sort().values
    n = ordered.numel()
    half = Z95 * math.sqrt(n) / 2
    low = max(math.floor(n / 2 - half), 0)
    high = min(math.ceil(n / 2 + half), n - 1)
    return float(ordered[(n - 1) // 2]), float(ordered[low]), float(ordered[high])
