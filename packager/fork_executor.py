"""An Executor (packager/executor.py) whose workers are this process and forked copies of it.

Cutting and encrypting a track is a fraction of a second of work per core, so what a pool costs
to start shows: a spawned or forkserver worker imports the packager again (about 0.1 s), a
process pool pickles every job (a track's sample tables) to each worker and leaves this process
waiting. Here the jobs and the job function are inherited by fork, never pickled; this process
works through the jobs too; and the jobs are handed out from one pipe holding their numbers
(4-byte reads from a pipe are atomic), so whoever is free takes the next one and the cores finish
together. Only results travel, pickled, through a second pipe, read as they come by a thread (a
worker is never held up by a full pipe).

The first failure fails the map, as in LocalExecutor. A worker that dies (killed, out of memory)
fails it too. Whatever way the map ends (an error, Ctrl-C, SIGTERM), no worker outlives it:
they are killed and reaped before the caller cleans up what they were writing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import threading
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar, cast

from packager.errors import CdnpackError
from packager.interrupts import release_held, signals_held

J = TypeVar("J")
R = TypeVar("R")

#: Job numbers written to the queue pipe up front: its buffer (64 KiB on Linux) bounds them.
MAX_JOBS = 16_000
_NUMBER = struct.Struct("<I")


class ForkExecutor:
    """Runs a job function over jobs in this process and `workers - 1` forked copies of it;
    results in the jobs' order. Jobs are taken in the order given (put the longest first)."""

    def __init__(self, workers: int | None = None,
                 initializer: Callable[[], None] | None = None) -> None:
        """`initializer`: run first in each forked worker (as a process pool's is)."""
        self._workers = max(1, workers if workers is not None else os.cpu_count() or 1)
        self._initializer = initializer

    @property
    def workers(self) -> int:
        return self._workers

    def map(self, fn: Callable[[J], R], jobs: Sequence[J],
            progress: Callable[[int, int], None] | None = None) -> list[R]:
        if len(jobs) > MAX_JOBS:
            raise ValueError(f"at most {MAX_JOBS} jobs per map")
        forks = min(self._workers, len(jobs)) - 1
        if forks <= 0 or not hasattr(os, "fork"):
            results = []
            for done, job in enumerate(jobs, 1):
                results.append(fn(job))
                if progress:
                    progress(done, len(jobs))
            return results
        return _SharedMap(fn, jobs, progress, self._initializer).run(forks)


# pickle (4 ms to import) only where results travel: a run that never forks needs none.
def _pickle() -> Any:
    import pickle
    return pickle


class _SharedMap:
    def __init__(self, fn: Callable[[Any], Any], jobs: Sequence[Any],
                 progress: Callable[[int, int], None] | None,
                 initializer: Callable[[], None] | None = None) -> None:
        self.fn, self.jobs, self.progress = fn, jobs, progress
        self.initializer = initializer
        self.results: dict[int, Any] = {}
        self.failure: BaseException | None = None
        self.lock = threading.Lock()
        self.done = 0

    def run(self, forks: int) -> list[Any]:
        queue_r, queue_w = os.pipe()
        os.write(queue_w, b"".join(_NUMBER.pack(i) for i in range(len(self.jobs))))
        os.close(queue_w)
        results_r, results_w = os.pipe()
        children: list[int] = []
        reader: threading.Thread | None = None
        finished = False
        try:
            for _ in range(forks):
                with signals_held() as mask:
                    pid = os.fork()
                    if pid == 0:  # pragma: no cover (a worker: coverage does not follow it)
                        _work(self.fn, self.jobs, queue_r, results_r, results_w,
                              self.initializer, mask)
                children.append(pid)
            os.close(results_w)
            results_w = -1
            reader = threading.Thread(target=self._collect, args=(results_r,), daemon=True)
            reader.start()
            while self.failure is None and (number := _take(queue_r)) is not None:
                self._record(number, True, self.fn(self.jobs[number]))
            if self.failure is None:
                reader.join()  # every worker has reported and closed its end
                finished = True
        finally:
            if not finished:  # an error here or in a worker, Ctrl-C, SIGTERM: stop them all
                for pid in children:
                    _kill(pid)
            statuses = [os.waitpid(pid, 0)[1] for pid in children]
            if reader is not None:
                reader.join()
            for fd in (queue_r, results_r, results_w):
                if fd >= 0:
                    os.close(fd)
        if self.failure is not None:
            raise self.failure
        if len(self.results) != len(self.jobs):
            codes = sorted({os.waitstatus_to_exitcode(s) for s in statuses} - {0})
            raise CdnpackError(f"a worker process ended (exit {', '.join(map(str, codes))}) "
                               "before finishing its jobs")
        return [self.results[i] for i in range(len(self.jobs))]

    def _collect(self, fd: int) -> None:
        """The reader thread: every worker's reports, until the last worker closes its end."""
        with os.fdopen(fd, "rb", closefd=False) as stream:
            while True:
                try:
                    number, ok, value = _pickle().load(stream)
                except EOFError:
                    return
                self._record(number, ok, value)

    def _record(self, number: int, ok: bool, value: Any) -> None:
        with self.lock:
            if not ok:
                if self.failure is None:
                    self.failure = value
                return
            self.results[number] = value
            self.done += 1
            done = self.done
        if self.progress:
            self.progress(done, len(self.jobs))


def _take(queue: int) -> int | None:
    data = os.read(queue, _NUMBER.size)
    return _NUMBER.unpack(data)[0] if data else None


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _work(fn: Callable[[Any], Any], jobs: Sequence[Any], queue: int, theirs: int, results: int,
          initializer: Callable[[], None] | None, mask: set[int | signal.Signals]) -> NoReturn:
    """A forked worker: take job numbers until the queue is empty, report each result (or the
    first error) pickled, and leave with os._exit: nothing of the parent's (atexit, stdio
    buffers, `finally` blocks up the stack) runs here. It starts with SIGINT and SIGTERM held
    (interrupts.signals_held); they are let through only inside the `try`, where whatever they
    raise ends here."""
    code = 1
    try:
        os.close(theirs)
        release_held(mask)
        if initializer is not None:
            initializer()
        with os.fdopen(results, "wb") as out:
            while (number := _take(queue)) is not None:
                try:
                    report: tuple[int, bool, Any] = (number, True, fn(jobs[number]))
                except Exception as e:
                    report = (number, False, _picklable(e))
                _pickle().dump(report, out, -1)
                out.flush()
                if not report[1]:
                    break
        code = 0
    except BaseException:  # Ctrl-C or SIGTERM reached the worker too: the parent reports it
        pass
    finally:
        os._exit(code)


def _picklable(error: Exception) -> Exception:
    try:
        return cast("Exception", _pickle().loads(_pickle().dumps(error)))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
