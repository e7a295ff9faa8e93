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
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar, cast

from packager.errors import CdnpackError
from packager.interrupts import release_held, signals_held
from packager.tools import own_process_group

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.context import ForkContext, SpawnContext
    from multiprocessing.process import BaseProcess

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

    Each job runs in a fresh process (forked: the job and its function are inherited, only
    the result travels back, pickled), as a job on a cluster gets one: nothing leaks from one
    job into the next, and a process costs milliseconds where a job costs seconds to hours. A
    worker that dies without a result (killed, out of memory) fails the map with one line,
    never a hang. However the map ends (done, a job failed, Ctrl-C or SIGTERM here), the
    running workers are terminated and reaped before it returns: SIGTERM makes a worker unwind
    (SystemExit), so a job's own children (ffmpeg) are stopped and its temporary files
    removed."""

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
            _in_processes(fn, jobs, self._workers, results, progress)
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


def _in_processes(fn: Callable[[J], R], jobs: Sequence[J], workers: int,
                  results: list[R | None], progress: JobProgress | None) -> None:
    """Run the jobs, at most `workers` at once, one fresh process each; fill `results`."""
    import multiprocessing  # noqa: PLC0415 (a package that runs one job needs none)
    from multiprocessing.connection import Connection, wait  # noqa: PLC0415

    # fork: the job and its function are inherited, not pickled (spawn where there is none)
    context: ForkContext | SpawnContext = (
        multiprocessing.get_context("fork")
        if "fork" in multiprocessing.get_all_start_methods()
        else multiprocessing.get_context("spawn"))
    waiting = list(enumerate(jobs))
    running: dict[Connection, tuple[BaseProcess, int]] = {}
    done = 0
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                index, job = waiting.pop(0)
                reader, writer = context.Pipe(duplex=False)
                with signals_held() as mask:
                    started: BaseProcess = context.Process(target=_run_one,
                                                           args=(fn, job, writer, mask))
                    started.start()
                writer.close()
                running[reader] = (started, index)
            for ready in wait(list(running)):
                assert isinstance(ready, Connection)
                worker, index = running.pop(ready)
                try:
                    ok, value = ready.recv()
                except EOFError:  # the process ended without a word
                    worker.join()
                    raise WorkerLost(f"job {index + 1} of {len(jobs)}: its worker process "
                                     f"died (exit {worker.exitcode})") from None
                finally:
                    ready.close()
                worker.join()
                if not ok:
                    assert isinstance(value, BaseException)
                    raise value
                results[index] = cast("R", value)
                done += 1
                if progress:
                    progress(done, len(jobs))
    finally:
        for worker, _ in running.values():
            worker.terminate()
        for reader, (worker, _) in running.items():
            worker.join()
            reader.close()


def _run_one(fn: Callable[[J], R], job: J, writer: Connection,
             mask: set[int | signal.Signals]) -> None:
    """A worker process: run one job, send back (True, result) or (False, the exception)."""
    _worker_signals(mask)
    try:
        outcome: tuple[bool, object] = (True, fn(job))
    except Exception as exc:  # every failure goes back to the coordinator
        outcome = (False, exc)
    try:
        writer.send(outcome)
    except Exception as exc:  # a result or an error that does not pickle
        writer.send((False, WorkerLost(f"a job's outcome could not travel back: {exc}")))
    writer.close()


class WorkerLost(CdnpackError):
    """A local worker process ended without a result (killed, out of memory)."""


def _worker_signals(mask: set[int | signal.Signals]) -> None:
    """A pool process leaves the terminal's foreground process group (a terminal's Ctrl-C is
    the coordinator's to handle, packager/interrupts.py, not a traceback per worker), and
    unwinds on SIGTERM, the coordinator's way to stop it (finally blocks run: its ffmpeg
    stopped, its temporary directory removed) instead of dying on the spot with its children
    left running. A SIGINT held since the fork (sent to the group it has just left) is
    dropped: the coordinator has it too, and stops the worker with SIGTERM."""
    own_process_group()
    signal.signal(signal.SIGTERM, _unwind)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # drops a pending one
    release_held(mask)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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
