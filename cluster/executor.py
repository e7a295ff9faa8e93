"""The packager's Executor on Dask: each job a task, results in the jobs' order.

What a Dask user expects of it: jobs are submitted at once (the scheduler places them, largest
first when the packager orders them so); progress is reported as each finishes; the first failure
cancels the rest and is raised here as the job raised it (an InputError stays one line, exit 2);
Ctrl-C and SIGTERM cancel every task (cluster/reaper.py stops their children on the workers),
and the map ends once none of them runs on any worker, so none writes to the stage after it; a
worker lost in the middle of a job is Dask's to handle: the scheduler runs the job again
elsewhere (a job writes only its own outputs, under names its job gives, so a second run is
safe), and gives up after `distributed.scheduler.allowed-failures` deaths (KilledWorker,
reported in one line). The scheduler itself going away fails the map with ClusterError (exit 3),
and so does a cluster left without any worker for the link's `worker_wait` (Dask itself would
wait forever); workers cut off from their scheduler may still finish a job's writes, which the
title's next attempt clears (release/catalog_title.py).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any, TypeVar, cast

from cluster.connect import Cluster, ClusterError
from cluster.keyguard import check_jobs
from cluster.reaper import TASK_PREFIX
from packager.errors import CdnpackError
from packager.executor import JobProgress

if TYPE_CHECKING:
    from distributed import Future, Worker

J = TypeVar("J")
R = TypeVar("R")

#: Seconds a map that failed or was interrupted waits for its cancelled tasks to stop running
#: on the workers (the coordinator gives a title's process 20 s to unwind).
CANCEL_WAIT = 10.0


class DaskExecutor:
    """Runs job functions on the workers of a connected Cluster (cluster/connect.py)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    @property
    def workers(self) -> int:
        return self.cluster.workers

    def map(self, fn: Callable[[J], R], jobs: Sequence[J],
            progress: JobProgress | None = None) -> list[R]:
        if not jobs:
            return []
        check_jobs(fn, jobs, self.cluster.trusted, self.cluster.address)
        client = self.cluster.client
        batch = f"{TASK_PREFIX}{getattr(fn, '__name__', 'job')}-{uuid.uuid4().hex[:12]}"
        futures: list[Future[Any]] = []
        watch = _Workerless(self.cluster)
        try:
            futures = [client.submit(fn, job, key=f"{batch}-{index}", pure=False)
                       for index, job in enumerate(jobs)]
            watch.start(futures)
            return cast("list[R]", self._gather(futures, progress, watch))
        except BaseException:
            self._cancel(futures, batch)
            raise
        finally:
            watch.stop()

    def _gather(self, futures: list[Future[Any]], progress: JobProgress | None,
                watch: _Workerless) -> list[Any]:
        from distributed import as_completed  # noqa: PLC0415
        from distributed.scheduler import KilledWorker  # noqa: PLC0415

        position = {future.key: index for index, future in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        for done, future in enumerate(as_completed(futures, loop=self.cluster.client.loop), 1):
            if watch.reason:
                raise ClusterError(watch.reason)
            if future.status == "cancelled" or self.cluster.client.status != "running":
                raise self._lost()
            try:
                results[position[future.key]] = future.result()
            except KilledWorker as exc:
                raise ClusterError(
                    f"job {position[future.key]} was running on every worker that died under "
                    f"it ({exc.last_worker.address if exc.last_worker else 'unknown'} last): "
                    "a job that kills its worker (out of memory?) is not retried again"
                ) from None
            except CdnpackError:
                raise
            except (OSError, TimeoutError) as exc:
                if self.cluster.client.status != "running":
                    raise self._lost() from None
                raise ClusterError(f"a job's result did not arrive: {exc}") from None
            if progress:
                progress(done, len(futures))
        return results

    def _lost(self) -> ClusterError:
        return ClusterError(f"lost the Dask scheduler at {self.cluster.address} while it ran "
                            "our jobs")

    def _cancel(self, futures: list[Future[Any]], batch: str) -> None:
        """Cancel what runs or waits, and forget what finished (a failed task's error stays on
        the scheduler while a future names it); then wait until none of the batch runs on any
        worker. Dask cancels a running task by dropping its result, so without the wait a job
        that was putting its outputs would finish writing them after the coordinator emptied
        the stage (cluster/reaper.py stops a job's ffmpeg at once, so the wait is short)."""
        client = self.cluster.client
        try:
            if futures and client.status == "running":
                client.cancel(futures, force=True)
                deadline = time.monotonic() + CANCEL_WAIT
                while any(client.run(running_tasks, batch, on_error="ignore").values()) \
                        and time.monotonic() < deadline:
                    time.sleep(0.1)
        except (OSError, TimeoutError, RuntimeError):
            pass  # the scheduler is gone: nothing left to cancel, nothing to ask
        futures.clear()


def running_tasks(batch: str, dask_worker: Worker) -> list[str]:
    """On a worker: the tasks of `batch` that still occupy a thread (cancelled ones too, until
    their function returns)."""
    return [str(ts.key) for ts in dask_worker.state.all_running_tasks
            if str(ts.key).startswith(batch)]


class _Workerless:
    """While a map waits: a cluster left without any worker for the link's `worker_wait`
    seconds (all of them lost, none started) fails the map in one line instead of waiting
    forever; the tasks are cancelled, which wakes the map."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.reason = ""

    def start(self, futures: list[Future[Any]]) -> None:
        self._thread = threading.Thread(target=self._watch, args=(list(futures),), daemon=True,
                                        name="cdnpack-workerless")
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _watch(self, futures: list[Future[Any]]) -> None:
        client, limit = self._cluster.client, self._cluster.link.worker_wait
        since: float | None = None
        while not self._done.wait(min(1.0, limit / 4)):
            try:
                workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
            except (OSError, TimeoutError, RuntimeError):
                return  # the scheduler is gone: the map reports it
            if workers:
                since = None
                continue
            since = since if since is not None else time.monotonic()
            if time.monotonic() - since >= limit:
                self.reason = (f"the Dask scheduler at {self._cluster.address} has had no "
                               f"worker for {limit:g} s; its jobs cannot run")
                with suppress(OSError, TimeoutError, RuntimeError):
                    client.cancel(futures, force=True)
                return
