"""What the harness measures: diameters, contraction ratios and test evaluations.

Only the harness, which knows who is correct, calls these; node code never does.
"""

from __future__ import annotations

import math

import torch

NORMS = {"l1": 1.0, "l2": 2.0, "linf": math.inf}


def diameters(points: torch.Tensor) -> dict[str, float]:
    """Delta_p = max over pairs of rows of ||x_i - x_j||_p, for p = 1, 2, inf."""
    if points.shape[0] < 2:
        return dict.fromkeys(NORMS, 0.0)
    x = points.double().unsqueeze(0)
    return {name: float(torch.cdist(x, x, p=p).max()) for name, p in NORMS.items()}


def contraction(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """rho_p = Delta_p(after) / Delta_p(before); 1 where Delta_p(before) is 0."""
    return {
        name: after[name] / before[name] if before[name] > 0 else 1.0 for name in before
    }


def prefixed(prefix: str, values: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{key}": value for key, value in values.items()}


def evaluation(task, params: torch.Tensor) -> dict[str, float]:
    """Test figures of each correct server (min / mean / max) and of their average."""
    models = torch.cat([params, params.mean(dim=0, keepdim=True)])
    results = task.evaluate(models)
    record: dict[str, float] = {}
    for name, values in results.items():
        per_server = values[:-1]
        record[f"test_{name}_min"] = float(per_server.min())
        record[f"test_{name}_mean"] = float(per_server.mean())
        record[f"test_{name}_max"] = float(per_server.max())
        record[f"test_{name}_average_model"] = float(values[-1])
    return record


def per_server(task, params: torch.Tensor, ids: tuple[int, ...]) -> dict[str, dict]:
    """Each correct server's test figures, keyed by metric then by server id."""
    results = task.evaluate(params)
    return {
        name: {str(i): float(v) for i, v in zip(ids, values, strict=True)}
        for name, values in results.items()
    }


def step_record(
    step: int,
    *,
    lr: float,
    losses: torch.Tensor,
    half: torch.Tensor,
    params: torch.Tensor,
    worker_points: torch.Tensor,
) -> dict[str, float]:
    """The per-step record of the correct (surviving) servers and workers."""
    before = diameters(half)
    after = diameters(params)
    return {
        "step": step,
        "lr": lr,
        "train_loss": float(losses.mean()) if losses.numel() else float("nan"),
        **prefixed("half_diameter", before),
        **prefixed("diameter", after),
        **prefixed("contraction", contraction(before, after)),
        **prefixed("worker_diameter", diameters(worker_points)),
    }
