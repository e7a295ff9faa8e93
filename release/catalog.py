"""`catalog run`: every title of a catalog released, as `cdnpack release` releases one; titles
concurrently on the coordinator (each in a process of its own), their encode jobs on the cluster.

Resume is the default: a title whose published release.json records its current inputs is up to
date and left alone (release/catalog_state.py), so running a finished catalog again uploads
nothing, and a run cut short (Ctrl-C, a lost scheduler) is finished by the next. A title that
fails does not stop the others: its one-line reason is recorded beside its destination and the
run goes on. Two failures stop the whole run instead, because they are no title's fault: the
scheduler going away (exit 3) and an interrupt (Ctrl-C or SIGTERM: every title's process is told
to stop, which cancels its tasks and uploads; nothing is published half-way).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cdn.s3 import Connection, S3Location, client
from cluster.connect import Cluster, ClusterError, ClusterSpec, connect
from packager.errors import CdnpackError, InputError
from packager.interrupts import sigint_ignored_by_children
from release.catalog_file import Catalog
from release.catalog_state import (
    FAILED,
    UP_TO_DATE,
    TitleState,
    plan_catalog,
    record_failure,
)
from release.catalog_title import TitleJob, TitlePublished, title_process

log = logging.getLogger(__name__)

PUBLISHED = "published"
#: Seconds a title's process has to unwind after SIGTERM before it is killed.
STOP_GRACE = 20.0


@dataclass(frozen=True)
class CatalogRequest:
    catalog: Catalog
    cluster: ClusterSpec
    connection: Connection
    max_parallel: int = 2
    manifest_max_age: int = 30
    distribution: str | None = None
    wait: bool = False  # for the invalidation
    work_dir: Path | None = None  # where titles are built (default: the system's temp dir)
    #: A remote cluster's staging store, a prefix per title (default: DESTINATION/_cdnpack/
    #: stage of each title).
    stage: S3Location | None = None
    keystore: Path | None = None
    force: bool = False  # release up-to-date titles again
    verbose: bool = False


@dataclass(frozen=True)
class TitleOutcome:
    id: str
    state: str  # PUBLISHED, UP_TO_DATE or FAILED
    destination: str
    reason: str = ""
    exit_code: int = 0
    published: TitlePublished | None = None


@dataclass(frozen=True)
class CatalogResult:
    catalog: Path
    outcomes: list[TitleOutcome]
    cluster: str  # where the encode jobs ran; "" when no title was to do
    seconds: float

    @property
    def failed(self) -> list[TitleOutcome]:
        return [o for o in self.outcomes if o.state == FAILED]


class CatalogFailed(CdnpackError):
    """Titles failed (each recorded, the others released): exit 1, naming each."""

    exit_code = 1

    def __init__(self, failed: list[TitleOutcome]) -> None:
        names = "; ".join(f"{o.id} ({o.reason})" for o in failed)
        super().__init__(f"{len(failed)} title(s) failed: {names}")


class CatalogProgress(Protocol):
    """What a run tells its watcher (render/catalog.py draws it)."""

    def planned(self, states: list[TitleState], todo: int) -> None: ...

    def started(self, title: str) -> None: ...

    def progress(self, title: str, stage: str, done: float, total: float) -> None: ...

    def finished(self, outcome: TitleOutcome) -> None: ...


def run_catalog(request: CatalogRequest, watcher: CatalogProgress | None = None) -> CatalogResult:
    started = time.perf_counter()
    if request.max_parallel < 1:
        raise InputError("--max-parallel must be at least 1")
    if request.stage is not None and request.cluster.local:
        raise InputError("--stage is for a --scheduler given by address; a LocalCluster's "
                         "workers meet in this machine's work directory")
    s3 = client(request.connection)
    states = plan_catalog(request.catalog, s3)
    todo = [s for s in states if request.force or s.state != UP_TO_DATE]
    if watcher:
        watcher.planned(states, len(todo))
    outcomes = {s.spec.id: TitleOutcome(s.spec.id, UP_TO_DATE, s.url)
                for s in states if s not in todo}
    where = ""
    if todo:
        with connect(request.cluster) as cluster:
            where = describe(cluster)
            outcomes |= _run_titles(todo, cluster, request, s3, watcher)
    return CatalogResult(request.catalog.path, [outcomes[s.spec.id] for s in states], where,
                         time.perf_counter() - started)


def describe(cluster: Cluster) -> str:
    kind = "LocalCluster" if cluster.local else "scheduler"
    return f"{kind} {cluster.address} ({cluster.workers} workers)"


def _run_titles(todo: list[TitleState], cluster: Cluster, request: CatalogRequest, s3: Any,
                watcher: CatalogProgress | None) -> dict[str, TitleOutcome]:
    context = multiprocessing.get_context("spawn")
    messages: Any = context.Queue()
    pending = deque(todo)
    running: dict[str, tuple[Any, TitleState]] = {}
    outcomes: dict[str, TitleOutcome] = {}
    work_dir = request.work_dir or Path(tempfile.gettempdir())
    try:
        while pending or running:
            while pending and len(running) < request.max_parallel:
                state = pending.popleft()
                job = TitleJob(state, cluster.link, request.connection, request.manifest_max_age,
                               request.distribution, request.wait, work_dir, request.keystore,
                               request.stage)
                process = context.Process(target=title_process, name=f"cdnpack {state.spec.id}",
                                          args=(job, messages, request.verbose))
                with sigint_ignored_by_children():  # the coordinator's Ctrl-C, not the title's
                    process.start()
                running[state.spec.id] = (process, state)
                if watcher:
                    watcher.started(state.spec.id)
            try:
                message = messages.get(timeout=0.5)
            except queue.Empty:
                message = None
            if message is not None:
                _handle(message, running, outcomes, s3, watcher)
            for title, (process, _) in list(running.items()):
                if process.is_alive() or title in outcomes:
                    continue
                with contextlib.suppress(queue.Empty):  # its last words may still be queued
                    while title not in outcomes:
                        _handle(messages.get(timeout=0.5), running, outcomes, s3, watcher)
                if title not in outcomes:
                    reason = f"its process ended without a word (exit {process.exitcode})"
                    _handle(("failed", title, reason, 4, "died"), running, outcomes, s3, watcher)
            for title in [t for t in running if t in outcomes]:
                running.pop(title)[0].join()
    finally:
        _stop([process for process, _ in running.values()])
        messages.cancel_join_thread()
        messages.close()
    return outcomes


def _handle(message: tuple[Any, ...], running: dict[str, tuple[Any, TitleState]],
            outcomes: dict[str, TitleOutcome], s3: Any, watcher: CatalogProgress | None) -> None:
    kind, title = message[0], message[1]
    if kind == "progress":
        if watcher:
            watcher.progress(title, *message[2:])
        return
    state = running[title][1]
    if kind == "published":
        outcome = TitleOutcome(title, PUBLISHED, state.url, published=message[2])
    else:
        reason, exit_code, error = message[2], message[3], message[4]
        if error == ClusterError.__name__:
            raise ClusterError(reason)  # no title's fault: the whole run stops, exit 3
        with contextlib.suppress(CdnpackError):  # an origin that refuses it refuses the title
            record_failure(s3, state, reason, exit_code)
        outcome = TitleOutcome(title, FAILED, state.url, reason, exit_code)
    outcomes[title] = outcome
    if watcher:
        watcher.finished(outcome)


def _stop(processes: list[Any]) -> None:
    """SIGTERM every title still running (each unwinds: tasks cancelled, children stopped,
    uploads cancelled), then SIGKILL what has not ended within STOP_GRACE."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE
    for process in processes:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
