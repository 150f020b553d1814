"""Byzantine servers: parameters sent to workers and to the other servers."""

from __future__ import annotations

from collections import deque

import torch

from byzsgd.attacks.base import SERVER_CHANNELS, Attack, AttackView, halves, register


def _centre_and_width(params: torch.Tensor, floor: float) -> tuple:
    centre = params.mean(dim=0)
    width = (params.amax(dim=0) - params.amin(dim=0)).clamp_min(floor)
    return centre, width


@register
class Stale(Attack):
    """Replay the correct parameters of ``lag`` steps ago (their mean), to everyone.

    Until ``lag`` steps have passed it replays the oldest it has seen.
    """

    name = "stale"
    channels = SERVER_CHANNELS

    def __init__(self, lag: int = 10) -> None:
        if isinstance(lag, bool) or not isinstance(lag, int) or lag < 1:
            raise ValueError(f"stale: lag must be an integer >= 1, got {lag!r}")
        self.lag = lag
        self.history: deque[torch.Tensor] = deque(maxlen=lag + 1)

    def messages(self, view: AttackView) -> torch.Tensor:
        self.history.append(view.correct_messages.mean(dim=0).clone())
        return view.broadcast(self.history[0])


@register
class Split(Attack):
    """Per receiver and per coordinate, push away from the correct servers' centre.

    The centre c is the correct parameters' coordinate-wise mean and w their
    coordinate-wise range (at least ``floor``). A receiver with a position p (a server)
    gets c + scale * w * sign(p - c): every coordinate pulled to the side the receiver
    already leans to, which slows the contraction of the gather. A receiver without a
    position (a worker) gets c + scale * w * s_r * u, with u a fixed random sign
    pattern and s_r = +1 for the first half of the receivers and -1 for the others.
    """

    name = "split"
    channels = SERVER_CHANNELS
    equivocates = True

    def __init__(self, scale: float = 1.0, floor: float = 1e-3) -> None:
        self.scale = scale
        self.floor = floor
        self.pattern: torch.Tensor | None = None

    def messages(self, view: AttackView) -> torch.Tensor:
        centre, width = _centre_and_width(view.correct_messages, self.floor)
        if view.receiver_positions is not None:
            side = torch.sign(view.receiver_positions - centre)
        else:
            side = halves(view.num_receivers) * self._pattern(view)
        return view.per_receiver(centre + self.scale * width * side)

    def _pattern(self, view: AttackView) -> torch.Tensor:
        if self.pattern is None or self.pattern.shape[0] != view.dim:
            bits = torch.randint(0, 2, (view.dim,), generator=view.generator)
            self.pattern = bits.to(view.correct_messages.dtype) * 2 - 1
        return self.pattern


@register
class Balancing(Split):
    """Keep two fixed camps of receivers apart, round after round.

    The first half of the receivers is pushed to +u, the second to -u, in every
    coordinate (u a fixed random sign pattern), by c + scale * w * (+-u). Unlike
    ``split`` the camps never depend on where the receivers are, so the adversary
    keeps re-opening the same two-camp split after every gather.
    """

    name = "balancing"

    def messages(self, view: AttackView) -> torch.Tensor:
        centre, width = _centre_and_width(view.correct_messages, self.floor)
        side = halves(view.num_receivers) * self._pattern(view)
        return view.per_receiver(centre + self.scale * width * side)


def median_interval(
    correct: torch.Tensor, byzantine: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The lowest and highest coordinate-wise (true) median a receiver can reach.

    ``correct`` (c, d) are the correct values it uses, ``byzantine`` how many
    arbitrary values join them; all of these at -inf give the low end, at +inf the
    high end.
    """
    c = correct.shape[0]
    q = c + byzantine
    ordered = correct.sort(dim=0).values
    ranks = [(q - 1) // 2] if q % 2 else [q // 2 - 1, q // 2]
    low = torch.stack([ordered[max(k - byzantine, 0)] for k in ranks]).mean(0)
    high = torch.stack([ordered[min(k, c - 1)] for k in ranks]).mean(0)
    return low, high


@register
class WorstCaseMedian(Attack):
    """The exact worst case for the diameter after a coordinate-wise median.

    For each receiver the adversary computes, from the correct values it uses (its
    subset, when known) and its number of Byzantine slots, the interval its median
    can be pushed to in every coordinate (:func:`median_interval`). It takes the pair
    of receivers whose intervals lie farthest apart (in l2, each coordinate oriented
    the better way) and sends one of them values beyond the correct range on one
    side and the other on the other side, coordinate by coordinate; every other
    receiver follows the nearer camp. Exact against ``median`` for that pair; a
    strong heuristic against other rules.
    """

    name = "worst_case_median"
    channels = SERVER_CHANNELS
    equivocates = True

    def __init__(self, margin: float = 1.0) -> None:
        self.margin = margin

    def messages(self, view: AttackView) -> torch.Tensor:
        intervals = [
            median_interval(heard, slots)
            for heard, slots in zip(
                view.heard_correct(), view.byzantine_slots(), strict=True
            )
        ]
        low = torch.stack([lo for lo, _ in intervals])
        high = torch.stack([hi for _, hi in intervals])
        first, second, up = _farthest_pair(low, high)
        sides = torch.empty(view.num_receivers, view.dim)
        sides[first], sides[second] = up, -up
        for r in range(view.num_receivers):
            if r not in (first, second):
                sides[r] = up if r < view.num_receivers / 2 else -up
        params = view.correct_messages
        centre = params.mean(dim=0)
        reach = (params.amax(0) - params.amin(0)) + self.margin * (1 + centre.abs())
        return view.per_receiver(centre + sides * reach)


def _farthest_pair(
    low: torch.Tensor, high: torch.Tensor
) -> tuple[int, int, torch.Tensor]:
    """Receivers (a, b) and signs u (d,): a at its high end where u = +1, else low."""
    best, pair, up = -1.0, (0, min(1, low.shape[0] - 1)), torch.ones(low.shape[1])
    for a in range(low.shape[0]):
        a_high = high[a] - low  # a high, others low
        a_low = high - low[a]  # a low, others high
        gaps = torch.maximum(a_high, a_low)
        scores = (gaps**2).sum(dim=1)
        scores[a] = -1.0
        b = int(scores.argmax())
        if float(scores[b]) > best:
            best, pair = float(scores[b]), (a, b)
            up = torch.where(a_high[b] >= a_low[b], 1.0, -1.0)
    return pair[0], pair[1], up
