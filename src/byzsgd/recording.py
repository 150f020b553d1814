"""The run folder: resolved config, metrics as JSON lines, summary, figures.

Nothing in it is ever half-written: files are replaced atomically, metrics are
appended and flushed line by line, and an existing run is never overwritten unless
the caller says so.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from byzsgd.config import Config, to_toml

CONFIG_FILE = "config.toml"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
CURVES_FILE = "curves.png"
CHECKPOINT_FILE = "checkpoint.pt"
ERROR_FILE = "error.json"
PRODUCT_FILES = (
    CONFIG_FILE,
    METRICS_FILE,
    SUMMARY_FILE,
    CURVES_FILE,
    CHECKPOINT_FILE,
    ERROR_FILE,
)


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~_umask())  # as a plain open() would, not mkstemp's 0600
    try:
        with os.fdopen(fd, mode) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _sync_folder(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def clean_json(value: Any) -> Any:
    """``value`` with NaN and ±inf floats replaced by None (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    return json.dumps(clean_json(value), allow_nan=False, **kwargs)


def default_run_dir(config: Config, root: str | Path = "runs") -> Path:
    """``runs/<UTC timestamp>-<config hash>``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{stamp}-{config.hash()}"


class RunFolder:
    """One run's folder, opened for writing."""

    def __init__(self, path: Path, *, metrics_lines: int = 0) -> None:
        self.path = Path(path)
        self._metrics: IO[str] | None = None
        self.metrics_lines = metrics_lines

    @staticmethod
    def check(path: str | Path, *, overwrite: bool = False) -> None:
        """Refuse, before any work, a folder that holds a run (unless overwriting)."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"run folder {str(path)!r} is a file")
        existing = [name for name in PRODUCT_FILES if (path / name).exists()]
        if existing and not overwrite:
            raise FileExistsError(
                f"run folder {str(path)!r} already holds a run "
                f"({', '.join(existing)}); choose another --out or pass --overwrite"
            )

    @classmethod
    def create(cls, path: str | Path, config: Config, *, overwrite: bool = False):
        """Make the folder and write the resolved config; never lose an old run.

        With ``overwrite``, the files of a run already there move into a
        ``replaced-<timestamp>`` subfolder instead of being deleted.
        """
        path = Path(path)
        cls.check(path, overwrite=overwrite)
        path.mkdir(parents=True, exist_ok=True)
        set_aside(path, PRODUCT_FILES)
        folder = cls(path)
        atomic_write(path / CONFIG_FILE, to_toml(config))
        return folder

    @classmethod
    def reopen(
        cls,
        path: str | Path,
        *,
        metrics_bytes: int,
        metrics_lines: int,
        metrics_sha256: str | None = None,
    ):
        """Open a run to continue it from a checkpoint taken after ``metrics_lines``.

        ``metrics.jsonl`` is cut back to the checkpoint's ``metrics_bytes``: lines
        written after the checkpoint are dropped, to be written again. The lines
        kept must be those the checkpoint saw (their SHA-256, where it has one).
        """
        path = Path(path)
        metrics = path / METRICS_FILE
        size = metrics.stat().st_size if metrics.is_file() else 0
        if size < metrics_bytes:
            raise ValueError(
                f"{str(metrics)!r} holds {size} bytes but the checkpoint was taken "
                f"after {metrics_bytes}: metric lines were lost; cannot resume"
            )
        metrics.touch()
        with open(metrics, "r+b") as handle:
            kept = handle.read(metrics_bytes)
            whole_lines = not kept or kept.endswith(b"\n")
            changed = metrics_sha256 not in (None, hashlib.sha256(kept).hexdigest())
            if kept.count(b"\n") != metrics_lines or not whole_lines or changed:
                raise ValueError(
                    f"{str(metrics)!r} does not match its checkpoint (expected "
                    f"{metrics_lines} lines in its first {metrics_bytes} bytes)"
                )
            handle.truncate(metrics_bytes)
            handle.flush()
            os.fsync(handle.fileno())
        return cls(path, metrics_lines=metrics_lines)

    def append(self, record: dict[str, Any]) -> None:
        """Append one metric record as a JSON line, flushed to the file at once."""
        if self._metrics is None:
            path = self.path / METRICS_FILE
            self._metrics = open(path, "a", encoding="utf-8")  # noqa: SIM115
        self._metrics.write(dumps(record) + "\n")
        self._metrics.flush()
        self.metrics_lines += 1

    def sync(self) -> tuple[int, str]:
        """Force the metric lines written so far to disk; return their size and
        SHA-256."""
        if self._metrics is not None:
            self._metrics.flush()
            os.fsync(self._metrics.fileno())
        metrics = self.path / METRICS_FILE
        data = metrics.read_bytes() if metrics.is_file() else b""
        return len(data), hashlib.sha256(data).hexdigest()

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write(self.path / SUMMARY_FILE, dumps(summary, indent=2) + "\n")

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None


def set_aside(path: Path, names: tuple[str, ...]) -> Path | None:
    """Move the files ``names`` of folder ``path`` into a new ``replaced-<time>``.

    An earlier run's results are never deleted; they move out of the way.
    """
    existing = [name for name in names if (path / name).exists()]
    if not existing:
        return None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    backup = path / f"replaced-{stamp}"
    backup.mkdir()
    for name in existing:
        os.replace(path / name, backup / name)
    return backup


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a run folder's ``metrics.jsonl`` (or of that file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
