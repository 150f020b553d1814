"""Checkpoints: the complete state of a simulated run, so that it resumes bit for bit.

A checkpoint (``checkpoint.pt`` in the run folder) holds the simulator's
``state_dict()`` — every correct server's parameters, every generator (workers'
batches, Byzantine workers', the rules', each channel's subsets, network and
adversary), each attack's state, the step and the timed seconds — plus how many
bytes and lines of ``metrics.jsonl`` it covers. It is written atomically after the
metric lines it covers are on disk, so whatever moment a run is killed at, the
folder holds a consistent checkpoint or none.
"""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path
from typing import Any

import torch

from byzsgd.config import Config, ConfigError, flat_keys, from_dict
from byzsgd.recording import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    SUMMARY_FILE,
    RunFolder,
    atomic_write,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

logger = logging.getLogger(__name__)

FORMAT = 1


def save(folder: RunFolder, simulator: Any, *, wall_seconds: float) -> Path:
    """Write the simulator's state and the metric offset it matches, atomically."""
    metrics_bytes, metrics_sha256 = folder.sync()
    payload = {
        "format": FORMAT,
        "config_hash": simulator.config.hash(),
        "step": simulator.step_index,
        "metrics_bytes": metrics_bytes,
        "metrics_sha256": metrics_sha256,
        "metrics_lines": folder.metrics_lines,
        "wall_seconds": wall_seconds,
        "simulator": simulator.state_dict(),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path = folder.path / CHECKPOINT_FILE
    atomic_write(path, buffer.getvalue())
    logger.debug("checkpoint at step %d in %s", simulator.step_index, path)
    return path


def load(run_dir: str | Path) -> dict[str, Any]:
    """The checkpoint of a run folder; refuses a missing or unreadable one."""
    path = Path(run_dir) / CHECKPOINT_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"run folder {str(run_dir)!r} has no checkpoint ({CHECKPOINT_FILE}): it "
            "stopped before its first one, or ran with checkpoint_every = 0"
        )
    try:
        payload = torch.load(path, weights_only=True)
    except Exception as error:  # torch raises several kinds on a corrupt file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        reason = reason or type(error).__name__
        raise ValueError(
            f"{str(path)!r} is not a readable checkpoint: {reason}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a byzsgd checkpoint of format {FORMAT}")
    return payload


def folder_config(run_dir: str | Path) -> Config:
    """The resolved configuration a run folder was started with."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{str(run_dir)!r} is no run folder (it has no {CONFIG_FILE})"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{str(path)!r} is not a readable configuration: {error}"
        ) from None
    return from_dict(data, base=Config())


def resumable(
    run_dir: str | Path, requested: Config | None = None
) -> tuple[Config, dict[str, Any]]:
    """The configuration and checkpoint to continue ``run_dir`` from, or a refusal.

    Refused: a folder that is no run, a finished run, a Ray run (checkpoints are
    simulator-only), a ``requested`` configuration other than the folder's, and a
    checkpoint written by another configuration.
    """
    run_dir = Path(run_dir)
    config = folder_config(run_dir)
    if (run_dir / SUMMARY_FILE).exists():
        raise ValueError(
            f"run {str(run_dir)!r} is finished ({SUMMARY_FILE} exists); "
            "nothing to resume"
        )
    if config.runtime != "simulator":
        raise ValueError(
            f"run {str(run_dir)!r} has runtime = {config.runtime!r}; checkpoints and "
            "--resume are simulator-only"
        )
    if requested is not None and requested.hash() != config.hash():
        raise ConfigError(
            f"the configuration given differs from the one of run {str(run_dir)!r} "
            f"in {', '.join(differences(requested, config))}; resume takes the "
            "folder's configuration"
        )
    state = load(run_dir)
    if state["config_hash"] != config.hash():
        raise ValueError(
            f"{CHECKPOINT_FILE} of {str(run_dir)!r} was written by configuration "
            f"{state['config_hash']}, but its {CONFIG_FILE} is {config.hash()}"
        )
    return config, state


def differences(a: Config, b: Config) -> list[str]:
    """The dotted keys whose values differ, as ``key (x != y)``."""
    flat_a, flat_b = flat_keys(a.to_dict()), flat_keys(b.to_dict())
    return [
        f"{key} ({flat_a.get(key)!r} != {flat_b.get(key)!r})"
        for key in sorted(set(flat_a) | set(flat_b))
        if flat_a.get(key) != flat_b.get(key)
    ]
