"""Byzantine servers of a contraction study, vectorised over repetitions.

Each adversary returns what the Byzantine servers send to each correct receiver,
(reps, receivers, d): every Byzantine server of a repetition sends a receiver the same
vector, which is all an adversary needs against coordinate-wise rules. They send
values at the edge of the correct servers' range (their coordinate-wise minimum or
maximum), or ``margin`` ranges beyond it: against a coordinate-wise median, trimmed
mean or trimmed midpoint any value past the edge pulls exactly as far as the edge.
Rules that may return a received vector itself (Krum, MDA) react to the margin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

# gather(points, subsets, byzantine) -> the receivers' new points (reps, c, d)
Gather = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


@dataclass
class Context:
    """What the adversary knows: everything, including every receiver's subset."""

    gather: Gather
    norm: float
    margin: float = 0.0


class Adversary:
    """Sends nothing: the Byzantine servers crashed (``crash``, ``none``)."""

    silent = True
    needs_norm = False

    def messages(
        self, points: torch.Tensor, subsets: torch.Tensor, context: Context
    ) -> torch.Tensor | None:
        return None


class Fixed(Adversary):
    """One vector to every receiver, no equivocation: the correct maximum."""

    silent = False

    def messages(self, points, subsets, context):
        return _high(points, context.margin).expand_as(points).clone()


class Split(Adversary):
    """Each receiver, per coordinate, is pulled to the side of the centre it is on."""

    silent = False

    def messages(self, points, subsets, context):
        centre = points.mean(dim=1, keepdim=True)
        return torch.where(
            points >= centre,
            _high(points, context.margin),
            _low(points, context.margin),
        )


class Balancing(Adversary):
    """Keeps two camps of equal size apart, round after round, seeing the subsets.

    In the first round it fixes an orientation o per coordinate: the sign of
    mean(second half) − mean(first half) of the receivers. Every round it computes
    where each receiver would land with the Byzantine values at the high edge and
    at the low edge, ranks the receivers by the midpoint of the two along o (ties
    by where they are now), and pulls the lower half down and the upper half up.
    The camps are rebuilt from what the subsets allow, so a receiver that can only
    be pulled one way never empties a camp.
    """

    silent = False

    def __init__(self) -> None:
        self.orientation: torch.Tensor | None = None

    def messages(self, points, subsets, context):
        receivers = points.shape[1]
        half = (receivers + 1) // 2
        if self.orientation is None:
            gap = points[:, half:].mean(dim=1) - points[:, :half].mean(dim=1)
            self.orientation = torch.where(gap >= 0, 1.0, -1.0).to(points.dtype)
        o = self.orientation[:, None, :]
        high = _high(o * points, context.margin) * o  # the ends along o
        low = _low(o * points, context.margin) * o
        high, low = high.expand_as(points), low.expand_as(points)
        reach = context.gather(points, subsets, high) + context.gather(
            points, subsets, low
        )
        now = (points * o).sum(dim=-1)
        order = now.argsort(dim=1, stable=True)
        preference = (reach * o).sum(dim=-1).gather(1, order)
        ranked = order.gather(1, preference.argsort(dim=1, stable=True))
        up = torch.zeros_like(now, dtype=torch.bool)
        up.scatter_(1, ranked[:, receivers // 2 :], True)
        return torch.where(up[..., None], high, low)


class WorstCase(Adversary):
    """The exact worst case for the diameter against monotone coordinate-wise rules.

    Given every receiver's subset, it computes each receiver's new point with the
    Byzantine values at the high edge and at the low edge. Against a rule that is
    coordinate-wise and monotone (median, trimmed mean, trimmed midpoint, with any
    mixing λ) the receiver can be placed anywhere in the box between the two, one
    coordinate independently of the others. The widest pair of boxes, in the
    study's norm, gives the largest diameter any adversary can reach this round:
    one receiver of the pair is sent to one corner, the other to the opposite
    corner, and every other receiver is pulled, coordinate by coordinate, to the
    side of the correct centre it is on (as ``split`` does). Against other
    rules the same messages are a strong heuristic, not a proven worst case.
    """

    silent = False
    needs_norm = True

    def messages(self, points, subsets, context):
        high, low = (
            _high(points, context.margin).expand_as(points),
            _low(points, context.margin).expand_as(points),
        )
        to_high = context.gather(points, subsets, high)
        to_low = context.gather(points, subsets, low)
        first, second, first_up = _widest_pair(points, to_high, to_low, context.norm)

        centre = points.mean(dim=1, keepdim=True)
        up = points >= centre  # everyone else stays on the side it leans to
        reps = torch.arange(points.shape[0])
        up[reps, first] = first_up
        up[reps, second] = ~first_up
        return torch.where(up, high, low)


def _widest_pair(
    points: torch.Tensor, to_high: torch.Tensor, to_low: torch.Tensor, norm: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per repetition the receivers (a, b) whose reachable boxes lie farthest apart.

    Returns a and b (reps,) and, per coordinate, whether a goes high (reps, d).
    Among pairs equally far apart it takes the one farthest apart now, and where
    either orientation of a coordinate is as good it keeps a on its own side, so
    that later rounds start from the same two camps.
    """
    a_high = to_high[:, :, None, :] - to_low[:, None, :, :]  # a high, b low
    a_low = a_high.transpose(1, 2)  # b high, a low
    gaps = torch.maximum(a_high, a_low)
    spread = torch.linalg.vector_norm(gaps, ord=norm, dim=-1)
    receivers = spread.shape[1]
    spread.diagonal(dim1=1, dim2=2).fill_(-1.0)
    best = spread.flatten(1).amax(dim=1)[:, None, None]
    tied = spread >= best - 1e-12 * best.abs().clamp_min(1.0)
    apart = torch.cdist(points, points, p=norm)
    choice = torch.where(tied, apart, -1.0).flatten(1).argmax(dim=1)
    first, second = choice // receivers, choice % receivers

    reps = torch.arange(to_high.shape[0])
    up, down = a_high[reps, first, second], a_low[reps, first, second]
    above = points[reps, first] >= points[reps, second]
    first_up = torch.where((up - down).abs() <= 1e-12, above, up > down)
    return first, second, first_up


def _high(points: torch.Tensor, margin: float) -> torch.Tensor:
    """The correct maximum per coordinate, ``margin`` ranges beyond it."""
    top, bottom = points.amax(dim=1, keepdim=True), points.amin(dim=1, keepdim=True)
    return top + margin * (top - bottom)


def _low(points: torch.Tensor, margin: float) -> torch.Tensor:
    """The correct minimum per coordinate, ``margin`` ranges below it."""
    top, bottom = points.amax(dim=1, keepdim=True), points.amin(dim=1, keepdim=True)
    return bottom - margin * (top - bottom)


_ADVERSARIES: dict[str, type[Adversary]] = {
    "none": Adversary,
    "crash": Adversary,
    "fixed": Fixed,
    "split": Split,
    "balancing": Balancing,
    "worst_case": WorstCase,
}


def make(name: str) -> Adversary:
    """A fresh adversary (stateful ones start over)."""
    if name not in _ADVERSARIES:
        raise ValueError(
            f"unknown adversary {name!r}; expected one of: {', '.join(_ADVERSARIES)}"
        )
    return _ADVERSARIES[name]()
