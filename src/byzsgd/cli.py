"""The ``byzsgd`` command line: run, tables, contraction studies, rules and attacks."""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

from byzsgd import aggregators, attacks
from byzsgd.config import ConfigError, key_docs, to_toml
from byzsgd.contraction import command as contraction_command
from byzsgd.experiments import command as experiments_command
from byzsgd.recording import METRICS_FILE

EXIT_USAGE = 2


def _keys_help() -> str:
    lines = ["configuration keys (set with --set key=value or in CONFIG.toml):"]
    for key, default, doc in key_docs():
        lines.append(f"  {key} = {default!r}")
        lines.extend(
            textwrap.wrap(doc, 76, initial_indent=" " * 6, subsequent_indent=" " * 6)
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="byzsgd",
        description="Byzantine-resilient SGD with several servers and several workers.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logs")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="train one configuration (the embedded default without CONFIG)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_keys_help(),
    )
    run.add_argument("config", nargs="?", help="a TOML file; default: embedded default")
    _add_config_options(run)
    run.add_argument(
        "--runtime",
        choices=("simulator", "ray"),
        help="simulator (one process) or ray (one process per node); sets runtime",
    )
    run.add_argument(
        "--address", help="join this Ray cluster (sets ray.address and runtime = ray)"
    )
    run.add_argument("--out", help="run folder; default runs/<timestamp>-<hash>")
    run.add_argument("--overwrite", action="store_true", help="replace a run in --out")
    run.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted simulator run from its checkpoint",
    )
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    show = commands.add_parser(
        "config",
        help="print the resolved configuration as TOML",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_keys_help(),
    )
    show.add_argument(
        "config", nargs="?", help="a TOML file; default: embedded default"
    )
    _add_config_options(show)
    show.add_argument(
        "--keys", action="store_true", help="print every key as a Markdown table"
    )

    plot = commands.add_parser(
        "plot", help="overlay one metric of several run folders in one figure"
    )
    plot.add_argument("runs", nargs="+", help="run folders")
    plot.add_argument("--metric", default="diameter_l2", help="metric key to plot")
    plot.add_argument("--labels", nargs="*", help="one legend label per run")
    plot.add_argument("--log", action="store_true", help="logarithmic y axis")
    plot.add_argument("--out", required=True, help="the PNG file to write")

    experiments_command.add_parsers(commands)
    contraction_command.add_parser(commands)
    commands.add_parser("rules", help="list the aggregation rules and their conditions")
    commands.add_parser("attacks", help="list the attacks and their channels")
    return parser


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a configuration key (repeatable), e.g. steps=100",
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    warnings.showwarning = _show_warning
    try:
        return _COMMANDS[args.command](args)
    except (ValueError, FileExistsError, FileNotFoundError) as error:
        print(f"byzsgd: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            "byzsgd: interrupted; whatever was already written is left as it was",
            file=sys.stderr,
        )
        return 130


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"byzsgd: warning: {message}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from byzsgd.api import as_config, run
    from byzsgd.validation import resolve

    overrides = list(args.overrides)
    if args.runtime:
        overrides.append(f"runtime={args.runtime}")
    if args.address:
        overrides += ["runtime=ray", f"ray.address={args.address}"]
    if args.resume:
        return _resume(args, overrides)
    config = as_config(args.config, overrides)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resolve(config)
    bar = _step_bar(args, config.steps)
    state: dict[str, Any] = {}

    def progress(record: dict[str, Any], simulator: Any) -> None:
        if "test_accuracy_mean" in record:
            state["acc"] = f"{record['test_accuracy_min']:.3f}"
        elif "test_loss_mean" in record:
            state["loss"] = f"{record['test_loss_mean']:.4g}"
        if bar is not None:
            bar.set_postfix(
                **state, d_inf=f"{record['diameter_linf']:.2e}", refresh=False
            )
            bar.update(1)

    try:
        summary = run(config, out=args.out, overwrite=args.overwrite, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    return _print_summary(args, summary)


def _step_bar(args: argparse.Namespace, total: int, initial: int = 0) -> Any:
    if args.no_progress:
        return None
    from tqdm import tqdm

    return tqdm(
        total=total, initial=initial, desc="byzsgd run", unit="step", file=sys.stderr
    )


def _resume(args: argparse.Namespace, overrides: list[str]) -> int:
    from byzsgd import checkpoint
    from byzsgd.api import as_config, resume

    if args.out or args.overwrite:
        raise ConfigError(
            "--resume continues a run in its own folder; it takes no --out or "
            "--overwrite"
        )
    requested = None
    if args.config or overrides:
        base = args.config or checkpoint.folder_config(args.resume)
        requested = as_config(base, overrides)
    config, state = checkpoint.resumable(args.resume, requested)
    bar = _step_bar(args, config.steps, initial=int(state["step"]))

    def progress(record: dict[str, Any], simulator: Any) -> None:
        if bar is not None:
            bar.update(1)

    try:
        summary = resume(args.resume, config=requested, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    return _print_summary(args, summary)


def _print_summary(args: argparse.Namespace, summary: dict[str, Any]) -> int:
    table = _summary_table(summary)
    if args.json:
        from byzsgd.recording import dumps

        print(table, file=sys.stderr)
        print(dumps(summary, indent=2))
    else:
        print(table)
    return 0


def _summary_table(summary: dict[str, Any]) -> str:
    rows = [("server", "test accuracy", "test loss")]
    for server, accuracy in summary["final_accuracy"].items():
        loss = summary["final_test_loss"][server]
        shown = "-" if accuracy is None else f"{accuracy:.4f}"
        rows.append((f"correct {server}", shown, f"{loss:.4g}"))
    diameter = summary["final_diameter"]
    lines = [f"{a:<14} {b:>14} {c:>12}" for a, b, c in rows]
    lines.append(
        f"final diameter: Δ1 = {diameter['l1']:.3e}  Δ2 = {diameter['l2']:.3e}  "
        f"Δ∞ = {diameter['linf']:.3e}"
    )
    lines.append(
        f"{summary['steps']} steps, {summary['steps_per_second']:.1f} steps/s, "
        f"run folder {summary['run_dir']}"
    )
    return "\n".join(lines)


def _config(args: argparse.Namespace) -> int:
    from byzsgd.api import as_config
    from byzsgd.validation import resolve

    if args.keys:
        print(keys_markdown(), end="")
        return 0
    config = as_config(args.config, args.overrides)
    resolve(config)
    print(to_toml(config), end="")
    return 0


def keys_markdown() -> str:
    """Every configuration key as a Markdown table (the body of docs/config.md)."""
    lines = ["| key | default | meaning |", "|---|---|---|"]
    for key, default, doc in key_docs():
        lines.append(f"| `{key}` | `{default!r}` | {doc} |")
    return "\n".join(lines) + "\n"


def _plot(args: argparse.Namespace) -> int:
    from byzsgd.plots import plot_metric
    from byzsgd.recording import read_metrics

    labels = args.labels or [str(path) for path in args.runs]
    if len(labels) != len(args.runs):
        raise ConfigError(
            f"--labels has {len(labels)} labels; expected {len(args.runs)}, one per run"
        )
    for path in args.runs:
        if not (Path(path) / METRICS_FILE).is_file():
            raise FileNotFoundError(f"{path!r} is no run folder (no {METRICS_FILE})")
    runs = {
        label: read_metrics(path) for label, path in zip(labels, args.runs, strict=True)
    }
    plot_metric(runs, args.metric, args.out, log=args.log)
    return 0


def _rules(args: argparse.Namespace) -> int:
    for name in aggregators.names():
        print(f"{name:<18} {aggregators.condition(name).text}")
    steps = ", ".join(aggregators.pre_aggregators())
    print(f"\npre-aggregation steps (compose with +, e.g. nnm+krum): {steps}")
    return 0


def _attacks(args: argparse.Namespace) -> int:
    for name in attacks.names():
        cls = attacks.get(name)
        channels = ", ".join(sorted(cls.channels))
        kind = "equivocates" if cls.equivocates else ""
        print(f"{name:<18} {kind:<12} {channels}")
    return 0


_COMMANDS = {
    "run": _run,
    "table": experiments_command.table,
    "contraction": contraction_command.run,
    "config": _config,
    "plot": _plot,
    "rules": _rules,
    "attacks": _attacks,
    "sweep": experiments_command.sweep,
    "report": experiments_command.report,
}


if __name__ == "__main__":
    sys.exit(main())
