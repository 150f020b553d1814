"""Aggregation-rule benchmark: byzsgd's rules against ByzFL, the reference library,
and against plain torch reductions, on the same inputs.

Run: ``.venv-bench/bin/python benchmarks/aggregators.py`` (``make bench-env`` creates
that environment with ByzFL 0.0.11 in it; under ``.venv`` the benchmark prints
byzsgd's own numbers only). Two input sets, m = 15, d = 10^6, f = 3 and
m = 50, d = 10^5, f = 12, each with two kinds of Byzantine inputs; every table gives
medians of interleaved repetitions, each rule's time against ByzFL's, against
``torch.mean``, and the goals it meets.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

import _byzfl
from byzsgd import aggregators

FAR_SCALE = 100.0
MIN_SAMPLE_SECONDS = 0.02
MAX_CALLS_PER_SAMPLE = 20
BYZFL_MAX_SUBSETS = 100_000
MEDIAN_GOAL_INPUTS = 15  # the speed-up goal against torch.median is set at m = 15

# Options that make a byzsgd row compute what its ByzFL counterpart computes.
BUCKET_SIZE = 2
BYZFL_CLIPPING = {"radius": 100.0, "iterations": 1, "start": "zero"}
CLIPPING_MATCHED = "centered_clipping*"
ORDER = (
    "mean",
    "median",
    "trimmed_mean",
    "meamed",
    "trimmed_midpoint",
    "krum",
    "multi_krum",
    "bulyan",
    "mda",
    "geometric_median",
    "centered_clipping",
    CLIPPING_MATCHED,
    "nnm",
    "bucketing",
    "arc",
)


@dataclass(frozen=True)
class Setting:
    """One input set: m inputs of dimension d, f of them Byzantine."""

    num_inputs: int
    dimension: int
    num_byzantine: int


FULL = (Setting(15, 10**6, 3), Setting(50, 10**5, 12))
QUICK = (Setting(15, 10**4, 3), Setting(50, 10**3, 12))
ATTACKS = {
    "far": f"far away: correct mean + {FAR_SCALE:g}·N(0, I) each",
    "alie": "ALIE: all equal to mean − z·std of the correct inputs",
}


@dataclass(frozen=True)
class Timed:
    """A call to time; ``setup`` (untimed) makes its argument afresh for each call."""

    call: Callable[[Any], object]
    setup: Callable[[], Any] = lambda: None


# Inputs


def benchmark_inputs(setting: Setting, attack: str, seed: int) -> torch.Tensor:
    """Correct inputs N(g, I) around a random g, then the f Byzantine ones (m, d)."""
    m, d, f = setting.num_inputs, setting.dimension, setting.num_byzantine
    generator = torch.Generator().manual_seed(seed)
    centre = torch.randn(d, generator=generator)
    correct = centre + torch.randn(m - f, d, generator=generator)

    if attack == "far":
        noise = torch.randn(f, d, generator=generator)
        byzantine = correct.mean(dim=0) + FAR_SCALE * noise
    else:
        byzantine = alie(correct, m, f).expand(f, d)
    return torch.cat([correct, byzantine]).contiguous()


def alie(correct: torch.Tensor, m: int, f: int) -> torch.Tensor:
    """A little is enough (Baruch et al., 2019): mean − z·std, z from (m, f)."""
    supporters = m // 2 + 1 - f
    z = statistics.NormalDist().inv_cdf((m - supporters) / m)
    return correct.mean(dim=0) - z * correct.std(dim=0)


# Contestants


def byzsgd_rows(x: torch.Tensor, f: int, seed: int) -> dict[str, Timed | str]:
    """Every byzsgd rule and pre-aggregation step, or why it cannot run here."""
    m = x.shape[-2]
    options: dict[str, dict[str, Any]] = {
        "mean": {"f": 0},
        "bucketing": {
            "bucket_size": BUCKET_SIZE,
            "generator": torch.Generator().manual_seed(seed),
        },
        CLIPPING_MATCHED: BYZFL_CLIPPING,
    }
    rows: dict[str, Timed | str] = {}
    known = [*aggregators.names(), CLIPPING_MATCHED, *aggregators.pre_aggregators()]
    labels = [n for n in ORDER if n in known] + [n for n in known if n not in ORDER]
    for label in labels:
        name = label.rstrip("*")
        kwargs = {"f": f, **options.get(label, {})}
        if name in aggregators.pre_aggregators():
            step = getattr(aggregators, name)
            rows[label] = Timed(lambda _, step=step, kw=kwargs: step(x, **kw))
            continue
        condition = aggregators.condition(name)
        if not condition.holds(m, kwargs["f"]):
            rows[label] = f"n/a ({condition.text})"
            continue
        rule = aggregators.get(name)
        rows[label] = Timed(lambda _, rule=rule, kw=kwargs: rule(x, **kw))
    return rows


def byzfl_rows(byzfl: Any, x: torch.Tensor, f: int) -> dict[str, Timed | str]:
    """ByzFL's counterpart of each byzsgd row it has, called on the same tensor.

    ByzFL takes torch tensors directly (its fastest path). Its CenteredClipping keeps
    the last output as the next starting point and its ARC clips its input in place,
    so each call gets a fresh instance or a fresh copy, made outside the timing.
    """
    m = x.shape[-2]
    instances = {
        "mean": byzfl.Average(),
        "median": byzfl.Median(),
        "trimmed_mean": byzfl.TrMean(f=f),
        "meamed": byzfl.Meamed(f=f),
        "krum": byzfl.Krum(f=f),
        "multi_krum": byzfl.MultiKrum(f=f),
        "geometric_median": byzfl.GeometricMedian(),
        "nnm": byzfl.NNM(f=f),
        "bucketing": byzfl.Bucketing(s=BUCKET_SIZE),
    }
    rows: dict[str, Timed | str] = {
        label: Timed(lambda _, rule=rule: rule(x)) for label, rule in instances.items()
    }
    rows[CLIPPING_MATCHED] = Timed(lambda _: byzfl.CenteredClipping()(x))
    rows["arc"] = Timed(byzfl.ARC(f=f), setup=x.clone)
    subsets = math.comb(m, f)
    if subsets <= BYZFL_MAX_SUBSETS:
        rows["mda"] = Timed(lambda _: byzfl.MDA(f=f)(x))
    else:
        rows["mda"] = f"infeasible (C({m},{f}) = {subsets:,} subsets)"
    return rows


# Timing


def seconds_per_call(timed: Timed, calls: int) -> float:
    total = 0.0
    for _ in range(calls):
        argument = timed.setup()
        start = time.perf_counter()
        timed.call(argument)
        total += time.perf_counter() - start
    return total / calls


def interleaved_medians(contestants: dict[Any, Timed], repeats: int) -> dict:
    """Median seconds per call of each contestant, all timed in turn per repetition.

    A warm-up call sizes each sample to at least ``MIN_SAMPLE_SECONDS`` of calls.
    """
    calls = {}
    for key, timed in contestants.items():
        first = seconds_per_call(timed, 1)
        wanted = math.ceil(MIN_SAMPLE_SECONDS / max(first, 1e-9))
        calls[key] = min(MAX_CALLS_PER_SAMPLE, max(1, wanted))
    samples: dict[Any, list[float]] = {key: [] for key in contestants}
    for _ in range(repeats):
        for key, timed in contestants.items():
            samples[key].append(seconds_per_call(timed, calls[key]))
    return {key: statistics.median(values) for key, values in samples.items()}


# Report

COLUMNS = (
    ("rule", "<19"),
    ("byzsgd ms", ">10"),
    ("ByzFL ms", ">12"),
    ("vs ByzFL", ">9"),
    ("/ mean", ">9"),
    ("rel. diff", ">10"),
)


def line(*cells: str) -> str:
    return "".join(
        f"{cell:{spec}}" for cell, (_, spec) in zip(cells, COLUMNS, strict=False)
    )


def milliseconds(seconds: float) -> str:
    value = 1e3 * seconds
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def ratio(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}x"
    return f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def table(
    setting: Setting, attack: str, byzfl: Any, repeats: int, seed: int
) -> list[str]:
    """Time every rule on one input set; the table and the goals' lines."""
    m, f = setting.num_inputs, setting.num_byzantine
    x = benchmark_inputs(setting, attack, seed)
    ours = byzsgd_rows(x, f, seed)
    theirs = byzfl_rows(byzfl, x, f) if byzfl is not None else {}
    contestants: dict[Any, Timed] = {
        ("torch", "torch.mean"): Timed(lambda _: x.mean(dim=-2)),
        ("torch", "torch.median"): Timed(lambda _: x.median(dim=-2)),
    }
    for label, row in ours.items():
        if isinstance(row, Timed):
            contestants["byzsgd", label] = row
            if isinstance(theirs.get(label), Timed):
                contestants["byzfl", label] = theirs[label]
    times = interleaved_medians(contestants, repeats)

    mean_time = times["torch", "torch.mean"]
    lines = [
        f"m = {m}, d = {setting.dimension:,}, f = {f}; Byzantine inputs "
        + ATTACKS[attack],
        line(*(title for title, _ in COLUMNS)),
    ]
    for name in ("torch.mean", "torch.median"):
        own = times["torch", name]
        lines.append(line(name, milliseconds(own), "", "", ratio(own / mean_time)))
    speedups: dict[str, float] = {}
    for label, row in ours.items():
        if isinstance(row, str):
            lines.append(line(label, row))
            continue
        own = times["byzsgd", label]
        other = theirs.get(label, "-" if theirs else "")
        cells = [
            milliseconds(own),
            other.split(" ")[0] if isinstance(other, str) else "",
        ]
        cells += ["", ratio(own / mean_time), ""]
        if isinstance(other, Timed):
            speedups[label] = times["byzfl", label] / own
            cells[1] = milliseconds(times["byzfl", label])
            cells[2] = ratio(speedups[label])
            cells[4] = "random" if label == "bucketing" else difference(row, other)
        lines.append(line(label, *cells))
    return lines + goal_lines(m, times, speedups, theirs)


def difference(ours: Timed, theirs: Timed) -> str:
    """||ours − theirs|| / ||theirs|| of one call of each."""
    a, b = ours.call(ours.setup()), theirs.call(theirs.setup())
    assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
    a, b = a.double(), b.double()
    return f"{float((a - b).norm() / b.norm().clamp_min(1e-30)):.0e}"


def goal_lines(
    m: int, times: dict, speedups: dict[str, float], theirs: dict[str, Timed | str]
) -> list[str]:
    """Which goals this input set meets."""
    lines = []
    if theirs:
        missed = [f"{k} {ratio(v)}" for k, v in speedups.items() if v < 2.0]
        slower = [k for k, v in speedups.items() if v < 1.0]
        lines.append(
            f"goal >= 2x faster than ByzFL: met by {len(speedups) - len(missed)} of "
            f"{len(speedups)}" + (f"; missed by {', '.join(missed)}" if missed else "")
        )
        lines.append(
            "goal never slower than ByzFL: "
            + (f"missed by {', '.join(slower)}" if slower else "met")
        )
        if isinstance(theirs.get("mda"), str):
            lines.append(f"ByzFL mda: {theirs['mda']}")
    else:
        lines.append("ByzFL: not installed (make bench-env)")
    for name in ("median", "trimmed_mean"):
        speedup = times["torch", "torch.median"] / times["byzsgd", name]
        verdict = "met" if speedup >= 3 else "missed"
        goal = f" (goal >= 3x: {verdict})" if m == MEDIAN_GOAL_INPUTS else ""
        lines.append(f"{name} vs torch.median: {speedup:.1f}x{goal}")
    mda_time = times["byzsgd", "mda"]
    verdict = "met" if mda_time <= 1.0 else "missed"
    lines.append(f"byzsgd mda: {1e3 * mda_time:.0f} ms (goal <= 1 s: {verdict})")
    lines.append(f"load average after this table: {load_average()}")
    return lines


def mda_check(setting: Setting, seed: int) -> str:
    """Whether MDA returns the correct inputs' mean when the others are far away."""
    m, f = setting.num_inputs, setting.num_byzantine
    x = benchmark_inputs(setting, "far", seed)
    expected = x[: m - f].mean(dim=0)
    output = aggregators.mda(x, f=f)
    error = float((output - expected).abs().max())
    verdict = "OK" if torch.allclose(output, expected, rtol=1e-5, atol=1e-5) else "FAIL"
    return (
        f"check: byzsgd mda = mean of the {m - f} correct inputs on the far-away "
        f"input (m = {m}): {verdict} (max |difference| {error:.1e})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--repeats", type=int, help="repetitions per table (default 7, quick 3)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--attack", choices=[*ATTACKS, "both"], default="both")
    parser.add_argument(
        "--inputs",
        choices=[str(s.num_inputs) for s in FULL] + ["both"],
        default="both",
        help="the input set(s) to run, by their number of inputs m",
    )
    parser.add_argument(
        "--quick", action="store_true", help="d / 100: a smoke run of a few seconds"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = args.repeats or (3 if args.quick else 7)
    settings = [
        setting
        for setting in (QUICK if args.quick else FULL)
        if args.inputs in ("both", str(setting.num_inputs))
    ]
    attacks = list(ATTACKS) if args.attack == "both" else [args.attack]
    byzfl, status = _byzfl.load()

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, medians of "
        f"{repeats} interleaved repetitions; {status}; load average " + load_average()
    )
    print(
        "vs ByzFL = ByzFL time / byzsgd time; / mean = byzsgd time / torch.mean time;"
        " rel. diff = ||byzsgd − ByzFL|| / ||ByzFL|| of the outputs.\n"
        f"{CLIPPING_MATCHED}: ByzFL's defaults (radius 100, 1 iteration from zero); "
        "centered_clipping: byzsgd's (radius = median distance, 3 from the median)."
    )
    for setting in settings:
        for attack in attacks:
            print()
            print("\n".join(table(setting, attack, byzfl, repeats, args.seed)))
        print(mda_check(setting, args.seed))


def load_average() -> str:
    """The 1, 5 and 15-minute load averages (other work skews the timings)."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
