"""The local executor runs a job function over picklable jobs in order of the jobs, in this
process or a pool; a failing job fails the map; a directory stage never shows half a file."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from packager.executor import DirectoryStage, LocalExecutor, WorkerLost


def square_and_pid(n: int) -> tuple[int, int]:
    return n * n, os.getpid()


def fail_on_three(n: int) -> int:
    if n == 3:
        raise ValueError("three")
    return n


def die_on_two(n: int) -> int:
    if n == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.2)
    return n


@pytest.mark.parametrize("workers", [1, 2])
def test_results_come_back_in_the_jobs_order(workers: int) -> None:
    seen: list[tuple[float, int]] = []
    results = LocalExecutor(workers).map(square_and_pid, list(range(8)),
                                         lambda done, total: seen.append((done, total)))
    assert [r for r, _ in results] == [n * n for n in range(8)]
    assert seen == [(k, 8) for k in range(1, 9)]
    pids = {pid for _, pid in results}
    assert (pids == {os.getpid()}) == (workers == 1)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_job_fails_the_map_with_its_error(workers: int) -> None:
    with pytest.raises(ValueError, match="three"):
        LocalExecutor(workers).map(fail_on_three, [1, 2, 3, 4])


def test_a_worker_killed_in_a_job_fails_the_map_in_one_line() -> None:
    """kill -9 of a local worker (or the kernel's OOM killer): an error naming the job, at
    once, never a map waiting for a result that cannot come."""
    with pytest.raises(WorkerLost, match=r"job 3 of 4: its worker process died \(exit -9\)"):
        LocalExecutor(2).map(die_on_two, [0, 1, 2, 3])


def test_a_directory_stage_puts_and_gets_by_key(tmp_path: Path) -> None:
    stage = DirectoryStage(tmp_path / "stage")
    source = tmp_path / "fragment.mp4"
    source.write_bytes(b"moof" * 1000)
    stage.put(source, "title/chunk_00001/video_720p.mp4")
    assert [p.name for p in (tmp_path / "stage/title/chunk_00001").iterdir()] == [
        "video_720p.mp4"]
    back = tmp_path / "back" / "v.mp4"
    stage.get("title/chunk_00001/video_720p.mp4", back)
    assert back.read_bytes() == source.read_bytes()
    stage.delete_prefix("title")
    assert not (tmp_path / "stage/title").exists()
