"""Robust aggregation rules: inputs of shape (..., m, d) to an output of shape (..., d).

Each rule is a pure function ``rule(inputs, *, f, ...)``: ``get(name)`` returns one by
name (``"nnm+krum"`` composes pre-aggregation steps with a rule), ``condition(name)``
its resilience condition on (m, f), and ``mix`` the gather's λ-mixing wrapper.

A vector holding a NaN or ±inf is Byzantine: every rule first replaces each such
vector by the coordinate-wise median of the finite ones (``complete_nonfinite``).
"""

from byzsgd.aggregators._checks import Condition, complete_nonfinite
from byzsgd.aggregators._registry import (
    condition,
    get,
    names,
    options,
    pre_aggregators,
    register,
    register_pre,
)
from byzsgd.aggregators.coordinate import (
    meamed,
    mean,
    median,
    trimmed_mean,
    trimmed_midpoint,
)
from byzsgd.aggregators.geometric import centered_clipping, geometric_median
from byzsgd.aggregators.krum import bulyan, krum, multi_krum
from byzsgd.aggregators.mda import mda
from byzsgd.aggregators.mixing import mix
from byzsgd.aggregators.preaggregation import arc, bucketing, nnm

__all__ = [
    "Condition",
    "arc",
    "bucketing",
    "bulyan",
    "centered_clipping",
    "complete_nonfinite",
    "condition",
    "geometric_median",
    "get",
    "krum",
    "mda",
    "meamed",
    "mean",
    "median",
    "mix",
    "multi_krum",
    "names",
    "nnm",
    "options",
    "pre_aggregators",
    "register",
    "register_pre",
    "trimmed_mean",
    "trimmed_midpoint",
]
