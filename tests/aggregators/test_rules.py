"""Every registered rule against a slow float64 reference, and its hardening."""

from __future__ import annotations

import itertools

import pytest
import torch

from byzsgd import aggregators

RULES = aggregators.names()


def reference(name: str, x: torch.Tensor, f: int) -> torch.Tensor:
    """Loop-based float64 definitions of the rules, for one (m, d) input."""
    x = x.double()
    m = x.shape[0]
    if name == "mean" or (f == 0 and name in ("trimmed_mean", "mda")):
        return x.mean(0)
    if name == "median":
        out = []
        for column in x.T:
            values = sorted(column.tolist())
            mid = m // 2
            out.append(values[mid] if m % 2 else 0.5 * (values[mid - 1] + values[mid]))
        return torch.tensor(out, dtype=torch.float64)
    if name == "trimmed_mean":
        return torch.tensor(
            [sum(sorted(c.tolist())[f : m - f]) / (m - 2 * f) for c in x.T],
            dtype=torch.float64,
        )
    if name == "krum":
        scores = []
        for i in range(m):
            d = sorted(float(((x[i] - x[j]) ** 2).sum()) for j in range(m) if j != i)
            scores.append(sum(d[: m - f - 2]))
        return x[min(range(m), key=lambda i: scores[i])]
    if name == "mda":
        best, chosen = None, None
        for subset in itertools.combinations(range(m), m - f):
            diameter = max(
                (float((x[i] - x[j]).norm()) for i in subset for j in subset),
                default=0.0,
            )
            if best is None or diameter < best:
                best, chosen = diameter, subset
        return x[list(chosen)].mean(0)
    raise AssertionError(f"no reference for {name}")


def valid_f(name: str, m: int) -> int:
    if name == "mean":
        return 0
    return max(f for f in range(m) if aggregators.condition(name).holds(m, f))


@pytest.mark.parametrize("name", RULES)
@pytest.mark.parametrize("m", [3, 4, 5, 7, 8])
def test_matches_reference(name: str, m: int) -> None:
    gen = torch.Generator().manual_seed(m)
    x = torch.randn(m, 6, generator=gen)
    x[0] += 20.0  # one far-away input
    f = valid_f(name, m)
    assert aggregators.condition(name).holds(m, f)
    out = aggregators.get(name)(x, f=f)
    assert out.dtype == torch.float32
    assert torch.allclose(out.double(), reference(name, x, f), atol=1e-5)


@pytest.mark.parametrize("name", RULES)
def test_batch_dimensions_equal_a_loop(name: str) -> None:
    x = torch.randn(3, 2, 7, 5)
    f = valid_f(name, 7)
    rule = aggregators.get(name)
    out = rule(x, f=f)
    assert out.shape == (3, 2, 5)
    for i, j in itertools.product(range(3), range(2)):
        assert torch.allclose(out[i, j], rule(x[i, j], f=f), atol=1e-6)


@pytest.mark.parametrize("name", RULES)
def test_inputs_are_not_modified(name: str) -> None:
    x = torch.randn(7, 4)
    x[2, 1] = torch.nan
    copy = x.clone()
    aggregators.get(name)(x, f=valid_f(name, 7))
    assert torch.equal(torch.isnan(x), torch.isnan(copy))
    assert torch.equal(x.nan_to_num(), copy.nan_to_num())


@pytest.mark.parametrize("name", [n for n in RULES if n != "mean"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nonfinite_inputs_are_neutralised(name: str, bad: float) -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(7, 5, generator=gen)
    f = valid_f(name, 7)
    x[:f, 2] = bad
    out = aggregators.get(name)(x, f=f)
    assert torch.isfinite(out).all()
    low, high = x[f:].min(0).values, x[f:].max(0).values
    assert bool(((out >= low - 1e-6) & (out <= high + 1e-6)).all())


def test_median_of_even_count_is_the_true_median() -> None:
    x = torch.tensor([[1.0], [2.0], [10.0], [11.0]])
    assert aggregators.median(x, f=1).item() == 6.0
    assert aggregators.median(x, f=1, lower=True).item() == 2.0


def test_distances_stay_exact_for_large_close_vectors() -> None:
    gen = torch.Generator().manual_seed(2)
    base = 1e4 * torch.ones(1, 1000)
    x = base + 0.1 * torch.randn(9, 1000, generator=gen)
    x[7:] = base + 0.1 * torch.randn(2, 1000, generator=gen) + 0.05
    x = x.float()
    expected = reference("krum", x, 2)
    assert torch.allclose(aggregators.krum(x, f=2).double(), expected, atol=1e-3)


def test_mda_selects_the_tight_cluster() -> None:
    x = torch.cat([torch.zeros(4, 3) + 0.01 * torch.randn(4, 3), 5 + torch.zeros(3, 3)])
    out = aggregators.mda(x, f=3)
    assert out.abs().max() < 0.05


@pytest.mark.parametrize(
    ("name", "m", "f", "text"),
    [
        ("median", 4, 2, "median requires m >= 2f + 1; got m = 4, f = 2"),
        ("krum", 6, 2, "krum requires m >= 2f + 3; got m = 6, f = 2"),
        ("mean", 5, 1, "mean requires f = 0; got m = 5, f = 1"),
        ("mda", 2, 1, "mda requires m >= 2f + 1; got m = 2, f = 1"),
    ],
)
def test_broken_condition_is_refused(name: str, m: int, f: int, text: str) -> None:
    with pytest.raises(ValueError, match=text.replace("+", r"\+")):
        aggregators.get(name)(torch.zeros(m, 2), f=f)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64])
def test_non_real_inputs_are_refused(dtype: torch.dtype) -> None:
    with pytest.raises(
        TypeError,
        match=f"median: inputs must be a real floating tensor, got dtype {dtype}",
    ):
        aggregators.median(torch.zeros(3, 2, dtype=dtype), f=1)


def test_unknown_rule_lists_the_valid_names() -> None:
    with pytest.raises(
        ValueError, match="unknown aggregation rule 'bogus'; expected one of: krum, mda"
    ):
        aggregators.get("bogus")


def test_identical_inputs_give_that_input() -> None:
    x = torch.ones(7, 3) * 2.5
    for name in RULES:
        out = aggregators.get(name)(x, f=valid_f(name, 7))
        assert torch.equal(out, x[0]), name
