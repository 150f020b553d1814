"""The contraction study: how fast gather rules pull the correct servers together.

One gather round (and many) of the servers' exchange is simulated in isolation, R
times at once, over a grid of sizes, quorums, rules, mixing weights, norms,
dimensions, initial configurations and Byzantine adversaries (including the exact
worst case against coordinate-wise medians). :func:`run_study` returns one row of
statistics per cell; :func:`byzsgd.contraction.output.write_outputs` writes the
tables, CSV, JSON and figures.
"""

from byzsgd.contraction.engine import diameters, draw_subsets, gather, measure
from byzsgd.contraction.exact import exact_values
from byzsgd.contraction.initial import initial_points
from byzsgd.contraction.spec import Cell, Study, load
from byzsgd.contraction.study import StudyResult, run_study

__all__ = [
    "Cell",
    "Study",
    "StudyResult",
    "diameters",
    "draw_subsets",
    "exact_values",
    "gather",
    "initial_points",
    "load",
    "measure",
    "run_study",
]
