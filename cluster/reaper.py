"""Stopping a cancelled job's children on its worker: Dask cancels a running task by dropping
its result, while the ffmpeg it started would encode on for minutes.

A worker plugin, registered by the coordinator on connect: when one of our tasks leaves the
executing state without finishing (cancelled by Ctrl-C, a failed map or a lost client) on a worker
that runs one task at a time, every child process of that worker is the task's and is killed; so
is every child when the worker closes. A worker with more threads cannot tell whose child is
whose: its cancelled tasks run to their end and their results are dropped (docs/catalog.md).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from distributed.diagnostics.plugin import WorkerPlugin

if TYPE_CHECKING:
    from distributed import Client, Worker

log = logging.getLogger(__name__)

#: Every task the executor submits has a key starting with this (cluster/executor.py).
TASK_PREFIX = "cdnpack-"


class ChildReaper(WorkerPlugin):
    name = "cdnpack-child-reaper"

    def setup(self, worker: Worker) -> None:
        self._worker = worker

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        name = key[0] if isinstance(key, tuple) else key
        if (start == "executing" and finish in ("released", "cancelled")
                and str(name).startswith(TASK_PREFIX) and self._worker.state.nthreads == 1):
            kill_children()

    def teardown(self, worker: Worker) -> None:
        kill_children()


def kill_children() -> None:
    """SIGKILL every descendant of this process (a job's ffmpeg and its helpers)."""
    import psutil  # noqa: PLC0415 (distributed's own dependency; workers only)

    for child in psutil.Process(os.getpid()).children(recursive=True):
        try:
            child.kill()
        except psutil.Error:
            continue
        log.info("stopped child %d of a cancelled job", child.pid)


def register_reaper(client: Client) -> None:
    client.register_plugin(ChildReaper())
