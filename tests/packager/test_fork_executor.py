"""The fork executor: this process and forked copies share the jobs (taken from one queue),
results come back in the jobs' order, the first failure fails the map, a worker that dies
fails it too, and no worker outlives the map whichever way it ends."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from packager.errors import CdnpackError, InputError
from packager.fork_executor import ForkExecutor

PARENT = os.getpid()


def all_take_one(room: Path, workers: int) -> Callable[[], None]:
    """A step for jobs: the first job of each worker waits until every worker has taken one
    (so that each worker provably works, however the machine schedules them)."""
    def step() -> None:
        (room / str(os.getpid())).touch()
        deadline = time.monotonic() + 20
        while len(list(room.iterdir())) < workers and time.monotonic() < deadline:
            time.sleep(0.002)
    return step


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_results_come_back_in_the_jobs_order_and_every_worker_takes_some(
    workers: int, tmp_path: Path
) -> None:
    step = all_take_one(tmp_path, workers)

    def square(n: int) -> tuple[int, int]:
        step()
        return n * n, os.getpid()

    seen: list[tuple[int, int]] = []
    results = ForkExecutor(workers).map(square, list(range(12)),
                                        lambda done, total: seen.append((done, total)))
    assert [r for r, _ in results] == [n * n for n in range(12)]
    assert sorted(seen) == [(k, 12) for k in range(1, 13)]
    pids = {pid for _, pid in results}
    assert PARENT in pids  # this process works too
    assert len(pids) == workers


def test_jobs_are_inherited_not_pickled(tmp_path: Path) -> None:
    """Jobs holding what pickle refuses (lambdas) run in a forked worker all the same."""
    step = all_take_one(tmp_path, 2)
    jobs = [lambda n=n: (n, os.getpid()) for n in range(6)]

    def call(job: Callable[[], tuple[int, int]]) -> tuple[int, int]:
        step()
        return job()

    results = ForkExecutor(2).map(call, jobs)
    assert [n for n, _ in results] == list(range(6))
    assert len({pid for _, pid in results}) == 2


@pytest.mark.parametrize("where", ["parent", "child"])
def test_the_first_failure_fails_the_map_with_its_error(where: str, tmp_path: Path) -> None:
    """In this process or in a worker, a job's error reaches the caller as it was raised
    (the same class, so the CLI's exit code), and no worker is left running."""
    step = all_take_one(tmp_path, 2)

    def fail_there(n: int) -> int:
        step()
        if (os.getpid() == PARENT) == (where == "parent"):
            raise InputError(f"job {n} is bad")
        return n

    with pytest.raises(InputError, match=r"job \d+ is bad"):
        ForkExecutor(2).map(fail_there, list(range(6)))
    assert not _children()


def test_a_worker_that_dies_fails_the_map(tmp_path: Path) -> None:
    step = all_take_one(tmp_path, 2)

    def die(n: int) -> int:
        step()
        if os.getpid() != PARENT:
            os.kill(os.getpid(), signal.SIGKILL)
        return n

    with pytest.raises(CdnpackError, match="worker process ended"):
        ForkExecutor(2).map(die, list(range(8)))
    assert not _children()


def test_an_interrupt_stops_every_worker(tmp_path: Path) -> None:
    """Ctrl-C while jobs run (here: in this process's own job) leaves no worker behind, and
    the worker busy with a long job is ended, not awaited."""
    step = all_take_one(tmp_path, 2)

    def slow(n: int) -> int:
        step()
        if os.getpid() == PARENT:
            raise KeyboardInterrupt
        time.sleep(60)
        return n

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        ForkExecutor(2).map(slow, list(range(4)))
    assert time.monotonic() - started < 30
    assert not _children()


def _children() -> list[int]:
    """Processes whose parent is this one (zombies included: a reaped child is gone)."""
    mine = []
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            mine.append(int(status.parent.name))
    return mine
