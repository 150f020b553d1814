"""Many runs at once: the parallel runner, sweeps, attack x rule tables and reports.

``runner`` runs configurations in parallel processes (finished runs skipped,
interrupted ones resumed, failures isolated); ``sweep`` and ``table`` build the
configurations to run from a grid or a rows x columns file; ``report`` turns a run or
a sweep folder into tables and figures.
"""
