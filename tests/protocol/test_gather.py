"""Properties of the gather step (SPEC facts on the median contraction)."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from byzsgd.metrics import diameters
from byzsgd.protocol.plan import ChannelPlan
from byzsgd.protocol.quorum import random_subsets
from byzsgd.protocol.step import gather


@st.composite
def instances(draw):
    correct = draw(st.integers(2, 9))
    byzantine = draw(st.integers(0, 4))
    n = correct + byzantine
    lowest = 2 * byzantine + 1
    quorum = draw(st.integers(min(lowest, n), n))
    dim = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    mixing = draw(st.sampled_from([1.0, 0.5, 0.25, 0.9]))
    return correct, byzantine, quorum, dim, seed, mixing


@settings(max_examples=100, deadline=None)
@given(instances())
def test_median_gather_never_expands_linf(instance) -> None:
    """With a correct majority in every subset, Δ∞ after the gather ≤ Δ∞ before."""
    correct, byzantine, quorum, dim, seed, mixing = instance
    gen = torch.Generator().manual_seed(seed)
    n = correct + byzantine
    half = torch.randn(correct, dim, generator=gen, dtype=torch.float64)
    generators = [torch.Generator().manual_seed(seed + i) for i in range(correct)]
    subsets = random_subsets(n, quorum, generators)
    # Senders 0..c-1 are correct; the others send arbitrary vectors per receiver.
    forged = 100 * torch.randn(correct, n, dim, generator=gen, dtype=torch.float64)
    table = torch.cat([half.expand(correct, correct, dim), forged[:, correct:]], dim=1)
    heard = table.gather(1, subsets.unsqueeze(-1).expand(-1, -1, dim))
    is_byzantine = subsets >= correct
    majority = (~is_byzantine).sum(1) > is_byzantine.sum(1)
    if not bool(majority.all()):
        return
    f = int(is_byzantine.sum(1).max())
    plan = ChannelPlan("server_to_server", n, quorum, "random", "median", f)
    after = gather(half, heard, plan, mixing)
    assert diameters(after)["linf"] <= diameters(half)["linf"] * (1 + 1e-9) + 1e-12
    low, high = half.min(0).values, half.max(0).values
    assert bool(((after >= low - 1e-9) & (after <= high + 1e-9)).all())


def test_l2_can_expand_under_median() -> None:
    """e1, e2, e3 and one Byzantine server, q = 3: Δ2 √2 → √3 and Δ1 2 → 3."""
    half = torch.eye(3, dtype=torch.float64)
    # Receiver i hears the two others and a Byzantine vector chosen for it.
    heard = torch.stack(
        [
            torch.stack([half[1], half[2], torch.tensor([0.0, 1.0, 1.0])]),
            torch.stack([half[0], half[2], torch.tensor([1.0, 0.0, 0.0])]),
            torch.stack([half[0], half[1], torch.tensor([0.0, 0.0, 0.0])]),
        ]
    ).double()
    plan = ChannelPlan("server_to_server", 4, 3, "random", "median", 1)
    after = gather(half, heard, plan, 1.0)
    before = diameters(half)
    assert abs(before["l2"] - 2**0.5) < 1e-12
    assert abs(before["l1"] - 2.0) < 1e-12
    assert abs(diameters(after)["l2"] - 3**0.5) < 1e-12
    assert abs(diameters(after)["l1"] - 3.0) < 1e-12
    assert diameters(after)["linf"] <= before["linf"]
