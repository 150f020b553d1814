"""``byzsgd contraction``: run a study from the command line and write its results."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from byzsgd.config import ConfigError, parse_value


def add_parser(commands) -> None:
    """Register the ``contraction`` command on the CLI's subparsers."""
    parser = commands.add_parser(
        "contraction",
        help="measure how gather rules contract the correct servers (a study grid)",
        description=(
            "Measure E[Δ'/Δ] of one gather round, P(no contraction) and the rounds "
            "to shrink Δ, over a grid of sizes, quorums, rules, norms, initial "
            "configurations and adversaries. Without STUDY: the default study."
        ),
    )
    parser.add_argument("study", nargs="?", help="a study file (TOML)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="AXIS=VALUE",
        help="replace an axis or setting in every study, e.g. reps=50 or "
        "lam=[0.25,0.5]",
    )
    parser.add_argument("--only", action="append", help="run only this study")
    parser.add_argument("--out", help="output folder; default runs/contraction-<time>")
    parser.add_argument("--overwrite", action="store_true", help="replace results")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from byzsgd.contraction.output import check_output, terminal_table, write_outputs
    from byzsgd.contraction.spec import load
    from byzsgd.contraction.study import run_study

    overrides = {}
    for item in args.overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected AXIS=VALUE")
        overrides[key.strip()] = parse_value(text.strip())
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or f"runs/contraction-{stamp}")
    check_output(out, overwrite=args.overwrite)
    studies = load(args.study, overrides, args.only)

    total = sum(len(study.cells()) for study in studies)
    with tqdm(
        total=total,
        desc="byzsgd contraction",
        unit="cell",
        file=sys.stderr,
        disable=args.no_progress,
    ) as bar:
        result = run_study(
            args.study,
            overrides=overrides,
            only=args.only,
            progress=lambda _: bar.update(),
        )
    write_outputs(result, out, overwrite=args.overwrite)
    for study in result.studies:
        print(terminal_table(result, study), end="\n\n")
    print(f"{len(result.rows)} cells in {result.seconds:.1f} s; results in {out}")
    return 0
