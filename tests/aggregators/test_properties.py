"""Invariants of every rule, on inputs drawn by hypothesis."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from byzsgd import aggregators
from tests.aggregators.test_rules import DETERMINISTIC, largest_f

# Rules whose every output coordinate lies in the correct inputs' range when at most
# f inputs are arbitrary (meamed is not one: it may average a Byzantine value that
# sits next to the median with a correct one on the far side).
RANGE_RULES = ["median", "trimmed_mean", "trimmed_midpoint"]
# ARC clips by norm about the origin, so it is not equivariant to translations.
EQUIVARIANT = [n for n in DETERMINISTIC if not n.startswith("arc")]


@st.composite
def cases(draw, name: str):
    m = draw(st.integers(3, 11))
    f = largest_f(name, m) if aggregators.condition(name).holds(m, 0) else None
    if f is None:
        m = 11
        f = largest_f(name, m)
    d = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    x = torch.randn(m, d, generator=torch.Generator().manual_seed(seed))
    return x, f, seed


# NNM can turn distinct inputs into vectors that coincide up to rounding; MDA after
# it then faces subsets of equal diameter whose tie order follows that rounding, so
# "nnm...+mda" is invariant only up to such ties (docs/aggregators.md).
PERMUTATION_INVARIANT = [n for n in DETERMINISTIC if not n.endswith("nnm+mda")]


@pytest.mark.parametrize("name", PERMUTATION_INVARIANT)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_permutation_invariance(name: str, data) -> None:
    x, f, seed = data.draw(cases(name))
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    rule = aggregators.get(name)
    assert torch.allclose(rule(x[perm], f=f), rule(x, f=f), atol=1e-4)


@pytest.mark.parametrize("name", EQUIVARIANT)
@settings(max_examples=25, deadline=None)
@given(data=st.data(), shift=st.floats(-100, 100))
def test_translation_equivariance(name: str, data, shift: float) -> None:
    x, f, _ = data.draw(cases(name))
    c = torch.linspace(-1, 1, x.shape[1]) * shift
    rule = aggregators.get(name)
    assert torch.allclose(rule(x + c, f=f), rule(x, f=f) + c, atol=1e-3)


@pytest.mark.parametrize("name", RANGE_RULES)
@settings(max_examples=40, deadline=None)
@given(data=st.data(), magnitude=st.sampled_from([1.0, 1e3, 1e30, -1e30]))
def test_output_stays_in_the_correct_inputs_range(name: str, data, magnitude) -> None:
    x, f, seed = data.draw(cases(name))
    gen = torch.Generator().manual_seed(seed + 1)
    x[:f] = magnitude * torch.randn(f, x.shape[1], generator=gen)
    out = aggregators.get(name)(x, f=f)
    low, high = x[f:].min(0).values, x[f:].max(0).values
    assert bool(((out >= low - 1e-5) & (out <= high + 1e-5)).all())


@pytest.mark.parametrize("name", [n for n in DETERMINISTIC if n != "mean"])
@settings(max_examples=25, deadline=None)
@given(data=st.data(), sign=st.sampled_from([1.0, -1.0]))
def test_output_stays_bounded_when_byzantine_inputs_explode(name, data, sign) -> None:
    x, f, seed = data.draw(cases(name))
    if f == 0:
        return
    gen = torch.Generator().manual_seed(seed + 2)
    x[:f] = sign * 1e30 * (1 + torch.rand(f, x.shape[1], generator=gen))
    out = aggregators.get(name)(x, f=f)
    bound = 10 * float(x[f:].abs().max()) + 1
    assert torch.isfinite(out).all()
    assert float(out.abs().max()) <= bound
