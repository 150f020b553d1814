"""Ray runtime benchmark, side by side in one run.

1. Steps per second of the Ray runtime against the simulator on the same
   configuration (the embedded default, shortened).
2. The robust protocol (5 servers of which 1 Byzantine, 10 workers of which 3
   Byzantine) against plain single-server averaging SGD on Ray with the same workers.
3. Start-up time and memory per actor.

Run: ``.venv/bin/python benchmarks/runtime.py [--steps 60] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from _timing import PLAIN_AVERAGING
from byzsgd import run
from byzsgd.config import default_config, set_key


def configured(changes: dict, steps: int):
    config = default_config()
    set_key(config, "steps", steps)
    set_key(config, "eval_every", steps)
    for key, value in changes.items():
        set_key(config, key, value)
    return config


def measure(config) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        summary = run(config, out=folder)
        summary["total_seconds"] = time.perf_counter() - start
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cases = {
        "simulator, robust": configured({}, args.steps),
        "ray, robust": configured({"runtime": "ray"}, args.steps),
        "ray, plain averaging": configured(
            {"runtime": "ray", **PLAIN_AVERAGING}, args.steps
        ),
    }
    results: dict[str, list[dict]] = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, config in cases.items():
            results[name].append(measure(config))

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    print(f"{args.steps} steps of the default configuration, medians of {args.repeats}")
    print(
        f"{'case':<22}{'steps/s':>9}{'start-up s':>12}{'total s':>9}{'MiB/actor':>11}"
    )
    for name in cases:
        ray = name.startswith("ray")
        startup = (
            f"{median(name, 'ray_startup_seconds'):>12.1f}" if ray else f"{'-':>12}"
        )
        memory = (
            f"{median(name, 'ray_actor_memory_mib'):>11.0f}" if ray else f"{'-':>11}"
        )
        print(
            f"{name:<22}{median(name, 'steps_per_second'):>9.1f}{startup}"
            f"{median(name, 'total_seconds'):>9.1f}{memory}"
        )
    sim = median("simulator, robust", "steps_per_second")
    ray = median("ray, robust", "steps_per_second")
    plain = median("ray, plain averaging", "steps_per_second")
    print(f"\nsimulator / ray (steps per second): {sim / ray:.1f}x")
    print(f"robust / plain step time on ray (goal <= 1.3x): {plain / ray:.2f}x")


if __name__ == "__main__":
    main()
