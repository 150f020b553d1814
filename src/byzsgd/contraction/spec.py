"""What a contraction study measures: study files, grids and the cells they expand to.

A study file (TOML) holds settings shared by every study and one ``[[study]]`` table
per study; each axis is a scalar or a list, and the cells of a study are the product
of its list-valued axes. Quorums and bounds are small arithmetic expressions over the
cell (``"n-f"``, ``"1 - lam/2"``) so one grid can span several sizes.
"""

from __future__ import annotations

import itertools
import math
import re
import sys
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from byzsgd import aggregators
from byzsgd.config import ConfigError
from byzsgd.contraction.expressions import check, evaluate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

POLICIES = ("random", "all", "include_self", "first")
INITS = ("two_clusters", "uniform", "gaussian", "evenly_spaced", "unit_vectors")
ADVERSARIES = ("none", "crash", "fixed", "split", "worst_case", "balancing")
NORMS = {"l1": 1.0, "l2": 2.0, "linf": math.inf}
_NORM_ALIASES = {"1": "l1", "2": "l2", "inf": "linf"} | {n: n for n in NORMS}

AXES = (
    "correct",
    "f",
    "quorum",
    "policy",
    "rule",
    "lam",
    "norm",
    "dim",
    "init",
    "adversary",
)
SETTINGS = ("reps", "rounds_cap", "shrink", "bound", "margin", "seed")
DEFAULTS: dict[str, Any] = {
    "correct": 10,
    "f": 0,
    "quorum": "n-f",
    "policy": "random",
    "rule": "median",
    "lam": 1.0,
    "norm": "linf",
    "dim": 1,
    "init": "gaussian",
    "adversary": "crash",
    "reps": 200,
    "rounds_cap": 100,
    "shrink": 1000.0,
    "bound": "1 - lam/2",
    "margin": 0.0,
    "seed": 1,
}
LIMITS = {"correct": 200, "f": 200, "dim": 100_000, "reps": 100_000}
LIMITS["rounds_cap"] = 100_000
MEMORY_LIMIT = 4 * 2**30  # bytes a cell may hold at once; larger cells are not run
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Cell:
    """One point of a study's grid: a gather round to measure R times.

    ``quorum`` is the expression as written; :attr:`q` is its value for this cell
    (every live sender under the ``all`` policy). ``status`` is ``"ok"`` or why
    the cell cannot be measured (a quorum larger than the live senders, a rule
    whose condition fails, too few dimensions for unit vectors).
    """

    study: str
    correct: int
    f: int
    quorum: str
    policy: str
    rule: str
    lam: float
    norm: str
    dim: int
    init: str
    adversary: str
    reps: int
    rounds_cap: int
    shrink: float
    bound: str
    margin: float
    seed: int
    q: int = 0
    status: str = "ok"

    @property
    def n(self) -> int:
        """All servers, correct and Byzantine."""
        return self.correct + self.f

    @property
    def silent(self) -> bool:
        """Whether the Byzantine servers send nothing (they crashed)."""
        return self.adversary in ("none", "crash") or self.f == 0

    @property
    def live(self) -> int:
        """How many servers reply: the correct ones, and the Byzantine unless silent."""
        return self.correct if self.silent else self.n

    @property
    def bound_value(self) -> float:
        return evaluate(self.bound, self.variables(), "bound")

    def variables(self) -> dict[str, float]:
        return {
            "n": self.n,
            "c": self.correct,
            "f": self.f,
            "q": self.q,
            "lam": self.lam,
        }

    def axes(self) -> dict[str, Any]:
        """The cell's coordinates in the grid, with the quorum's value."""
        values = {axis: getattr(self, axis) for axis in AXES}
        values["q"] = self.q
        return values

    def key(self, exclude: tuple[str, ...] = ()) -> str:
        """A stable text naming the cell (but the ``exclude`` axes) for seeding."""
        return "|".join(
            f"{axis}={getattr(self, axis)}" for axis in AXES if axis not in exclude
        )


@dataclass
class Study:
    """One named grid and its text for the reader."""

    name: str
    title: str
    axes: dict[str, list[Any]]
    settings: dict[str, Any] = field(default_factory=dict)

    def varying(self) -> list[str]:
        """The axes with more than one value, in grid order."""
        return [axis for axis in AXES if len(self.axes[axis]) > 1]

    def cells(self) -> list[Cell]:
        cells = []
        for values in itertools.product(*(self.axes[a] for a in AXES)):
            cell = Cell(
                study=self.name, **dict(zip(AXES, values, strict=True)), **self.settings
            )
            cells.append(resolve(cell))
        return cells


def default_study_path() -> Path:
    return Path(str(resources.files("byzsgd.contraction") / "default.toml"))


def load(
    source: str | Path | dict | None = None,
    overrides: dict[str, Any] | None = None,
    only: list[str] | None = None,
) -> list[Study]:
    """The studies of a TOML file (or a dict of the same shape; None: the default).

    ``overrides`` replace an axis or a setting in every study; ``only`` keeps the
    studies with those names. Every value is checked here, before any work.
    """
    if source is None:
        source = default_study_path()
    if isinstance(source, dict):
        data = source
    else:
        path = Path(source)
        if not path.is_file():
            problem = "is not a file" if path.exists() else "does not exist"
            raise ConfigError(f"study file {str(path)!r} {problem}")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"study file {str(path)!r}: {error}") from None
    studies = _parse(data, dict(overrides or {}), only)
    for study in studies:
        study.cells()  # every quorum and bound evaluated here, before any work
    return studies


def _parse(
    data: dict[str, Any], overrides: dict[str, Any], only: list[str] | None
) -> list[Study]:
    shared = {k: v for k, v in data.items() if k != "study"}
    tables = data.get("study", [{"name": "study"}])
    if isinstance(tables, dict):
        tables = [tables]
    if not isinstance(tables, list) or not tables:
        raise ConfigError("study: expected one or more [[study]] tables")
    _check_keys(shared, "top level")
    for key in overrides:
        if key not in AXES and key not in SETTINGS:
            raise ConfigError(_unknown_key(key, "--set"))
    studies, names = [], []
    for index, table in enumerate(tables):
        where = f"study {index + 1}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a table, got {table!r}")
        name = table.get("name", f"study{index + 1}")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError(
                f"{where}: name = {name!r}: expected letters, digits, '_', '-' or "
                "'.', starting with a letter or digit (it names the figure file)"
            )
        if name in names:
            raise ConfigError(f"{where}: study name {name!r} is used twice")
        names.append(name)
        if only and name not in only:
            continue
        title = str(table.get("title", name))
        values = {k: v for k, v in table.items() if k not in ("name", "title")}
        _check_keys(values, f"study {name!r}")
        merged = DEFAULTS | shared | values | overrides
        axes = {axis: _axis(name, axis, merged[axis]) for axis in AXES}
        settings = {key: _setting(name, key, merged[key]) for key in SETTINGS}
        studies.append(Study(name, title, axes, settings))
    missing = [name for name in only or [] if name not in names]
    if missing:
        raise ConfigError(f"no study named {missing[0]!r}; studies: {', '.join(names)}")
    return studies


def _check_keys(table: dict[str, Any], where: str) -> None:
    for key in table:
        if key not in AXES and key not in SETTINGS:
            raise ConfigError(_unknown_key(key, where))


def _unknown_key(key: str, where: str) -> str:
    return (
        f"{where}: unknown key {key!r}; expected one of: {', '.join(AXES + SETTINGS)}"
    )


def _axis(study: str, axis: str, value: Any) -> list[Any]:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ConfigError(f"study {study!r}: {axis} is an empty list")
    return [_check_value(study, axis, v) for v in values]


def _check_value(study: str, axis: str, value: Any) -> Any:
    where = f"study {study!r}: {axis} = {value!r}"
    if axis in ("correct", "f", "dim"):
        low = {"f": 0, "correct": 2, "dim": 1}[axis]  # a diameter needs two servers
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{where}: expected an integer >= {low}")
        if value > LIMITS[axis]:
            raise ConfigError(f"{where}: expected at most {LIMITS[axis]}")
        return value
    if axis == "quorum":
        text = str(value) if not isinstance(value, bool) else ""
        try:
            return check(text, ("n", "c", "f"), "quorum")
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
    if axis == "lam":
        return _number(where, value, 0.0, 1.0, "a number in [0, 1]")
    if axis == "norm":
        name = _NORM_ALIASES.get(str(value).lower())
        if name is None:
            raise ConfigError(f"{where}: expected one of 1, 2, inf")
        return name
    if axis == "rule":
        _check_rule(where, value)
        return value
    choices = {"policy": POLICIES, "init": INITS, "adversary": ADVERSARIES}[axis]
    if value not in choices:
        raise ConfigError(f"{where}: expected one of: {', '.join(choices)}")
    return value


def _check_rule(where: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a rule name")
    try:
        aggregators.get(value)
    except (KeyError, ValueError):
        raise ConfigError(
            f"{where}: unknown rule; expected one of: {', '.join(aggregators.names())}"
        ) from None


def _setting(study: str, key: str, value: Any) -> Any:
    where = f"study {study!r}: {key} = {value!r}"
    if key == "bound":
        try:
            return check(str(value), ("n", "c", "f", "q", "lam"), "bound")
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
    if key == "shrink":
        return _number(where, value, 1.0, 1e300, "a finite number > 1", open_low=True)
    if key == "margin":
        return _number(where, value, 0.0, 1e6, "a number in [0, 1e6]")
    low = {"reps": 2, "rounds_cap": 0, "seed": 0}[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{where}: expected an integer >= {low}")
    if key in LIMITS and value > LIMITS[key]:
        raise ConfigError(f"{where}: expected at most {LIMITS[key]}")
    return value


def _number(
    where: str, value: Any, low: float, high: float, text: str, open_low=False
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected {text}")
    try:
        number = float(value)
    except OverflowError:
        raise ConfigError(f"{where}: expected {text}") from None
    inside = (number > low if open_low else number >= low) and number <= high
    if not math.isfinite(number) or not inside:
        raise ConfigError(f"{where}: expected {text}")
    return number


def resolve(cell: Cell) -> Cell:
    """The cell with its quorum evaluated and, if it cannot be measured, why.

    A quorum or bound that cannot be evaluated for this cell (a division by zero,
    say) is refused with the cell named: that is an error in the study file.
    """
    live = cell.live
    where = f"study {cell.study!r}, cell {cell.key(exclude=('norm',))}"
    try:
        if cell.policy == "all":
            q = live
        else:
            q = evaluate(cell.quorum, cell.variables(), "quorum")
        cell = replace(cell, q=int(q) if q == int(q) else 0)
        cell.bound_value  # noqa: B018 - evaluated now, to refuse it before any work
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    if q != int(q):
        return replace(cell, status=f"quorum {cell.quorum} = {q:g} is no integer")
    if not 1 <= q <= live:
        return replace(cell, status=f"quorum {q:g} not in [1, {live}] live servers")
    if cell.init == "unit_vectors" and cell.dim < cell.correct:
        return replace(cell, status=f"unit vectors need dim >= {cell.correct}")
    condition = aggregators.condition(cell.rule)
    if not condition.holds(cell.q, cell.f):
        return replace(cell, status=f"{cell.rule} needs {condition.text}")
    needed = memory_needed(cell)
    if needed > MEMORY_LIMIT:
        return replace(
            cell,
            status=f"needs about {needed / 2**30:.1f} GiB at once (limit "
            f"{MEMORY_LIMIT / 2**30:.0f} GiB): lower reps or dim",
        )
    return cell


def memory_needed(cell: Cell) -> int:
    """Bytes a cell holds at once, roughly: what the receivers got, a few times over,
    and the pairwise boxes of the worst case."""
    per_receiver = 4 * cell.q + (
        3 * cell.correct if cell.adversary == "worst_case" else 0
    )
    return 8 * cell.reps * cell.correct * cell.dim * per_receiver
