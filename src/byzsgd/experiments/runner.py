"""Many runs in parallel processes, each in its own folder, safe to start again.

The machinery behind ``byzsgd sweep`` and ``byzsgd table``. A run whose folder
holds ``summary.json`` is finished and never run again; one whose folder holds a
checkpoint continues from it; one that fails leaves ``error.json`` (type, message,
traceback) in its folder and does not stop the others; one whose configuration is
refused is reported as such and leaves nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from byzsgd.config import Config, ConfigError
from byzsgd.recording import (
    CHECKPOINT_FILE,
    ERROR_FILE,
    SUMMARY_FILE,
    atomic_write,
    dumps,
)

logger = logging.getLogger(__name__)

DONE = "done"
SKIPPED = "skipped"
FAILED = "failed"
REFUSED = "refused"


@dataclass(frozen=True)
class Job:
    """One run: its configuration and its folder."""

    config: Config
    folder: Path
    label: str = ""


@dataclass(frozen=True)
class Outcome:
    """How a job ended: done, skipped (finished earlier), failed or refused."""

    job: Job
    status: str
    summary: dict[str, Any] | None = None
    error: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in (DONE, SKIPPED)


def read_summary(folder: str | Path) -> dict[str, Any] | None:
    """The run's summary if the run in ``folder`` is finished, else None."""
    path = Path(folder) / SUMMARY_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def execute(job: Job, threads: int = 1) -> Outcome:
    """Run one job to its end in this process (the body of every pool task)."""
    import torch

    from byzsgd.api import resume, run
    from byzsgd.validation import resolve

    summary = read_summary(job.folder)
    if summary is not None:
        return Outcome(job, SKIPPED, summary)
    if not job.config.threads:
        torch.set_num_threads(threads)
    try:
        resolve(job.config)
    except ConfigError as error:
        return Outcome(
            job, REFUSED, error={"type": "ConfigError", "message": str(error)}
        )
    try:
        if (job.folder / CHECKPOINT_FILE).is_file() and _resumable(job):
            return Outcome(job, DONE, resume(job.folder))
        return Outcome(job, DONE, run(job.config, out=job.folder, overwrite=True))
    except Exception as error:
        return _failed(job, error, traceback.format_exc())


def _resumable(job: Job) -> bool:
    from byzsgd import checkpoint

    try:
        checkpoint.resumable(job.folder, job.config)
    except (ValueError, FileNotFoundError) as error:
        logger.warning("%s: starting again: %s", job.folder, error)
        return False
    return True


def _failed(job: Job, error: BaseException, trace: str) -> Outcome:
    report = {
        "type": type(error).__name__,
        "message": str(error),
        "traceback": trace,
        "config_hash": job.config.hash(),
    }
    job.folder.mkdir(parents=True, exist_ok=True)
    atomic_write(job.folder / ERROR_FILE, dumps(report, indent=2) + "\n")
    return Outcome(job, FAILED, error=report)


def run_jobs(
    jobs: Sequence[Job],
    *,
    max_workers: int | None = None,
    progress: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Run every job not finished yet, in parallel processes; outcomes in job order.

    At most ``max_workers`` processes (default and upper bound: the cores), each
    with ``cores // processes`` torch threads unless its configuration sets
    ``threads``. ``progress`` is called once per job that ran, as it ends.
    """
    outcomes: dict[int, Outcome] = {}
    todo = []
    for index, job in enumerate(jobs):
        summary = read_summary(job.folder)
        if summary is not None:
            outcomes[index] = Outcome(job, SKIPPED, summary)
        else:
            todo.append(index)
    if todo:
        cores = available_cores()
        workers = max(1, min(max_workers or cores, cores, len(todo)))
        threads = max(1, cores // workers)
        logger.info("%d runs to do in %d processes", len(todo), workers)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_die_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            futures = {pool.submit(execute, jobs[i], threads): i for i in todo}
            for future in as_completed(futures):
                index = futures[future]
                outcomes[index] = _result(future, jobs[index])
                if progress is not None:
                    progress(outcomes[index])
    return [outcomes[i] for i in range(len(jobs))]


def _die_with_parent(parent: int) -> None:
    """Make a pool process end when the process that started it dies (Linux).

    A sweep killed with SIGKILL would otherwise leave its pool processes running
    its runs on their own, racing a sweep started again on the same folder.
    """
    if not sys.platform.startswith("linux"):  # pragma: no cover
        return
    import ctypes

    set_parent_death_signal = 1  # PR_SET_PDEATHSIG
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(set_parent_death_signal, int(signal.SIGKILL))
    if os.getppid() != parent:  # the parent died before the call above
        os._exit(1)


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold the folder for one sweep or table at a time; refuse a second one."""
    import fcntl

    handle = open(Path(folder) / ".lock", "a+")  # noqa: SIM115
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FileExistsError(
                f"{str(folder)!r} is in use by another sweep or table; wait for it "
                "to end, or choose another --out"
            ) from None
        yield
    finally:
        handle.close()


def _result(future: Any, job: Job) -> Outcome:
    try:
        return future.result()
    except BrokenProcessPool as error:
        message = "the process running it died (killed, or out of memory)"
        return _failed(job, type(error)(message), "")
