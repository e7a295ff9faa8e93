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

import contextlib
import os
import shutil
import signal
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Protocol, TypeVar, cast

from packager.tools import own_process_group

J = TypeVar("J")
R = TypeVar("R")

#: (jobs done, jobs in all), called on the coordinator as jobs finish.
JobProgress = Callable[[int, int], None]


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
    jobs run in this process, in order (nothing to gain from a pool, and easier to debug)."""

    def __init__(self, workers: int | None = None) -> None:
        self._workers = max(1, workers if workers is not None else os.cpu_count() or 1)

    @property
    def workers(self) -> int:
        return self._workers

    def map(self, fn: Callable[[J], R], jobs: Sequence[J],
            progress: JobProgress | None = None) -> list[R]:
        results: list[R | None] = [None] * len(jobs)
        if self._workers <= 1 or len(jobs) <= 1:
            for done, (index, job) in enumerate(enumerate(jobs), 1):
                results[index] = fn(job)
                if progress:
                    progress(done, len(jobs))
        else:
            # Workers in a process group of their own: a terminal's Ctrl-C is the
            # coordinator's to handle (packager/interrupts.py), not a traceback per worker;
            # the coordinator stops their jobs (_interrupt_workers).
            with ProcessPoolExecutor(min(self._workers, len(jobs)),
                                     initializer=_start_worker) as pool:
                futures = {pool.submit(_run_job, fn, job): index
                           for index, job in enumerate(jobs)}
                try:
                    for done, future in enumerate(_completed(futures), 1):
                        results[futures[future]] = future.result()
                        if progress:
                            progress(done, len(jobs))
                except BaseException:
                    for future in futures:
                        future.cancel()
                    _interrupt_workers(pool)
                    raise
        return cast("list[R]", results)  # every slot was filled above


#: How often a waiting map wakes up (seconds): see _completed.
_WAKE = 0.25


def _completed(futures: Iterable[Future[R]]) -> Iterator[Future[R]]:
    """The futures as they complete, waking every _WAKE seconds: a signal (Ctrl-C, SIGTERM)
    may be delivered to one of the pool's threads, and Python runs its handler only when the
    main thread runs again; as_completed's blocking wait would hold it off until the next job
    ends."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=_WAKE, return_when=FIRST_COMPLETED)
        yield from done


def _interrupt_workers(pool: ProcessPoolExecutor) -> None:
    """A failed or interrupted map stops the jobs still running: each would otherwise hold it
    until it ends (a per-title trial encode runs for minutes). SIGTERM makes a worker's job
    raise SystemExit (_unwind_on_sigterm), which stops the tools it runs (tools.spawn); the
    pool hands the exception back and the worker is shut down with the pool."""
    workers = getattr(pool, "_processes", None) or {}  # CPython's pid -> Process map
    for pid in list(workers):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


#: Set in a worker once it has been told to stop: the jobs already queued to it are refused.
_stopping = False


def _start_worker() -> None:
    """A worker leaves the terminal's process group (tools.own_process_group), and its SIGTERM
    unwinds its job (finally blocks run, child tools are stopped) rather than killing it where
    it stands, whatever handler the parent had."""
    own_process_group()

    def unwind(signum: int, frame: object) -> None:
        global _stopping  # noqa: PLW0603 (per worker process, set once)
        _stopping = True
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, unwind)


def _run_job(fn: Callable[[J], R], job: J) -> R:
    """One job in a worker, unless the map was stopped (the pool queues a job or two ahead:
    they must not start once the map is over)."""
    if _stopping:
        raise SystemExit(143)
    return fn(job)


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
        shutil.copyfile(local, partial)
        partial.replace(target)

    def get(self, key: str, local: Path) -> None:
        source = self.root / key
        if local.resolve() == source.resolve():
            return
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, local)

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self.root / prefix, ignore_errors=True)
