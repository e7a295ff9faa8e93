"""Where planned work runs: the Executor the packager hands its jobs to, and the local one.

The packager plans work as plain data (frozen, picklable job dataclasses: a chunk of a video
ladder, an audio language, a track to cut) and calls an Executor to run a job function over
them. The local executor is a process pool on this machine; a cluster executor (Dask, in a layer
above the packager: nothing below `release/` imports Dask) runs the same job functions on other
machines. A job function must be idempotent (it writes only its own outputs, under names its
job gives), so that a lost worker's job can simply run again elsewhere.

Files a job reads or writes on another machine move through a Stage (a directory every worker
can reach, or an object store): jobs name their inputs and outputs by key, never by a path on
the coordinator.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar, cast

from packager.tools import own_process_group

J = TypeVar("J")
R = TypeVar("R")

#: (jobs done, jobs in all), called on the coordinator as jobs finish; `done` may hold the
#: fraction of a running job that reports its progress (`report_progress`).
JobProgress = Callable[[float, int], None]

#: Where `report_progress` goes in this process: set by an executor running a job here.
_REPORT: ContextVar[Callable[[float], None] | None] = ContextVar("cdnpack_job_report",
                                                                 default=None)


def report_progress(fraction: float) -> None:
    """Called by a running job with how far it is (0 to 1). An executor that runs the job in
    the coordinator's process passes it on to the map's progress (a whole-title encode's bar
    then moves with ffmpeg); elsewhere (a pool process, a remote worker) it is dropped, and
    progress moves by whole jobs."""
    report = _REPORT.get()
    if report is not None:
        report(min(max(fraction, 0.0), 1.0))


class Executor(Protocol):
    """Runs a job function over jobs; results in the jobs' order. The first job that fails
    fails the map (its exception is raised on the coordinator, the other jobs cancelled)."""

    @property
    def workers(self) -> int:
        """Processes that can run jobs at once (a chunked encode gains only above one)."""
        ...

    def map(self, fn: Callable[[J], R], jobs: Sequence[J],
            progress: JobProgress | None = None) -> list[R]: ...


class Stage(Protocol):
    """Storage every worker and the coordinator can reach, keyed by relative names."""

    def put(self, local: Path, key: str) -> None: ...

    def get(self, key: str, local: Path) -> None: ...

    def delete_prefix(self, prefix: str) -> None: ...


class LocalExecutor:
    """A process pool on this machine (one process per core by default); with one worker the
    jobs run in this process, in order (nothing to gain from a pool, and easier to debug).

    However the map ends (done, a job failed, Ctrl-C or SIGTERM here), the pool's processes
    are terminated and reaped before it returns: SIGTERM makes a worker unwind (SystemExit),
    so a job's own children (ffmpeg) are stopped and its temporary files removed."""

    def __init__(self, workers: int | None = None) -> None:
        self._workers = max(1, workers if workers is not None else os.cpu_count() or 1)

    @property
    def workers(self) -> int:
        return self._workers

    def map(self, fn: Callable[[J], R], jobs: Sequence[J],
            progress: JobProgress | None = None) -> list[R]:
        results: list[R | None] = [None] * len(jobs)
        if self._workers <= 1 or len(jobs) <= 1:
            for index, job in enumerate(jobs):
                token = _REPORT.set(_partial(progress, index, len(jobs)))
                try:
                    results[index] = fn(job)
                finally:
                    _REPORT.reset(token)
                if progress:
                    progress(index + 1, len(jobs))
        else:
            import multiprocessing  # noqa: PLC0415 (a package that runs one job needs none)
            # maxtasksperchild=1: a fresh process per job, as a job on a cluster gets (no
            # state from one job leaks into the next; a process costs milliseconds, a job
            # seconds to hours).
            with multiprocessing.Pool(min(self._workers, len(jobs)), _worker_signals,
                                      maxtasksperchild=1) as pool:
                try:
                    finished = pool.imap_unordered(_Indexed(fn), enumerate(jobs))
                    for done, (index, result) in enumerate(finished, 1):
                        results[index] = result
                        if progress:
                            progress(done, len(jobs))
                finally:
                    pool.terminate()
                    pool.join()
        return cast("list[R]", results)  # every slot was filled above


class DirectoryStage:
    """A directory as the stage: this machine's work directory, or a shared mount (NFS, EFS)
    that every worker sees at the same path. Writes land under a temporary name and are renamed
    into place, so a reader never sees half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, local: Path, key: str) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        if local.resolve() == target.resolve():
            return
        partial = target.with_name(f".{target.name}.part-{os.getpid()}")
        _link_or_copy(local, partial)
        partial.replace(target)

    def get(self, key: str, local: Path) -> None:
        source = self.root / key
        if local.resolve() == source.resolve():
            return
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(f".{local.name}.part-{os.getpid()}")
        _link_or_copy(source, partial)
        partial.replace(local)

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self.root / prefix, ignore_errors=True)


@dataclass(frozen=True)
class _Indexed(Generic[J, R]):
    """A job function that also returns its job's index (results arrive as jobs finish)."""

    fn: Callable[[J], R]

    def __call__(self, item: tuple[int, J]) -> tuple[int, R]:
        index, job = item
        return index, self.fn(job)


def _worker_signals() -> None:
    """A pool process leaves the terminal's foreground process group (a terminal's Ctrl-C is
    the coordinator's to handle, packager/interrupts.py, not a traceback per worker), and
    unwinds on SIGTERM, the coordinator's way to stop it (finally blocks run: its ffmpeg
    stopped, its temporary directory removed) instead of dying on the spot with its children
    left running."""
    own_process_group()
    signal.signal(signal.SIGTERM, _unwind)


def _unwind(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _partial(progress: JobProgress | None, index: int,
             total: int) -> Callable[[float], None] | None:
    """The report of the index-th job's fraction done as the map's progress."""
    if progress is None:
        return None
    return lambda fraction: progress(index + fraction, total)


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link where both sides are on one file system (a local encode's outputs then move
    through the stage without a copy: staged files are never written in place, only replaced),
    else a copy."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
