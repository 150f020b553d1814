"""``byzsgd sweep``, ``byzsgd table`` and ``byzsgd report`` on the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from byzsgd.config import ConfigError


def add_parsers(commands) -> None:
    """Register the sweep, report and table commands on the CLI's subparsers."""
    sweep = commands.add_parser(
        "sweep",
        help="run every combination of a grid file, in parallel, resumable",
    )
    sweep.add_argument("grid", help="a grid file: [base], [grid], [[include]]")
    sweep.add_argument("--out", help="sweep folder; default runs/<grid file name>")
    sweep.add_argument(
        "--jobs", type=int, help="parallel runs (default and at most: the cores)"
    )
    sweep.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the grid and manifest of a folder holding another grid's sweep",
    )
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")

    report = commands.add_parser(
        "report", help="tables and figures of a run or sweep folder"
    )
    report.add_argument("path", help="a run folder or a sweep folder")
    report.add_argument(
        "--target-accuracy",
        type=float,
        help="accuracy the overhead table counts steps to (default: 95 %% of the "
        "reference's final accuracy, rounded down to 0.01)",
    )
    report.add_argument(
        "--reference",
        help="the fault-free reference: a run folder, or a run's name or config "
        "hash in the sweep (default: no Byzantine node, mean, fewest servers)",
    )
    report.add_argument("--out", help="folder for the report; default PATH itself")

    table = commands.add_parser(
        "table", help="run rows x columns of configurations (e.g. attack x rule)"
    )
    table.add_argument("spec", help="a table file (see docs/attacks.md)")
    table.add_argument("--out", required=True, help="folder for the runs and tables")
    table.add_argument("--jobs", type=int, default=2, help="parallel runs (default 2)")


def table(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from byzsgd.experiments.table import load_spec, markdown, run_table

    if args.jobs < 1:
        raise ConfigError(
            f"--jobs = {args.jobs} is not allowed; expected an integer >= 1"
        )
    spec = load_spec(args.spec)
    with tqdm(total=len(spec.cells()), desc="byzsgd table", file=sys.stderr) as bar:
        table = run_table(
            spec, args.out, jobs=args.jobs, progress=lambda _: bar.update()
        )
    print(markdown(table), end="")
    return 0


def sweep(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from byzsgd.experiments.runner import read_summary
    from byzsgd.experiments.sweep import check_folder, load_grid, run_sweep, same_runs

    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(
            f"--jobs = {args.jobs} is not allowed; expected an integer >= 1"
        )
    grid = load_grid(args.grid)
    out = Path(args.out or Path("runs") / Path(args.grid).stem)
    runs = grid.runs()
    check_folder(grid, out, overwrite=args.overwrite, runs=runs)
    finished = sum(read_summary(out / run.hash) is not None for run in runs)
    if finished == len(runs) and same_runs(grid, out, runs):
        print(f"all {len(runs)} runs in {out} are finished; nothing to do")
        return 0
    with (
        logging_redirect_tqdm(),  # log lines above the bar, not through it
        tqdm(
            total=len(runs),
            initial=finished,
            desc="byzsgd sweep",
            unit="run",
            file=sys.stderr,
            disable=args.no_progress,
        ) as bar,
    ):
        manifest = run_sweep(
            grid,
            out,
            jobs=args.jobs,
            progress=lambda _: bar.update(),
            runs=runs,
            overwrite=args.overwrite,
        )
    for run, entry in zip(runs, manifest["runs"], strict=True):
        print(f"{entry['status']:<8} {entry['hash']}  {run.describe()}")
    failed = [e for e in manifest["runs"] if e["status"] in ("failed", "refused")]
    counts = ", ".join(f"{n} {status}" for status, n in manifest["counts"].items())
    print(f"{len(runs)} runs in {out} ({counts}) in {manifest['seconds']:.1f} s")
    for entry in failed:
        print(
            f"byzsgd: run {entry['hash']} {entry['status']}: {entry['error']}",
            file=sys.stderr,
        )
    return 1 if failed else 0


def report(args: argparse.Namespace) -> int:
    from byzsgd.experiments.report import write_report

    write_report(
        args.path,
        args.out,
        target_accuracy=args.target_accuracy,
        reference=args.reference,
    )
    print((Path(args.out or args.path) / "report.md").read_text(), end="")
    return 0
