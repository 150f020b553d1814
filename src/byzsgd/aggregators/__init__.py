"""Robust aggregation rules: inputs of shape (..., m, d) to an output of shape (..., d).

Each rule is a pure function ``rule(inputs, *, f, ...)``; ``get(name)`` returns one
by name and ``condition(name)`` its resilience condition on (m, f).
"""

from byzsgd.aggregators._checks import Condition, complete_nonfinite
from byzsgd.aggregators._registry import condition, get, names, register
from byzsgd.aggregators.coordinate import mean, median, trimmed_mean
from byzsgd.aggregators.krum import krum
from byzsgd.aggregators.mda import mda

__all__ = [
    "Condition",
    "complete_nonfinite",
    "condition",
    "get",
    "krum",
    "mda",
    "mean",
    "median",
    "names",
    "register",
    "trimmed_mean",
]
