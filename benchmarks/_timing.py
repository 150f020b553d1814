"""Side-by-side timing helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(
    fn: Callable[[], object], *, repeats: int = 7, inner: int = 5
) -> float:
    """Median over ``repeats`` runs of the mean time of ``inner`` calls of ``fn``."""
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples)


def interleaved(
    fns: dict[str, Callable[[], object]], *, repeats: int = 7, inner: int = 5
) -> dict[str, float]:
    """Median seconds per call of each function, measured in alternation."""
    for fn in fns.values():
        fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            samples[name].append((time.perf_counter() - start) / inner)
    return {name: statistics.median(values) for name, values in samples.items()}
