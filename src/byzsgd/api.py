"""The Python API behind ``byzsgd run``: one call runs a configuration end to end."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from byzsgd import checkpoint
from byzsgd import config as config_module
from byzsgd.config import Config
from byzsgd.plots import plot_curves
from byzsgd.recording import (
    CURVES_FILE,
    ERROR_FILE,
    RunFolder,
    default_run_dir,
    read_metrics,
    set_aside,
)
from byzsgd.runtime.simulator import Simulator

logger = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any], Simulator], None]


def as_config(
    config: Config | dict | str | Path | None, overrides: Sequence[str] = ()
) -> Config:
    """A :class:`Config` from a Config, a nested dict, a TOML path or None (default)."""
    if isinstance(config, Config):
        result = config_module.from_dict({}, base=config)
        for item in overrides:
            key, _, text = item.partition("=")
            config_module.set_key(result, key.strip(), config_module.parse_value(text))
        return result
    if isinstance(config, dict):
        base = config_module.from_dict(config, base=config_module.default_config())
        return as_config(base, overrides)
    return config_module.load(config, list(overrides))


def run(
    config: Config | dict | str | Path | None = None,
    *,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run a configuration in the simulator, write its run folder, return the summary.

    Parameters
    ----------
    config:
        A :class:`Config`, a nested dict of keys applied over the embedded default,
        the path of a TOML file, or None for the embedded default.
    overrides:
        ``key=value`` strings applied last, as ``--set`` does on the command line.
    out:
        The run folder; default ``runs/<timestamp>-<config hash>``.
    overwrite:
        Move the files of a run already in ``out`` aside (into ``replaced-<time>``)
        instead of refusing.
    progress:
        Called with each step's metric record and the simulator.
    """
    config = as_config(config, overrides)
    target = out or default_run_dir(config)
    RunFolder.check(target, overwrite=overwrite)
    runner = make_runner(config)
    folder = RunFolder.create(target, config, overwrite=overwrite)
    logger.info("run folder %s", folder.path)
    return _drive(config, runner, folder, progress)


def resume(
    run_dir: str | Path,
    *,
    config: Config | dict | str | Path | None = None,
    overrides: Sequence[str] = (),
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Continue an interrupted simulator run from its checkpoint; return the summary.

    The run ends exactly as it would have without the interruption: metric lines
    written after the checkpoint are dropped and computed again. ``config`` or
    ``overrides``, if given, must describe the folder's own configuration.
    """
    requested = None
    if config is not None or overrides:
        base = config if config is not None else checkpoint.folder_config(run_dir)
        requested = as_config(base, overrides)
    config, state = checkpoint.resumable(run_dir, requested)
    simulator = Simulator(config)
    simulator.load_state_dict(state["simulator"])
    folder = RunFolder.reopen(
        run_dir,
        metrics_bytes=state["metrics_bytes"],
        metrics_lines=state["metrics_lines"],
        metrics_sha256=state.get("metrics_sha256"),
    )
    set_aside(folder.path, (ERROR_FILE,))
    logger.info("resuming %s at step %d", folder.path, simulator.step_index)
    return _drive(
        config, simulator, folder, progress, wall_before=state["wall_seconds"]
    )


def _drive(
    config: Config,
    runner: Any,
    folder: RunFolder,
    progress: Progress | None,
    *,
    wall_before: float = 0.0,
) -> dict[str, Any]:
    """Run the remaining steps into ``folder``, checkpointing; write the summary."""
    every = config.checkpoint_every if isinstance(runner, Simulator) else 0
    start = time.perf_counter()
    record = None
    try:
        for record in runner.records():
            folder.append(record)
            if record["step"] % config.eval_every == config.eval_every - 1:
                logger.info("step %d: %s", record["step"] + 1, _headline(record))
            if every and (runner.step_index % every == 0 or runner.done):
                wall = wall_before + time.perf_counter() - start
                checkpoint.save(folder, runner, wall_seconds=wall)
            if progress is not None:
                progress(record, runner)
    finally:
        folder.close()
    wall = wall_before + time.perf_counter() - start
    if record is None:  # resumed from the checkpoint of the last step
        record = read_metrics(folder.path)[-1]

    summary = _summary(config, runner, record, wall, folder.path)
    folder.write_summary(summary)
    plot_curves(
        read_metrics(folder.path), folder.path / CURVES_FILE, title=_title(config)
    )
    return summary


def make_runner(config: Config) -> Any:
    """The runtime the configuration names: the simulator or Ray."""
    if config.runtime == "ray":
        from byzsgd.runtime.ray.launcher import RayRunner

        return RayRunner(config)
    return Simulator(config)


def _headline(record: dict[str, Any]) -> str:
    accuracy = record.get("test_accuracy_min")
    shown = "" if accuracy is None else f"worst accuracy {accuracy:.3f}, "
    return f"{shown}diameter linf {record['diameter_linf']:.3e}"


def _summary(
    config: Config, simulator: Any, last: dict, wall: float, path: Path
) -> dict[str, Any]:
    final = simulator.final_evaluation()
    topology = simulator.topology
    steps = simulator.step_index
    survivors = [int(i) for i in final["loss"]]
    return {
        "final_accuracy": final.get("accuracy", dict.fromkeys(map(str, survivors))),
        "final_accuracy_average_model": last.get("test_accuracy_average_model"),
        "final_test_loss": final["loss"],
        "final_test": final,
        "final_diameter": {
            norm: last[f"diameter_{norm}"] for norm in ("l1", "l2", "linf")
        },
        "final_train_loss": last["train_loss"],
        "steps": steps,
        "steps_per_second": _steps_per_second(simulator, steps),
        "wall_seconds": wall,
        "config_hash": config.hash(),
        "seed": config.seed,
        "correct_servers": list(topology.correct_servers),
        "surviving_servers": survivors,
        "runtime": config.runtime,
        **_ray_figures(simulator),
        "byzantine_servers": list(topology.byzantine_servers),
        "byzantine_workers": list(topology.byzantine_workers),
        "run_dir": str(path),
    }


def _steps_per_second(runner: Any, steps: int) -> float:
    """Protocol steps per second; the simulator leaves out its warm-up step."""
    if hasattr(runner, "seconds_per_step"):
        return 1.0 / max(runner.seconds_per_step(), 1e-9)
    return steps / max(runner.step_seconds, 1e-9)


def _ray_figures(runner: Any) -> dict[str, Any]:
    """Start-up time, memory per actor and what each node counted (Ray only)."""
    if not hasattr(runner, "actor_memory"):
        return {}
    memory = sorted(runner.actor_memory)
    return {
        "ray_interfaces": runner.interfaces,
        "ray_startup_seconds": runner.startup_seconds,
        "ray_actor_memory_mib": memory[len(memory) // 2] if memory else None,
        "ray_nodes": runner.node_stats,
    }


def _model(config: Config) -> str:
    return "linear" if config.task.name == "quadratic" else config.task.model


def _title(config: Config) -> str:
    return (
        f"{config.task.name}/{_model(config)}: n_s={config.num_servers} "
        f"(f_s={config.num_byzantine_servers}), n_w={config.num_workers} "
        f"(f_w={config.num_byzantine_workers}), gather {config.server_to_server.rule} "
        f"λ={config.server_to_server.mixing}"
    )
