"""One gather round, and many, for R repetitions at once.

The correct servers of every repetition are a tensor (reps, c, d). Senders are
numbered 0..c−1 (correct) and c..n−1 (Byzantine); each receiver's subset is a row
of sender numbers, drawn for all repetitions and receivers in one call. The gather
itself is the protocol's: :func:`byzsgd.aggregators.mix` over what each receiver got.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from functools import partial

import torch

from byzsgd import aggregators
from byzsgd.contraction import adversaries
from byzsgd.contraction.initial import initial_points
from byzsgd.contraction.spec import NORMS, Cell


def draw_subsets(
    reps: int,
    correct: int,
    live: int,
    q: int,
    policy: str,
    generator: torch.Generator,
) -> torch.Tensor:
    """Each receiver's q senders among the ``live`` ones, (reps, correct, q).

    ``random``: q distinct senders uniformly; ``include_self``: the receiver and
    q − 1 others; ``first``: the Byzantine senders' replies arrive first, then
    correct ones at random; ``all``: every live sender.
    """
    if policy == "all":
        return torch.arange(live).expand(reps, correct, live).clone()
    keys = torch.rand(reps, correct, live, generator=generator)
    if policy == "include_self":
        keys[:, torch.arange(correct), torch.arange(correct)] = -1.0
    elif policy == "first":
        keys[..., correct:] = -1.0
    return keys.argsort(dim=-1)[..., :q]


def gather(
    points: torch.Tensor,
    subsets: torch.Tensor,
    byzantine: torch.Tensor | None,
    *,
    rule: str,
    f: int,
    lam: float,
) -> torch.Tensor:
    """Every receiver's new point after one gather, (reps, c, d).

    ``byzantine`` (reps, c, d) is what the Byzantine senders send each receiver;
    it fills the subset slots numbered c and above.
    """
    reps, correct, _ = points.shape
    rows = torch.arange(reps)[:, None, None]
    received = points[rows, subsets.clamp(max=correct - 1)]
    if byzantine is not None:
        from_byzantine = (subsets >= correct)[..., None]
        received = torch.where(from_byzantine, byzantine[:, :, None, :], received)
    return aggregators.mix(points, received, rule=rule, f=f, mixing=lam)


def diameters(points: torch.Tensor) -> dict[str, torch.Tensor]:
    """Δ_1, Δ_2 and Δ_∞ of every repetition's points, each (reps,)."""
    return {
        name: torch.cdist(points, points, p=p).amax(dim=(-2, -1))
        for name, p in NORMS.items()
    }


@dataclass
class Measurement:
    """Per repetition, for one norm: what one round and many rounds did."""

    ratio: torch.Tensor  # Δ'/Δ after one round
    pair_ratio: torch.Tensor  # mean over correct pairs of d'(a, b) / d(a, b)
    rounds: torch.Tensor  # rounds to shrink Δ by ``shrink``; inf if not by the cap
    final: torch.Tensor  # Δ after the last round run over Δ at the start
    rounds_run: int


def measure(cell: Cell, norms: list[str]) -> dict[str, Measurement]:
    """Run a cell: one gather round, then rounds until Δ shrinks or the cap.

    The adversary aims at the first of ``norms`` (only ``worst_case`` cares);
    every norm in ``norms`` is measured on the same runs.
    """
    adversary = adversaries.make(cell.adversary)
    generator = torch.Generator().manual_seed(_seed(cell, adversary.needs_norm))
    start = initial_points(cell.init, cell.reps, cell.correct, cell.dim, generator)
    step = partial(gather, rule=cell.rule, f=cell.f, lam=cell.lam)
    context = adversaries.Context(step, NORMS[norms[0]], cell.margin)

    def round_(points: torch.Tensor) -> torch.Tensor:
        subsets = draw_subsets(
            cell.reps, cell.correct, cell.live, cell.q, cell.policy, generator
        )
        sent = None if cell.silent else adversary.messages(points, subsets, context)
        return step(points, subsets, sent)

    first = round_(start)
    initial, after = diameters(start), diameters(first)
    results = {}
    for name in norms:
        results[name] = Measurement(
            ratio=after[name] / initial[name],
            pair_ratio=_pair_ratio(start, first, NORMS[name]),
            rounds=torch.full((cell.reps,), math.inf, dtype=torch.float64),
            final=after[name] / initial[name],
            rounds_run=1,
        )
        _mark(results[name].rounds, after[name] <= initial[name] / cell.shrink, 1)

    points, done = first, 1
    while done < cell.rounds_cap and not _all_reached(results):
        points, done = round_(points), done + 1
        now = diameters(points)
        for name in norms:
            _mark(results[name].rounds, now[name] <= initial[name] / cell.shrink, done)
            results[name].final = now[name] / initial[name]
            results[name].rounds_run = done
    return results


def _mark(rounds: torch.Tensor, reached: torch.Tensor, count: int) -> None:
    rounds[reached & torch.isinf(rounds)] = float(count)


def _all_reached(results: dict[str, Measurement]) -> bool:
    return all(bool(torch.isfinite(m.rounds).all()) for m in results.values())


def _pair_ratio(before: torch.Tensor, after: torch.Tensor, p: float) -> torch.Tensor:
    old = torch.cdist(before, before, p=p)
    new = torch.cdist(after, after, p=p)
    apart = old > 0
    ratios = torch.where(apart, new / old.clamp_min(1e-300), 0.0)
    return ratios.sum(dim=(-2, -1)) / apart.sum(dim=(-2, -1)).clamp_min(1)


def _seed(cell: Cell, with_norm: bool) -> int:
    """A seed from the study seed and the cell: the same cell, the same draws.

    The norm is part of it only where the adversary aims at a norm, so cells that
    differ only in the norm they report share their runs.
    """
    key = cell.key(exclude=() if with_norm else ("norm",))
    return (cell.seed * 1_000_003 + zlib.crc32(key.encode())) % (2**63)
