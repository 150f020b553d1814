"""``byzsgd sweep``: every combination of configuration values, one folder per run.

A grid file holds a base configuration, a product of values and, optionally, extra
products on top of the base:

```toml
[base]                                  # any configuration keys
steps = 200
task = { name = "digits", model = "logistic" }

[grid]                                  # every combination of these lists
"worker_to_server.attack" = ["sign_flip", "alie"]
"worker_to_server.rule" = ["median", "mda"]
seed = [0, 1]

[[include]]                             # one more product (scalars or lists)
name = "reference"
"worker_to_server.rule" = "mean"
num_byzantine_workers = 0
```

Each run lives in ``<out>/<config hash>``; ``sweep.json`` lists them with the
grid values that made them and their status. Every configuration is validated
before the first run starts. Finished runs (``summary.json``) are skipped,
interrupted ones continue from their checkpoint, and a failed run leaves
``error.json`` without stopping the others (see :mod:`byzsgd.experiments.runner`).
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from byzsgd.config import Config, ConfigError, flat_keys, from_dict, set_key
from byzsgd.experiments.runner import (
    Job,
    Outcome,
    folder_lock,
    read_summary,
    run_jobs,
)
from byzsgd.recording import atomic_write, dumps, set_aside

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

logger = logging.getLogger(__name__)

MANIFEST_FILE = "sweep.json"
GRID_FILE = "grid.toml"
SECTIONS = ("base", "grid", "include")


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: the grid values that make it, and its configuration."""

    values: dict[str, Any]
    config: Config
    name: str = ""
    varied: tuple[str, ...] = ()

    @property
    def hash(self) -> str:
        return self.config.hash()

    def describe(self, *, seed: bool = True) -> str:
        """The name and the values its product varies, e.g. ``ref: seed=1``."""
        shown = ", ".join(
            f"{k}={v}"
            for k, v in self.values.items()
            if (k in self.varied or not self.name) and (seed or k != "seed")
        )
        if self.name:
            return f"{self.name}: {shown}" if shown else self.name
        return shown


@dataclass(frozen=True)
class Grid:
    """A parsed grid file: its base and its products of values."""

    path: Path
    base: dict[str, Any]
    products: list[tuple[str, dict[str, list]]]

    def runs(self) -> list[SweepRun]:
        """Every run, each configuration built and validated; duplicates dropped."""
        runs: dict[str, SweepRun] = {}
        for name, product in self.products:
            keys = list(product)
            for combination in itertools.product(*product.values()):
                values = dict(zip(keys, combination, strict=True))
                varied = tuple(k for k, v in product.items() if len(v) > 1)
                run = SweepRun(values, self._config(values, name), name, varied)
                if run.hash in runs:
                    logger.warning(
                        "%s is the same configuration as %s (%s); it runs once, "
                        "under the first name",
                        run.describe(),
                        runs[run.hash].describe(),
                        run.hash,
                    )
                    continue
                runs[run.hash] = run
        return list(runs.values())

    def _config(self, values: dict[str, Any], name: str) -> Config:
        from byzsgd.validation import resolve

        label = ", ".join(f"{k} = {v!r}" for k, v in values.items()) or "the base"
        where = f"grid file {str(self.path)!r}, run {name + ': ' if name else ''}"
        try:
            config = from_dict(self.base)
            for key, value in values.items():
                set_key(config, key, value)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                resolve(config)
        except ConfigError as error:
            raise ConfigError(f"{where}{label}: {error}") from None
        return config


def load_grid(path: str | Path) -> Grid:
    """Read a grid file; refuse a malformed one with a line naming the bad part."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"grid file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"grid file {str(path)!r} is not valid TOML: {error}"
        ) from None
    where = f"grid file {str(path)!r}"
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown section [{unknown[0]}]; expected [base], [grid] and "
            "[[include]]"
        )
    products = []
    if "grid" in data or "include" not in data:
        products.append(("", _product(data.get("grid", {}), f"{where}: [grid]", True)))
    includes = data.get("include", [])
    if not isinstance(includes, list):
        raise ConfigError(f"{where}: include must be an array of tables, [[include]]")
    for i, extra in enumerate(includes):
        extra = dict(extra)
        name = str(extra.pop("name", f"include {i + 1}"))
        products.append(
            (name, _product(extra, f"{where}: [[include]] {name!r}", False))
        )
    return Grid(path, data.get("base", {}), products)


def _product(table: Any, where: str, lists_only: bool) -> dict[str, list]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table of configuration keys")
    product = {}
    for key, values in flat_keys(table).items():
        if not isinstance(values, list):
            if lists_only:
                raise ConfigError(
                    f"{where} {key} = {values!r} is not allowed; expected a list of "
                    "values"
                )
            values = [values]
        if not values:
            raise ConfigError(f"{where} {key} is an empty list; expected values")
        product[key] = values
    return product


def check_folder(
    grid: Grid,
    out: str | Path,
    *,
    overwrite: bool = False,
    runs: list[SweepRun] | None = None,
) -> None:
    """Refuse, before any work, a folder that is no sweep of this grid.

    Another grid's sweep (another set of runs; comments and layout do not count)
    and a non-empty folder that holds no sweep at all are refused unless
    ``overwrite``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"sweep folder {str(out)!r} is a file")
    if overwrite or not out.is_dir():
        return
    if not (out / MANIFEST_FILE).is_file():
        if any(p.name != ".lock" for p in out.iterdir()):
            raise FileExistsError(
                f"{str(out)!r} holds files but no sweep ({MANIFEST_FILE}); choose "
                "another --out, or pass --overwrite to run the sweep there anyway"
            )
        return
    if not same_runs(grid, out, runs):
        raise FileExistsError(
            f"sweep folder {str(out)!r} holds the sweep of another grid (other "
            "runs); choose another --out, or pass --overwrite to replace its grid "
            "and manifest (finished runs with the same configuration are kept and "
            "not run again)"
        )


def same_runs(grid: Grid, out: Path, runs: list[SweepRun] | None = None) -> bool:
    """Whether the sweep in ``out`` is of the same runs as ``grid``."""
    manifest = Path(out) / MANIFEST_FILE
    if not manifest.is_file():
        return False
    listed = [entry["hash"] for entry in json.loads(manifest.read_text())["runs"]]
    runs = grid.runs() if runs is None else runs
    return listed == [run.hash for run in runs]


def run_sweep(
    grid: Grid,
    out: str | Path,
    *,
    jobs: int | None = None,
    progress: Callable[[Outcome], None] | None = None,
    runs: list[SweepRun] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run every run of the grid not finished yet; return and write the manifest.

    ``runs`` is ``grid.runs()`` where the caller has it already. A folder holding
    the sweep of another grid is refused unless ``overwrite``; then its grid and
    manifest move into ``replaced-<time>/``. One sweep at a time per folder. When
    every run was finished already, nothing is run and no file is written.
    """
    out = Path(out)
    runs = grid.runs() if runs is None else runs
    check_folder(grid, out, overwrite=overwrite, runs=runs)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out):
        finished = all(read_summary(out / run.hash) is not None for run in runs)
        if finished and same_runs(grid, out, runs):
            logger.info("every run of %s is finished; nothing to do", out)
            return json.loads((out / MANIFEST_FILE).read_text())
        _replace_grid(out, grid, runs)
        work = [Job(run.config, out / run.hash, run.describe()) for run in runs]
        _write_manifest(out, grid, runs, None, 0.0)

        start = time.perf_counter()
        outcomes = run_jobs(work, max_workers=jobs, progress=progress)
        seconds = time.perf_counter() - start
        manifest = _write_manifest(out, grid, runs, outcomes, seconds)
    for entry in manifest["runs"]:
        if entry["status"] == "failed":
            logger.warning("run %s failed: %s", entry["hash"], entry["error"])
    return manifest


def _replace_grid(out: Path, grid: Grid, runs: list[SweepRun]) -> None:
    """Write the grid file; another grid's file and manifest move aside first."""
    text = grid.path.read_text(encoding="utf-8")
    old = out / GRID_FILE
    if old.is_file() and not same_runs(grid, out, runs):
        set_aside(out, (GRID_FILE, MANIFEST_FILE))
    if not old.is_file() or old.read_text(encoding="utf-8") != text:
        atomic_write(old, text)


def _write_manifest(
    out: Path,
    grid: Grid,
    runs: list[SweepRun],
    outcomes: list[Outcome] | None,
    seconds: float,
) -> dict[str, Any]:
    entries = []
    for i, run in enumerate(runs):
        outcome = outcomes[i] if outcomes else None
        entries.append(
            {
                "hash": run.hash,
                "name": run.name,
                "values": run.values,
                "label": run.describe(seed=False),
                "status": outcome.status if outcome else "pending",
                "error": _error_line(outcome) if outcome else None,
            }
        )
    manifest = {
        "grid": grid.path.name,
        "runs": entries,
        "counts": {
            status: sum(e["status"] == status for e in entries)
            for status in sorted({e["status"] for e in entries})
        },
        "seconds": seconds,
    }
    atomic_write(out / MANIFEST_FILE, dumps(manifest, indent=2) + "\n")
    return manifest


def _error_line(outcome: Outcome) -> str | None:
    if outcome.ok:
        return None
    return f"{outcome.error.get('type', '')}: {outcome.error.get('message', '')}"
