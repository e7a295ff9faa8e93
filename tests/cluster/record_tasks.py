"""A scheduler preload for the tests (`dask scheduler --preload tests.cluster.record_tasks`):
every task the scheduler receives is appended, pickled as the scheduler sends it to a worker
(distributed.protocol.pickle of its run_spec), to the file named by CDNPACK_TASK_LOG. A test
then looks for key material in exactly what the workers were given."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin
from distributed.protocol.pickle import dumps


class TaskRecorder(SchedulerPlugin):
    name = "cdnpack-task-recorder"

    def __init__(self, path: Path) -> None:
        self.path = path

    def update_graph(self, scheduler: Any, *, keys: Any, tasks: list[Any],
                     **kwargs: Any) -> None:
        with self.path.open("ab") as log:
            for key in tasks:
                state = scheduler.tasks.get(key)
                if state is not None and state.run_spec is not None:
                    payload = dumps(state.run_spec)
                    log.write(struct.pack(">Q", len(payload)) + payload)


async def dask_setup(scheduler: Any) -> None:
    scheduler.add_plugin(TaskRecorder(Path(os.environ["CDNPACK_TASK_LOG"])))


def recorded(path: Path) -> list[bytes]:
    """The recorded payloads, one per task."""
    data = path.read_bytes() if path.exists() else b""
    payloads, offset = [], 0
    while offset < len(data):
        (size,) = struct.unpack_from(">Q", data, offset)
        payloads.append(data[offset + 8:offset + 8 + size])
        offset += 8 + size
    return payloads
