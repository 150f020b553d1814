"""Every registered rule against the float64 references, and its hardening.

The registry drives the matrix: a new rule is tested as soon as it is registered.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from byzsgd import aggregators
from tests.aggregators.reference import reference

RULES = aggregators.names()
COMPOSITES = ["nnm+median", "nnm+krum", "arc+trimmed_mean", "arc+nnm+mda"]
DETERMINISTIC = RULES + COMPOSITES
TOLERANCE = {"geometric_median": 1e-4}


def largest_f(name: str, m: int) -> int:
    """The largest f the rule's condition allows for m inputs."""
    cond = aggregators.condition(name)
    return max(f for f in range(m) if cond.holds(m, f))


def sizes(name: str) -> list[int]:
    smallest = min(m for m in range(1, 20) if aggregators.condition(name).holds(m, 0))
    return sorted({smallest, 5, 7, 8, 11})


def gaussian(m: int, d: int, seed: int, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(m, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_matches_the_float64_reference(name: str) -> None:
    for m in sizes(name.split("+")[-1]):
        for f in sorted({0, largest_f(name, m)}):
            x = gaussian(m, 6, seed=m + 10 * f)
            x[:f] += 25.0  # the f candidates for Byzantine inputs are far away
            out = aggregators.get(name)(x, f=f)
            assert out.dtype == torch.float32
            expected = reference(name, x, f)
            atol = TOLERANCE.get(name, 1e-5)
            assert torch.allclose(out.double(), expected, atol=atol), (m, f)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("median", {"lower": True}),
        ("multi_krum", {"num_selected": 2}),
        ("multi_krum", {"num_selected": 1}),
        ("centered_clipping", {"radius": 0.5, "iterations": 5}),
    ],
)
def test_options_match_the_reference(name: str, options: dict) -> None:
    x = gaussian(8, 5, seed=3)
    out = aggregators.get(name)(x, f=2, **options)
    assert torch.allclose(out.double(), reference(name, x, 2, **options), atol=1e-5)


def test_multi_krum_with_one_selected_is_krum() -> None:
    x = gaussian(9, 4, seed=5)
    assert torch.equal(
        aggregators.multi_krum(x, f=2, num_selected=1), aggregators.krum(x, f=2)
    )


def test_mda_is_exact_where_enumeration_is_infeasible_for_others() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, 20, generator=gen)
    x[:12] = 3.0 + 0.1 * torch.randn(12, 20, generator=gen)
    out = aggregators.mda(x, f=12)
    assert torch.allclose(out, x[12:].mean(0), atol=1e-5)


@pytest.mark.parametrize("m", [6, 7, 9, 10])
def test_mda_matches_enumeration_on_random_clusters(m: int) -> None:
    for seed in range(20):
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(m, 3, generator=gen) * torch.rand(m, 1, generator=gen) * 3
        f = largest_f("mda", m)
        out = aggregators.mda(x, f=f)
        assert torch.allclose(out.double(), reference("mda", x, f), atol=1e-5), seed


@pytest.mark.parametrize("name", [*DETERMINISTIC, "bucketing+median"])
def test_batch_dimensions_equal_a_loop(name: str) -> None:
    x = torch.randn(3, 2, 9, 5)
    f = largest_f(name, 9) if name != "bucketing+median" else 2
    rule = aggregators.get(name)
    options = {}
    if name.startswith("bucketing"):
        options = {"generator": torch.Generator().manual_seed(1)}
    out = rule(x, f=f, **options)
    assert out.shape == (3, 2, 5)
    if options:
        options = {"generator": torch.Generator().manual_seed(1)}
    for i, j in itertools.product(range(3), range(2)):
        assert torch.allclose(out[i, j], rule(x[i, j], f=f, **options), atol=1e-5)


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_inputs_are_not_modified_and_results_repeat(name: str) -> None:
    x = gaussian(9, 4, seed=2)
    x[2, 1] = torch.nan
    copy = x.clone()
    rule = aggregators.get(name)
    f = max(largest_f(name, 9), 1) if name != "mean" else 0
    if name == "mean":
        x[2, 1] = copy[2, 1] = 0.0
    first = rule(x, f=f)
    assert torch.equal(torch.isnan(x), torch.isnan(copy))
    assert torch.equal(x.nan_to_num(), copy.nan_to_num())
    assert torch.equal(first, rule(x, f=f))


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_float64_in_float64_out(name: str) -> None:
    x = gaussian(9, 4, seed=4, dtype=torch.float64)
    out = aggregators.get(name)(x, f=largest_f(name, 9))
    assert out.dtype == torch.float64


@pytest.mark.parametrize("name", [n for n in DETERMINISTIC if n != "mean"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nonfinite_vectors_are_completed_never_selected(name: str, bad: float) -> None:
    x = gaussian(9, 5, seed=1)
    f = largest_f(name, 9)
    x[:f, 2] = bad
    out = aggregators.get(name)(x, f=f)
    assert torch.isfinite(out).all()
    completed = aggregators.complete_nonfinite(x)
    assert torch.allclose(out, aggregators.get(name)(completed, f=f))
    fill = reference("median", x[f:], 0).float()
    assert torch.allclose(completed[:f], fill.expand(f, 5))


def test_completion_is_the_median_of_the_finite_vectors() -> None:
    x = torch.tensor([[1.0, 2.0], [3.0, 6.0], [float("nan"), 0.0], [5.0, 4.0]])
    out = aggregators.complete_nonfinite(x)
    assert torch.equal(out[2], torch.tensor([3.0, 4.0]))
    assert torch.equal(out[[0, 1, 3]], x[[0, 1, 3]])
    everything_bad = torch.full((3, 2), float("inf"))
    assert torch.equal(
        aggregators.complete_nonfinite(everything_bad), torch.zeros(3, 2)
    )


@pytest.mark.parametrize("name", ["krum", "multi_krum", "mda", "bulyan", "nnm+krum"])
def test_distances_stay_exact_for_large_close_vectors(name: str) -> None:
    """Magnitude 1e4, differences 0.1, float32: the selection matches float64."""
    gen = torch.Generator().manual_seed(7)
    x = 1e4 + 0.1 * torch.randn(11, 500, generator=gen, dtype=torch.float64)
    x[:2] += 0.03  # two slightly shifted inputs
    x32 = x.float()
    f = min(largest_f(name, 11), 2)
    expected = reference(name, x32, f)
    assert torch.allclose(aggregators.get(name)(x32, f=f).double(), expected, atol=2e-3)


def test_gram_shortcut_alone_would_fail_the_distance_test() -> None:
    """The float32 Gram product of raw inputs loses such distances entirely."""
    gen = torch.Generator().manual_seed(7)
    x = (1e4 + 0.1 * torch.randn(11, 500, generator=gen)).float()
    g = x @ x.T
    naive = g.diag()[:, None] + g.diag()[None, :] - 2 * g
    exact = ((x.double()[:, None] - x.double()[None]) ** 2).sum(-1)
    assert float((naive.double() - exact).abs().max()) > 100 * float(exact.max())


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_identical_inputs_give_that_input(name: str) -> None:
    x = torch.full((9, 3), 2.5)
    out = aggregators.get(name)(x, f=largest_f(name, 9))
    assert torch.allclose(out, x[0])


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_one_dimension_and_ties(name: str) -> None:
    x = torch.tensor([[1.0], [1.0], [1.0], [2.0], [2.0], [7.0], [1.0], [2.0], [1.5]])
    out = aggregators.get(name)(x, f=largest_f(name, 9))
    assert out.shape == (1,)
    assert 1.0 <= float(out) <= 2.0 or name == "mean"


@pytest.mark.parametrize(
    "name", [n for n in RULES if aggregators.condition(n).holds(1, 0)]
)
def test_a_single_input_is_returned(name: str) -> None:
    x = torch.tensor([[3.0, -1.0]])
    assert torch.allclose(aggregators.get(name)(x, f=0), x[0])


@pytest.mark.parametrize(
    ("name", "m", "f", "text"),
    [
        ("median", 4, 2, "median requires m >= 2f + 1; got m = 4, f = 2"),
        ("krum", 6, 2, "krum requires m >= 2f + 3; got m = 6, f = 2"),
        ("multi_krum", 6, 2, "multi_krum requires m >= 2f + 3; got m = 6, f = 2"),
        ("bulyan", 10, 2, "bulyan requires m >= 4f + 3; got m = 10, f = 2"),
        ("trimmed_midpoint", 6, 2, "trimmed_midpoint requires m >= 3f + 1; got m = 6"),
        ("mean", 5, 1, "mean requires f = 0; got m = 5, f = 1"),
        ("mda", 2, 1, "mda requires m >= 2f + 1; got m = 2, f = 1"),
        (
            "nnm+krum",
            6,
            2,
            "nnm\\+krum requires m >= 2f \\+ 3 on the inputs left by nnm",
        ),
    ],
)
def test_broken_condition_is_refused(name: str, m: int, f: int, text: str) -> None:
    pattern = text if "\\" in text else text.replace("+", r"\+")
    with pytest.raises(ValueError, match=pattern):
        aggregators.get(name)(torch.zeros(m, 2), f=f)


def test_conditions_hold_exactly_at_their_limit() -> None:
    for name, m, f in [
        ("median", 5, 2),
        ("krum", 7, 2),
        ("bulyan", 11, 2),
        ("trimmed_midpoint", 7, 2),
        ("mda", 5, 2),
    ]:
        out = aggregators.get(name)(gaussian(m, 3, seed=m), f=f)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64])
@pytest.mark.parametrize("name", RULES)
def test_non_real_inputs_are_refused(name: str, dtype: torch.dtype) -> None:
    with pytest.raises(
        TypeError, match=f"{name}: inputs must be a real floating tensor"
    ):
        aggregators.get(name)(torch.zeros(7, 2, dtype=dtype), f=0)


@pytest.mark.parametrize("f", [-1, 1.5, True])
def test_bad_f_is_refused(f) -> None:
    with pytest.raises(ValueError, match="median: f must be an integer >= 0"):
        aggregators.median(torch.zeros(5, 2), f=f)


def test_bad_options_are_refused() -> None:
    with pytest.raises(
        ValueError, match="num_selected must be an integer in \\[1, m = 7\\]"
    ):
        aggregators.multi_krum(torch.zeros(7, 2), f=1, num_selected=8)
    with pytest.raises(ValueError, match="bucket_size must be an integer >= 1"):
        aggregators.bucketing(torch.zeros(7, 2), f=1, bucket_size=0)
    with pytest.raises(ValueError, match="start = 'far' is not allowed"):
        aggregators.centered_clipping(torch.zeros(7, 2), f=1, start="far")
    with pytest.raises(ValueError, match="nnm\\+median: unknown option 'radius'"):
        aggregators.get("nnm+median")(torch.zeros(7, 2), f=1, radius=1.0)


def test_unknown_rule_lists_the_valid_names() -> None:
    with pytest.raises(
        ValueError, match="unknown aggregation rule 'bogus'; expected one of: bulyan"
    ):
        aggregators.get("bogus")
    with pytest.raises(
        ValueError,
        match="pre-aggregation steps joined by \\+ \\(arc, bucketing, nnm\\)",
    ):
        aggregators.get("krum+median")


def test_bucketing_averages_groups_and_depends_on_the_generator() -> None:
    x = torch.arange(8.0).unsqueeze(-1)
    a = aggregators.bucketing(
        x, f=1, bucket_size=3, generator=torch.Generator().manual_seed(0)
    )
    assert a.shape == (3, 1)
    assert torch.isclose(3 * a[0] + 3 * a[1] + 2 * a[2], x.sum()).all()
    b = aggregators.bucketing(
        x, f=1, bucket_size=3, generator=torch.Generator().manual_seed(0)
    )
    c = aggregators.bucketing(
        x, f=1, bucket_size=3, generator=torch.Generator().manual_seed(5)
    )
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert aggregators.condition("bucketing+krum", {"bucket_size": 3}).holds(13, 1)
    assert not aggregators.condition("bucketing+krum", {"bucket_size": 3}).holds(12, 1)


def test_mix_interpolates_and_keeps_own_on_nonfinite() -> None:
    own = torch.zeros(2, 3)
    inputs = torch.ones(2, 5, 3)
    out = aggregators.mix(own, inputs, rule="median", f=2, mixing=0.25)
    assert torch.allclose(out, torch.full((2, 3), 0.25))
    assert torch.equal(
        aggregators.mix(own, inputs, rule="median", f=2, mixing=0.0), own
    )
    bad = torch.full((2, 5, 3), float("nan"))
    bad[0] = 1.0
    out = aggregators.mix(own, bad, rule="median", f=2, mixing=1.0)
    assert torch.equal(out[0], torch.ones(3)) and torch.equal(out[1], torch.zeros(3))
    assert torch.equal(out[1], torch.zeros(3))


def test_a_far_input_does_not_blur_krum_scores() -> None:
    for seed in range(10):
        x = 1 + 0.01 * torch.randn(9, 20, generator=torch.Generator().manual_seed(seed))
        x[0] = 1000.0
        expected = reference("krum", x, 2)
        assert torch.allclose(aggregators.krum(x, f=2).double(), expected), seed


def test_averages_do_not_overflow_near_the_float32_maximum() -> None:
    big = torch.full((4, 2), 3e38)
    for name in ("median", "mean", "trimmed_mean", "meamed", "trimmed_midpoint"):
        f = 0 if name == "mean" else 1
        out = aggregators.get(name)(big, f=f)
        assert torch.isfinite(out).all(), name
        assert torch.allclose(out, big[0], rtol=1e-6), name


@pytest.mark.parametrize(
    "name", ["median", "trimmed_mean", "meamed", "trimmed_midpoint", "mda"]
)
def test_more_inputs_than_the_sorting_networks_take(name: str) -> None:
    x = gaussian(40, 5, seed=9)
    f = 5
    x[:f] += 50.0
    expected = reference(name, x, f) if name != "mda" else x[f:].double().mean(0)
    assert torch.allclose(aggregators.get(name)(x, f=f).double(), expected, atol=1e-5)


def test_meamed_with_a_value_repeated_at_the_window_edge() -> None:
    """ALIE sends f equal values: the kept values are the m - f closest, not a
    window chosen by its farthest value alone."""
    x = torch.tensor([[-2.0], [-2.0], [0.0], [0.5], [1.0]])
    assert torch.allclose(aggregators.meamed(x, f=1), torch.tensor([-0.125]))
    assert torch.allclose(
        aggregators.meamed(x, f=1).double(), reference("meamed", x, 1)
    )
