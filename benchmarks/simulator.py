"""Simulator benchmark: batched gradients against a per-worker loop, and a whole
robust protocol step against a plain averaged-SGD step with the same workers.

Run: ``.venv/bin/python benchmarks/simulator.py`` (2 torch threads). Prints medians of
interleaved repetitions and their ratios, side by side in one run.
"""

from __future__ import annotations

import argparse

import torch

from _timing import PLAIN_AVERAGING, interleaved
from byzsgd.config import default_config, set_key
from byzsgd.protocol.step import protocol_step
from byzsgd.runtime.simulator import Simulator


def gradient_phase(model: str, workers: int, repeats: int) -> dict[str, float]:
    config = default_config()
    for key, value in {
        "num_workers": workers,
        "num_byzantine_workers": 0,
        "worker_to_server.attack": "none",
        "task.model": model,
    }.items():
        set_key(config, key, value)
    simulator = Simulator(config)
    task, pool = simulator.task, simulator.workers
    points = simulator.params[:1].expand(len(pool.ids), -1).contiguous()
    x, y = task.sample_batches(pool.ids, pool.generators, config.batch_size)

    def batched() -> None:
        task.gradients(points, x, y)

    one_worker = torch.func.grad_and_value(task.model.loss)

    def functional_loop() -> None:
        for i in range(len(pool.ids)):
            one_worker(points[i], x[i], y[i])

    def autograd_loop() -> None:
        for i in range(len(pool.ids)):
            point = points[i].clone().requires_grad_(True)
            loss = task.model.loss(point, x[i], y[i])
            torch.autograd.grad(loss, point)

    return interleaved(
        {"batched": batched, "functional": functional_loop, "autograd": autograd_loop},
        repeats=repeats,
    )


def whole_step(model: str, repeats: int) -> dict[str, float]:
    robust = default_config()
    set_key(robust, "task.model", model)
    plain = default_config()
    for key, value in {
        **PLAIN_AVERAGING,
        "task.model": model,
        "num_workers": robust.num_workers - robust.num_byzantine_workers,
    }.items():
        set_key(plain, key, value)
    simulators = {"robust": Simulator(robust), "plain": Simulator(plain)}

    def stepper(sim: Simulator):
        def step() -> None:
            result = protocol_step(
                sim.step_index,
                sim.params,
                plan=sim.plan,
                transport=sim.transport,
                oracle=sim.workers,
            )
            sim.params = result.params
            sim.step_index += 1

        return step

    return interleaved(
        {name: stepper(sim) for name, sim in simulators.items()}, repeats=repeats
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"medians of {args.repeats} interleaved repetitions"
    )
    print(
        "\n1. Gradient phase, 32 workers x batch 32 (goal: batched >= 4x faster)\n"
        "   against a per-worker loop of the same functional gradient, and of autograd"
    )
    print(
        f"{'model':<9}{'batched ms':>11}{'func loop':>11}{'ratio':>7}"
        f"{'autograd loop':>15}{'ratio':>7}"
    )
    for model in ("logistic", "mlp", "cnn"):
        t = gradient_phase(model, 32, args.repeats)
        print(
            f"{model:<9}{1e3 * t['batched']:>11.2f}{1e3 * t['functional']:>11.2f}"
            f"{t['functional'] / t['batched']:>6.1f}x{1e3 * t['autograd']:>15.2f}"
            f"{t['autograd'] / t['batched']:>6.1f}x"
        )
    print(
        "\n2. Whole step: default robust protocol (5 servers / 1 Byzantine, 10 workers"
        " / 3 Byzantine,\n   MDA, median, median gather) against plain averaged SGD"
        " (1 server, the 7 correct workers, mean)\n   (goal: ratio <= 1.3x)"
    )
    print(f"{'model':<8}{'robust ms':>11}{'plain ms':>10}{'ratio':>8}")
    for model in ("logistic", "mlp", "cnn"):
        t = whole_step(model, args.repeats)
        print(
            f"{model:<8}{1e3 * t['robust']:>11.2f}{1e3 * t['plain']:>10.2f}"
            f"{t['robust'] / t['plain']:>7.2f}x"
        )


if __name__ == "__main__":
    main()
