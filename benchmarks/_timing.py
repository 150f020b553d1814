"""Side-by-side timing helpers and configurations shared by the benchmarks."""

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


# Plain single-server averaging SGD: no Byzantine node, every message heard, the
# mean, no gather. Applied over the default configuration with config.set_key.
PLAIN_AVERAGING = {
    "num_servers": 1,
    "num_byzantine_servers": 0,
    "num_byzantine_workers": 0,
    "server_to_worker.policy": "all",
    "server_to_worker.attack": "none",
    "worker_to_server.policy": "all",
    "worker_to_server.rule": "mean",
    "worker_to_server.attack": "none",
    "server_to_server.policy": "all",
    "server_to_server.attack": "none",
    "server_to_server.mixing": 0.0,
}
