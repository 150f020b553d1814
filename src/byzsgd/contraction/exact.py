"""Exact E[Δ'/Δ] and P(no contraction) for two clusters and no Byzantine message.

With the correct servers at two points a and b and only correct messages, every
coordinate-wise rule that commutes with affine maps of the line (median, trimmed mean,
trimmed midpoint, mean) returns a point of the segment [a, b]: a + t·(b − a), where t
depends only on how many of the q values a receiver got sit at a. The study reduces
to the line, in every norm alike: a receiver of the first cluster ends at
λ·t(k), one of the second at (1 − λ) + λ·t(k), with k hypergeometric and the
receivers independent. The expected diameter is E[max] − E[min] of independent
discrete variables, which is exact.
"""

from __future__ import annotations

import math

import torch

from byzsgd import aggregators
from byzsgd.contraction.initial import first_cluster
from byzsgd.contraction.spec import Cell

EXACT_RULES = frozenset({"median", "trimmed_mean", "trimmed_midpoint", "mean"})
_TOLERANCE = 1e-12

Distribution = dict[float, float]  # value -> probability


def applies(cell: Cell) -> bool:
    """Whether the cell has an exact value here."""
    return (
        cell.status == "ok"
        and cell.init == "two_clusters"
        and cell.silent
        and cell.rule in EXACT_RULES
        and cell.correct >= 2
    )


def exact_values(cell: Cell) -> tuple[float, float]:
    """(E[Δ'/Δ], P(Δ' ≥ Δ)) after one gather round, exactly."""
    if not applies(cell):
        raise ValueError(f"no exact value for cell {cell.key()}")
    size_a = first_cluster(cell.correct)
    size_b = cell.correct - size_a
    outcome = _rule_outcomes(cell)
    first = _receiver(cell, size_a, own=0.0, in_first=True, outcome=outcome)
    second = _receiver(cell, size_a, own=1.0, in_first=False, outcome=outcome)
    groups = [(first, size_a), (second, size_b)]

    expected = _expected_max(groups) + _expected_max(_reflect(groups))
    below_one = _product(groups, lambda v: v < 1.0 - _TOLERANCE)
    above_zero = _product(groups, lambda v: v > _TOLERANCE)
    inside = _product(groups, lambda v: _TOLERANCE < v < 1.0 - _TOLERANCE)
    no_contraction = 1.0 - below_one - above_zero + inside
    return expected, min(max(no_contraction, 0.0), 1.0)


def _rule_outcomes(cell: Cell) -> list[float]:
    """t(k) for k = 0..q values at the first cluster (at 0), the others at 1."""
    rule = aggregators.get(cell.rule)
    values = []
    for k in range(cell.q + 1):
        column = torch.ones(cell.q, 1, dtype=torch.float64)
        column[:k] = 0.0
        values.append(float(rule(column, f=cell.f)[0]))
    return values


def _receiver(
    cell: Cell, size_a: int, *, own: float, in_first: bool, outcome: list[float]
) -> Distribution:
    """Where one receiver ends: (1 − λ)·own + λ·t(k), over the law of k."""
    law = _count_law(cell, size_a, in_first)
    ends: Distribution = {}
    for k, p in law.items():
        value = (1.0 - cell.lam) * own + cell.lam * outcome[k]
        ends[value] = ends.get(value, 0.0) + p
    return ends


def _count_law(cell: Cell, size_a: int, in_first: bool) -> dict[int, float]:
    """The law of k, how many of the receiver's q senders sit in the first cluster."""
    c, q = cell.correct, cell.q
    if cell.policy == "all":
        return {size_a: 1.0}
    if cell.policy == "include_self":
        others_a = size_a - 1 if in_first else size_a
        law = _hypergeometric(c - 1, others_a, q - 1)
        return {k + int(in_first): p for k, p in law.items()}
    return _hypergeometric(c, size_a, q)


def _hypergeometric(population: int, marked: int, draws: int) -> dict[int, float]:
    total = math.comb(population, draws)
    return {
        k: math.comb(marked, k) * math.comb(population - marked, draws - k) / total
        for k in range(max(0, draws - (population - marked)), min(marked, draws) + 1)
    }


def _expected_max(groups: list[tuple[Distribution, int]]) -> float:
    """E[max] of independent receivers: ``count`` copies of each distribution."""
    support = sorted({v for law, _ in groups for v in law})
    expected, below = 0.0, 0.0
    for value in support:
        at_most = _product(groups, lambda v, value=value: v <= value)
        expected += value * (at_most - below)
        below = at_most
    return expected


def _reflect(groups: list[tuple[Distribution, int]]) -> list[tuple[Distribution, int]]:
    """The receivers' values negated: E[max(−X)] = −E[min X]."""
    return [({-v: p for v, p in law.items()}, count) for law, count in groups]


def _product(groups: list[tuple[Distribution, int]], keep) -> float:
    """P(every receiver's value satisfies ``keep``)."""
    result = 1.0
    for law, count in groups:
        result *= sum(p for v, p in law.items() if keep(v)) ** count
    return result
