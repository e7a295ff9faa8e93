"""A scheduler preload for the tests (`dask scheduler --preload tests.cluster.record_tasks`):
every task the scheduler receives is appended, pickled as the scheduler sends it to a worker
(distributed.protocol.pickle of its run_spec), to the file named by CDNPACK_TASK_LOG; and where
each of our tasks ran: a line per worker it was given to and per worker that finished it, in
CDNPACK_TASK_LOG + ".where". A test then looks for key material in exactly what the workers
were given, and sees which worker ran (or ran again) each job."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin
from distributed.protocol.pickle import dumps

from cluster.reaper import TASK_PREFIX


class TaskRecorder(SchedulerPlugin):
    name = "cdnpack-task-recorder"

    def __init__(self, scheduler: Any, path: Path) -> None:
        self.scheduler = scheduler
        self.path = path

    def update_graph(self, scheduler: Any, *, keys: Any, tasks: list[Any],
                     **kwargs: Any) -> None:
        with self.path.open("ab") as log:
            for key in tasks:
                state = scheduler.tasks.get(key)
                if state is not None and state.run_spec is not None:
                    payload = dumps(state.run_spec)
                    log.write(struct.pack(">Q", len(payload)) + payload)

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish not in ("processing", "memory") or not str(key).startswith(TASK_PREFIX):
            return
        state = self.scheduler.tasks.get(key)
        if state is None:
            return
        workers = ([state.processing_on] if finish == "processing" else list(state.who_has))
        with where_path(self.path).open("a") as log:
            for worker in workers:
                if worker is not None:
                    log.write(f"{finish}\t{key}\t{worker.address}\n")


async def dask_setup(scheduler: Any) -> None:
    scheduler.add_plugin(TaskRecorder(scheduler, Path(os.environ["CDNPACK_TASK_LOG"])))


def recorded(path: Path) -> list[bytes]:
    """The recorded payloads, one per task."""
    data = path.read_bytes() if path.exists() else b""
    payloads, offset = [], 0
    while offset < len(data):
        (size,) = struct.unpack_from(">Q", data, offset)
        payloads.append(data[offset + 8:offset + 8 + size])
        offset += 8 + size
    return payloads


def where_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.where")


@dataclass(frozen=True)
class Placement:
    state: str  # "processing": given to the worker; "memory": finished there
    key: str
    worker: str  # its address


def placements(path: Path) -> list[Placement]:
    """Where our tasks were given and finished, in the scheduler's order."""
    where = where_path(path)
    lines = where.read_text().splitlines() if where.exists() else []
    return [Placement(*line.split("\t")) for line in lines]
