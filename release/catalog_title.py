"""One title of a catalog, released in a process of its own: package, stamp its inputs, push (or
stage, probe, gate and publish when the catalog asks for probes), then publish release.json.

A title runs in its own process, in a session of its own, so the coordinator alone decides when
it stops: SIGTERM unwinds it like `cdnpack release` (the Dask tasks of its encode cancelled, its
ffmpeg stopped, its build directory removed, uploads in flight cancelled); a manifest is never
uploaded before the segments it names, and release.json (what marks the title published) goes up
last, after every object it lists. Its encode jobs run on the cluster (DaskExecutor), their
inputs and outputs meeting in this machine's work directory (a LocalCluster) or in an S3 staging
prefix (a remote cluster); segmenting, encryption and manifests run here, on the coordinator,
where the keys are.
"""

from __future__ import annotations

import copy
import ctypes
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cdn.objects import download, presigned_get
from cdn.publish import PushRequest, push
from cdn.s3 import Connection, S3Location, client, origin_error
from cluster.connect import Cluster, ClusterLink, attach
from cluster.executor import DaskExecutor
from cluster.stage import S3Stage
from packager.encoding.chunks import parse_chunks
from packager.errors import BudgetError, CdnpackError
from packager.interrupts import ignore as ignore_interrupts
from packager.interrupts import install as install_interrupts
from packager.output.pipeline import PackageRequest, package
from packager.output.release import RELEASE_NAME, stamp_inputs
from release.catalog_state import TitleState, clear_failure
from release.flow import refuse_unlicensed

log = logging.getLogger(__name__)

#: Under a title's destination: a remote cluster's encode stage (its jobs' outputs and the
#: title's local inputs, for the workers to read), emptied when the title's encode ends.
STAGE_PREFIX = "_cdnpack/stage"
SOURCES = "sources"  # under the stage: the title's local inputs, for remote workers
#: (title id, stage, done, total): a title's progress, as its process reports it.
TitleProgress = Callable[[str, str, float, float], None]


@dataclass(frozen=True)
class TitleJob:
    """Everything a title's process needs (pickled to it: plain data, no key)."""

    state: TitleState
    cluster: ClusterLink  # where its encode jobs run
    connection: Connection
    manifest_max_age: int
    distribution: str | None
    wait: bool
    work_dir: Path
    keystore: Path | None
    #: A remote cluster's staging store (None: DESTINATION/_cdnpack/stage).
    stage: S3Location | None = None


@dataclass(frozen=True)
class TitlePublished:
    id: str
    destination: str
    seconds: float
    uploaded: int  # objects
    bytes: int  # uploaded
    renditions: int
    chunks: int  # the video encoded in this many chunks (1: whole)


def release_title(job: TitleJob, progress: TitleProgress | None = None) -> TitlePublished:
    started = time.perf_counter()
    spec = job.state.spec
    s3 = client(job.connection)

    def sink(stage: str, done: float, total: float) -> None:
        if progress is not None:
            progress(spec.id, stage, done, total)

    refuse_unlicensed(spec.rights, datetime.now(UTC))  # before anything is encoded
    job.work_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"cdnpack-{spec.id}-", dir=job.work_dir))
    try:
        source = Path(spec.source)
        if spec.remote_source:  # this machine probes it and plans its segments
            sink("download", 0, 1)
            source = work / f"source{PurePosixPath(spec.source).suffix}"
            download(s3, spec.source, source)
        output = work / "release"
        with attach(job.cluster) as cluster, _title_stage(job, cluster) as stage:
            try:
                request = PackageRequest(
                    source=source, output=output, ladder=spec.ladder,
                    segment_duration=spec.segment_duration, formats=spec.formats,
                    codecs=spec.codecs, title=spec.title, rights=spec.rights,
                    encryption=_encryption(job, output), chunks=parse_chunks(spec.chunks),
                    locations=_locations(job, s3, source, stage, sink) if stage else ())
                packaged = package(request, sink, executor=DaskExecutor(cluster), stage=stage)
            except CdnpackError as exc:  # name the source as the catalog does, not our copy
                if not spec.remote_source or str(source) not in str(exc):
                    raise
                renamed = copy.copy(exc)  # its type and exit code, the catalog's words
                renamed.args = (str(exc).replace(str(source), spec.source),)
                raise renamed from None
        stamp_inputs(output, job.state.inputs)
        push_request = PushRequest(output, spec.destination, job.connection,
                                   manifest_max_age=job.manifest_max_age,
                                   distribution=job.distribution, wait=job.wait)
        pushed = _publish(job, push_request, work, sink)
        _put_release_json(s3, job, output)
        clear_failure(s3, job.state)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return TitlePublished(spec.id, str(spec.destination), time.perf_counter() - started,
                          len(pushed), sum(b for _, b in pushed),
                          len(packaged.release.renditions), packaged.chunks)


def _stage_location(job: TitleJob) -> S3Location:
    """A remote cluster's staging prefix for this title: `--stage`/ID, else DESTINATION/
    _cdnpack/stage."""
    spec = job.state.spec
    if job.stage is not None:  # shared by the catalog's titles: one prefix each
        return S3Location(job.stage.bucket, job.stage.key(spec.id))
    return S3Location(spec.destination.bucket, spec.destination.key(STAGE_PREFIX))


@contextmanager
def _title_stage(job: TitleJob, cluster: Cluster) -> Iterator[S3Stage | None]:
    """Where the encode's inputs and outputs meet. A LocalCluster's workers are on this
    machine: None, the package's own work directory (packager.executor.DirectoryStage). A
    remote cluster's reach the title's S3 staging prefix, which is emptied before (what a
    killed attempt left) and after the title's encode, however it ends: clear media and
    copies of the inputs do not outlive the encode."""
    if cluster.local:
        yield None
        return
    stage = S3Stage(_stage_location(job), job.connection)
    stage.delete_prefix("")
    try:
        yield stage
    except BaseException:
        with suppress(CdnpackError):  # the title's own failure is the one to report
            stage.delete_prefix("")
        raise
    stage.delete_prefix("")  # failing here fails the title: its next attempt clears it


def _locations(job: TitleJob, s3: Any, source: Path, stage: S3Stage,
               sink: Callable[[str, float, float], None]) -> tuple[tuple[str, str], ...]:
    """Where a remote worker reads each input its jobs read (the source, a dub or a
    description): an S3 source by a presigned URL of the object itself (ffmpeg reads it by
    ranged GETs, no copy); a file of this machine staged once under its sha256 and read by a
    presigned URL of that (a worker never needs this machine's disk)."""
    spec = job.state.spec
    found: list[tuple[str, str]] = []
    if spec.remote_source:
        found.append((str(source), presigned_get(s3, spec.source)))
    inputs = [] if spec.remote_source else [source]
    inputs += [f.path for f in spec.title.side_files if f.kind == "audio"]
    versions = {**job.state.inputs.files, spec.source: job.state.inputs.source_version}
    for done, path in enumerate(inputs):
        sink("stage inputs", done, len(inputs))
        digest = versions.get(str(path), "").removeprefix("sha256:") or path.name
        key = f"{SOURCES}/{digest}{path.suffix}"
        stage.put(path, key)
        found.append((str(path), stage.url(key)))
    return tuple(found)


def _encryption(job: TitleJob, output: Path) -> Any:
    spec = job.state.spec
    if spec.encrypt is None:
        return None
    from packager.keys.source import package_encryption  # noqa: PLC0415

    return package_encryption(spec.encrypt, spec.keys, output, drm=spec.drm,
                              per_class=spec.per_class, keystore=job.keystore,
                              content_id=spec.id)


def _publish(job: TitleJob, request: PushRequest, work: Path,
             sink: Callable[[str, float, float], None]) -> list[tuple[str, int]]:
    """Push (verified), or with `probe:` stage, probe, gate and publish as `cdnpack release`;
    the (key, bytes) of every object uploaded."""
    probe = job.state.spec.probe
    if probe is None:
        result = push(request, sink)
        return [(p.key, p.bytes) for p in result.uploaded]
    from probes.config import default_config_path, load_config  # noqa: PLC0415
    from release.flow import RolloutRequest, check_regions, rollout  # noqa: PLC0415

    config = load_config(probe.config or default_config_path())
    check_regions(config, probe.regions)
    rolled = rollout(RolloutRequest(request, config, probe.regions, work / "probes"), sink)
    if rolled.published is None:
        missed = len(rolled.verdict.violations)
        raise BudgetError(f"gate: {missed} budget(s) missed; manifests not published")
    return [(p.key, p.bytes) for p in (*rolled.staged.uploaded, *rolled.published.uploaded)]


def _put_release_json(s3: Any, job: TitleJob, output: Path) -> None:
    """release.json, last: it marks the title published (release/catalog_state.py)."""
    destination = job.state.spec.destination
    try:
        s3.put_object(Bucket=destination.bucket, Key=destination.key(RELEASE_NAME),
                      Body=(output / RELEASE_NAME).read_bytes(),
                      ContentType="application/json", CacheControl="no-cache")
    except (ClientError, BotoCoreError, OSError) as exc:
        raise origin_error(exc, f"cannot publish {destination}/{RELEASE_NAME}") from None


# --- the title's process --------------------------------------------------------------------

# A title's process sends ("progress", id, stage, done, total), then ("published", id,
# TitlePublished) or ("failed", id, reason, exit code, error class name).

#: Seconds between two progress messages of one stage.
PROGRESS_EVERY = 0.25


def title_process(job: TitleJob, messages: Any, verbose: bool) -> None:
    """The entry point of a title's process (multiprocessing, spawned)."""
    # Started with SIGINT ignored (sigint_ignored_by_children), in a session of its own: a
    # terminal's Ctrl-C reaches the coordinator alone, which stops us with SIGTERM.
    os.setsid()
    _stop_with_parent()
    install_interrupts()  # SIGTERM unwinds as Ctrl-C does (packager/interrupts.py)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        stream=sys.stderr, format=f"{job.state.spec.id}: %(message)s")
    title = job.state.spec.id
    message: tuple[Any, ...]
    try:
        try:
            message = ("published", title, release_title(job, _Throttled(messages)))
        except CdnpackError as exc:
            message = ("failed", title, str(exc), exc.exit_code, type(exc).__name__)
        except Exception as exc:
            log.debug("internal error", exc_info=True)
            message = ("failed", title, f"internal error: {type(exc).__name__}: {exc}", 4,
                       type(exc).__name__)
        # Done: a stop sent from now on (the coordinator stopping the run because of another
        # title) would only break the saying so and the exit (multiprocessing's own clean-up).
        ignore_interrupts()
        messages.put(message)
    except KeyboardInterrupt:
        return  # stopped by the coordinator: it knows


class _Throttled:
    """Progress to the coordinator at most every PROGRESS_EVERY seconds per stage (an upload
    reports every 8 KiB), and always a stage's end."""

    def __init__(self, messages: Any) -> None:
        self._messages = messages
        self._sent: dict[str, float] = {}

    def __call__(self, title: str, stage: str, done: float, total: float) -> None:
        now = time.monotonic()
        if done < total and now - self._sent.get(stage, 0.0) < PROGRESS_EVERY:
            return
        self._sent[stage] = now
        self._messages.put(("progress", title, stage, done, total))


def _stop_with_parent() -> None:
    """Linux: SIGTERM this process when the coordinator dies (even by SIGKILL), so that no
    title outlives it; elsewhere the coordinator's own way out stops its titles."""
    PR_SET_PDEATHSIG = 1  # prctl.h
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
