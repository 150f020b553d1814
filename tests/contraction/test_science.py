"""The known facts about the gather step, reproduced by the contraction study."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from byzsgd.contraction import adversaries, diameters, gather, run_study
from byzsgd.contraction.exact import exact_values
from byzsgd.contraction.spec import load

ADVERSARIES = ["crash", "fixed", "split", "worst_case", "balancing"]


def one_study(reps: int = 200, rounds_cap: int = 0, **axes) -> list[dict]:
    study = {"reps": reps, "rounds_cap": rounds_cap}
    return run_study(study | {"study": [{"name": "t", **axes}]}).rows


def two_clusters_cells(lam: float, policy: str = "random", quorum: str = "c-1"):
    study = {
        "correct": [4, 6, 10, 20],
        "f": 0,
        "quorum": quorum,
        "policy": policy,
        "lam": lam,
        "init": "two_clusters",
        "dim": 1,
    }
    return load({"study": [{"name": "t", **study}]})[0].cells()


@pytest.mark.parametrize("lam", [0.5, 0.25, 1.0])
def test_exact_mixing_value_matches_the_analysis(lam) -> None:
    # A receiver's median is either cluster with probability 1/2, independently.
    # For λ <= 1/2 the diameter shrinks by λ at each end only if every receiver
    # of that cluster moved: E[Δ'] = 1 - 2λ·2^(-c/2). For λ = 1 it shrinks to 0
    # only if every receiver picked the same cluster: E[Δ'] = 1 - 2·2^(-c).
    for cell in two_clusters_cells(lam):
        ratio, stuck = exact_values(cell)
        c = cell.correct
        if lam <= 0.5:
            expected = 1 - 2 * lam * 0.5 ** (c // 2)
            expected_stuck = (1 - 0.5 ** (c // 2)) ** 2
        else:
            expected = expected_stuck = 1 - 2 * 0.5**c
        assert ratio == pytest.approx(expected, rel=1e-12)
        assert stuck == pytest.approx(expected_stuck, rel=1e-12)


def test_mixing_conjecture_values_of_the_field() -> None:
    values = [round(exact_values(c)[0], 3) for c in two_clusters_cells(0.5)]
    assert values == [0.75, 0.875, 0.969, 0.999]


def test_default_mixing_study_interval_covers_the_exact_values() -> None:
    rows = run_study(only=["mixing"]).rows
    halves = [row for row in rows if row["lam"] == 0.5]
    assert [round(row["exact_ratio"], 3) for row in halves] == [
        0.75,
        0.875,
        0.969,
        0.999,
    ]
    for row in halves:
        assert row["ratio_low"] <= row["exact_ratio"] <= row["ratio_high"], row


@pytest.mark.parametrize("policy", ["random", "include_self", "all"])
def test_monte_carlo_estimate_agrees_with_the_exact_value(policy) -> None:
    # Many cells are compared at once, so at a 99.9 % level, not the 95 % shown.
    widen = 3.29 / 1.96
    rows = one_study(
        reps=3000,
        correct=[4, 6, 10, 20],
        quorum="c-1",
        policy=policy,
        lam=[0.5, 1.0],
        init="two_clusters",
        dim=1,
    )
    for row in rows:
        exact = row["exact_ratio"]
        assert exact is not None
        half = widen * (row["ratio_high"] - row["ratio_mean"])
        assert abs(row["ratio_mean"] - exact) <= half + 1e-3, row
        stuck = row["exact_p_no_contraction"]
        assert (
            abs(row["p_no_contraction"] - stuck)
            <= 3.29 * math.sqrt(stuck * (1 - stuck) / row["reps"]) + 1e-3
        ), row


def test_mixing_bound_is_flagged_where_it_fails() -> None:
    rows = one_study(
        reps=500, correct=[4, 6], quorum="c-1", lam=0.5, init="two_clusters", dim=1
    )
    flags = {row["correct"]: row["violates"] for row in rows}
    assert flags == {4: False, 6: True}
    assert all(row["violation_significant"] == row["violates"] for row in rows)


def test_l2_and_l1_expansion_instance() -> None:
    points = torch.eye(3, dtype=torch.float64)[None]
    subsets = torch.tensor([[[0, 1, 3], [1, 2, 3], [0, 2, 3]]])  # 3 is Byzantine
    step = partial(gather, rule="median", f=1, lam=1.0)
    for norm, expected in (("l2", math.sqrt(3)), ("l1", 3.0), ("linf", 1.0)):
        context = adversaries.Context(step, {"l1": 1, "l2": 2, "linf": math.inf}[norm])
        sent = adversaries.make("worst_case").messages(points, subsets, context)
        after = diameters(step(points, subsets, sent))[norm]
        assert float(after) == pytest.approx(expected, abs=1e-12)
    before = diameters(points)
    assert float(before["l2"]) == pytest.approx(math.sqrt(2))
    assert float(before["l1"]) == pytest.approx(2.0)


def test_expansion_instance_found_by_the_study() -> None:
    rows = one_study(
        correct=3,
        f=1,
        quorum=3,
        policy="first",
        init="unit_vectors",
        dim=3,
        norm=[1, 2, "inf"],
        adversary="worst_case",
    )
    worst = {row["norm"]: row["ratio_max"] for row in rows}
    assert worst["l2"] == pytest.approx(math.sqrt(3 / 2), abs=1e-12)
    assert worst["l1"] == pytest.approx(1.5, abs=1e-12)
    assert worst["linf"] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("policy", ["random", "include_self", "first", "all"])
def test_linf_never_expands_with_a_correct_majority(policy) -> None:
    # n = 9, f = 2, q = 5: at most 2 of 5 senders are Byzantine (the "all"
    # policy hears 9 with 2 Byzantine): a strict correct majority everywhere.
    rows = one_study(
        reps=150,
        correct=7,
        f=2,
        quorum=5,
        policy=policy,
        lam=[0.5, 1.0],
        init=["gaussian", "two_clusters", "unit_vectors"],
        dim=[7, 30],
        adversary=ADVERSARIES,
    )
    assert len(rows) == 2 * 3 * 2 * 5
    for row in rows:
        assert row["status"] == "ok"
        assert row["ratio_max"] <= 1 + 1e-12, row


def test_l2_expands_under_the_worst_case_in_high_dimension() -> None:
    (row,) = one_study(
        correct=7, f=3, policy="random", dim=100, norm=2, adversary="worst_case"
    )
    assert row["ratio_low"] > 1.0


@pytest.mark.parametrize("correct,f", [(3, 1), (7, 3), (10, 2), (5, 2)])
def test_trimmed_midpoint_halves_linf_under_full_reception(correct, f) -> None:
    rows = one_study(
        reps=100,
        correct=correct,
        f=f,
        policy="all",
        rule="trimmed_midpoint",
        init=["gaussian", "uniform", "two_clusters", "evenly_spaced"],
        dim=4,
        adversary=ADVERSARIES,
    )
    for row in rows:
        if row["adversary"] == "crash" and correct < 3 * f + 1:
            assert row["status"] == "trimmed_midpoint needs m >= 3f + 1"
            continue
        assert row["status"] == "ok"
        assert row["ratio_max"] <= 0.5 + 1e-12, row


@pytest.mark.parametrize("correct,f", [(4, 1), (6, 2), (10, 3), (8, 1)])
def test_median_holds_an_even_split_in_place(correct, f) -> None:
    rows = one_study(
        reps=50,
        correct=correct,
        f=f,
        policy="all",
        init="two_clusters",
        dim=3,
        adversary=["split", "worst_case", "balancing"],
        rounds_cap=20,
    )
    for row in rows:
        assert row["ratio_mean"] == 1.0 and row["ratio_max"] == 1.0, row
        assert row["reached"] == 0.0


def test_worst_case_beats_every_random_attack_against_the_median() -> None:
    generator = torch.Generator().manual_seed(3)
    points = torch.randn(1, 6, 4, generator=generator, dtype=torch.float64)
    subsets = torch.stack(
        [torch.randperm(9, generator=generator)[:5] for _ in range(6)]
    )[None]
    for lam in (1.0, 0.5):
        step = partial(gather, rule="median", f=2, lam=lam)
        for norm, p in (("l1", 1.0), ("l2", 2.0), ("linf", math.inf)):
            sent = adversaries.make("worst_case").messages(
                points, subsets, adversaries.Context(step, p)
            )
            worst = float(diameters(step(points, subsets, sent))[norm])
            for _ in range(300):
                scale = 3 * torch.rand(1, generator=generator)
                other = scale * torch.randn(1, 6, 4, generator=generator).double()
                reached = float(diameters(step(points, subsets, other))[norm])
                assert reached <= worst + 1e-12


def test_balancing_keeps_two_camps_for_two_hundred_rounds() -> None:
    (row,) = one_study(
        reps=50,
        correct=14,
        f=6,
        quorum=14,
        init="two_clusters",
        adversary="balancing",
        rounds_cap=200,
    )
    assert row["ratio_mean"] == 1.0
    assert row["reached"] == 0.0


def test_silent_adversary_and_contraction_under_random_subsets() -> None:
    (row,) = one_study(correct=9, f=2, quorum=7, init="gaussian", dim=5, rounds_cap=100)
    assert 0.0 <= row["ratio_max"] < 1.0
    assert row["rounds_median"] < 100


def test_margin_lets_krum_pick_a_byzantine_vector() -> None:
    # Inside the correct box nothing moves l-infinity out; a tenth of the range
    # beyond it, Krum can return the Byzantine vector itself.
    rows = one_study(
        reps=200,
        correct=7,
        f=1,
        quorum=5,
        rule=["krum", "median"],
        init="gaussian",
        dim=2,
        adversary="split",
    )
    assert all(row["ratio_max"] <= 1 + 1e-12 for row in rows)
    study = {"reps": 200, "rounds_cap": 0, "margin": 0.1}
    axes = {"correct": 7, "f": 1, "quorum": 5, "dim": 2, "adversary": "worst_case"}
    rows = run_study(
        study | {"study": [{"name": "t", "rule": ["krum", "median"], **axes}]}
    ).rows
    worst = {row["rule"]: row["ratio_max"] for row in rows}
    assert worst["krum"] == pytest.approx(1.1)
    assert worst["median"] <= 1 + 1e-12


def test_rounds_report_how_far_delta_shrank_by_the_cap() -> None:
    rows = one_study(
        reps=40,
        correct=14,
        f=6,
        quorum=14,
        init="two_clusters",
        lam=[1.0, 0.5],
        adversary="balancing",
        rounds_cap=60,
    )
    final = {row["lam"]: row["final_ratio_median"] for row in rows}
    assert final[1.0] == 1.0
    assert 0.0 < final[0.5] < 0.5
    assert all(row["rounds_run"] == 60 and row["reached"] == 0.0 for row in rows)
