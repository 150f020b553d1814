"""Slow, float64, loop-based definitions of every rule, for differential tests."""

from __future__ import annotations

import itertools
import math

import torch


def _columns(x: torch.Tensor) -> list[list[float]]:
    return [sorted(c.tolist()) for c in x.T]


def _median(values: list[float]) -> float:
    m = len(values)
    mid = m // 2
    return values[mid] if m % 2 else 0.5 * (values[mid - 1] + values[mid])


def _closest_mean(values: list[float], count: int) -> float:
    centre = _median(values)
    chosen = sorted(values, key=lambda v: (abs(v - centre), v))[:count]
    return sum(chosen) / count


def _sq(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b) ** 2).sum())


def _krum_scores(x: torch.Tensor, f: int, alive: list[int]) -> dict[int, float]:
    neighbours = max(len(alive) - f - 2, 1)
    scores = {}
    for i in alive:
        d = sorted(_sq(x[i], x[j]) for j in alive if j != i)
        scores[i] = sum(d[:neighbours])
    return scores


def tie_keys(x: torch.Tensor) -> torch.Tensor:
    """Each input's summed squared distance to all inputs (the rules' tie key)."""
    return torch.tensor([sum(_sq(a, b) for b in x) for a in x], dtype=torch.float64)


def _krum_order(x: torch.Tensor, f: int) -> list[int]:
    scores = _krum_scores(x, f, list(range(x.shape[0])))
    keys = tie_keys(x).tolist()
    return sorted(scores, key=lambda i: (scores[i], keys[i]))


def _weiszfeld(x: torch.Tensor) -> torch.Tensor:
    z = x.mean(0)
    for _ in range(5000):
        d = (x - z).norm(dim=1).clamp_min(1e-12)
        new = (x / d[:, None]).sum(0) / (1 / d).sum()
        if float((new - z).norm()) < 1e-13:
            break
        z = new
    return z


def reference(name: str, x: torch.Tensor, f: int, **options) -> torch.Tensor:
    """The rule ``name`` on one input (m, d), in float64."""
    x = x.double()
    m = x.shape[0]
    if "+" in name:
        *steps, last = name.split("+")
        for step in steps:
            x = PRE[step](x, f, **options)
        return reference(last, x, f)
    if name == "mean":
        return x.mean(0)
    if name == "median":
        pick = (lambda v: v[(len(v) - 1) // 2]) if options.get("lower") else _median
        return torch.tensor([pick(c) for c in _columns(x)], dtype=torch.float64)
    if name == "trimmed_mean":
        return torch.tensor(
            [sum(c[f : m - f]) / (m - 2 * f) for c in _columns(x)], dtype=torch.float64
        )
    if name == "meamed":
        return torch.tensor(
            [_closest_mean(c, m - f) for c in _columns(x)], dtype=torch.float64
        )
    if name == "trimmed_midpoint":
        return torch.tensor(
            [0.5 * (c[f] + c[m - 1 - f]) for c in _columns(x)], dtype=torch.float64
        )
    if name == "krum":
        return x[_krum_order(x, f)[0]]
    if name == "multi_krum":
        count = options.get("num_selected") or m - f
        return x[_krum_order(x, f)[:count]].mean(0)
    if name == "bulyan":
        if f == 0:
            return x.mean(0)
        alive, selected = list(range(m)), []
        keys = tie_keys(x).tolist()
        for _ in range(m - 2 * f):
            scores = _krum_scores(x, f, alive)
            best = min(alive, key=lambda i: (scores[i], keys[i]))
            selected.append(best)
            alive.remove(best)
        chosen = x[sorted(selected)]
        return torch.tensor(
            [_closest_mean(c, m - 4 * f) for c in _columns(chosen)], dtype=torch.float64
        )
    if name == "mda":
        best, kept = None, None
        keys = tie_keys(x).tolist()
        order = sorted(range(m), key=lambda i: keys[i])
        for subset in itertools.combinations(order, m - f):
            diameter = max(
                (_sq(x[i], x[j]) for i in subset for j in subset), default=0.0
            )
            if best is None or diameter < best:
                best, kept = diameter, subset
        return x[list(kept)].mean(0)
    if name == "geometric_median":
        return _weiszfeld(x)
    if name == "centered_clipping":
        v = torch.tensor([_median(c) for c in _columns(x)], dtype=torch.float64)
        tau = options.get("radius")
        for _ in range(options.get("iterations", 3)):
            diffs = x - v
            norms = diffs.norm(dim=1)
            if tau is None:
                tau = float(norms.median())
            scale = torch.clamp(tau / norms.clamp_min(1e-300), max=1.0)
            v = v + (diffs * scale[:, None]).mean(0)
        return v
    raise AssertionError(f"no reference for {name}")


def _nnm(x: torch.Tensor, f: int) -> torch.Tensor:
    m = x.shape[0]
    rows = []
    for i in range(m):
        order = sorted(range(m), key=lambda j: (_sq(x[i], x[j]), j))[: m - f]
        rows.append(x[order].mean(0))
    return torch.stack(rows)


def _arc(x: torch.Tensor, f: int) -> torch.Tensor:
    m = x.shape[0]
    k = math.floor(2 * (f / m) * (m - f))
    if k == 0:
        return x.clone()
    norms = x.norm(dim=1)
    threshold = float(sorted(norms.tolist(), reverse=True)[k])
    return torch.stack(
        [
            v * min(1.0, threshold / float(n)) if n > 0 else v
            for v, n in zip(x, norms, strict=True)
        ]
    )


PRE = {"nnm": _nnm, "arc": _arc}
