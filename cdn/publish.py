"""The `push` job: a release to an S3 origin, segments before manifests, then invalidation."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from cdn import cloudfront as cf
from cdn.s3 import (
    CONTENT_TYPES,
    IMMUTABLE,
    Connection,
    OriginError,
    RemoteObject,
    S3Location,
    Transfer,
    Upload,
    client,
    delete_keys,
    file_digests,
    list_prefix,
    upload_all,
)
from packager.errors import InputError
from packager.release import RELEASE_NAME, Release, ReleaseFile, read_release

#: Upload order. A phase starts only when the one before is stored in full, so a reader who
#: polls the manifests never finds one that names an object not yet there.
PHASES: dict[str, int] = {
    "init": 1, "segment": 1, "media-playlist": 2, "multivariant": 3, "mpd": 3,
}
MANIFEST_ROLES = frozenset({"media-playlist", "multivariant", "mpd"})

T = TypeVar("T")

#: (stage, done, total): "upload" counts bytes, "objects" counts objects.
ProgressSink = Callable[[str, float, float], None]


@dataclass(frozen=True)
class PushRequest:
    release_dir: Path
    destination: S3Location
    connection: Connection = field(default_factory=Connection)
    transfer: Transfer = field(default_factory=Transfer)
    manifest_max_age: int = 30
    distribution: str | None = None
    wait: bool = False
    dry_run: bool = False
    prune: bool = False
    #: Stage only: segments and media playlists go up, the multivariant playlist and MPD are
    #: held back (action "hold") until a gate lets `release` publish them.
    stage: bool = False


@dataclass(frozen=True)
class PlannedObject:
    path: str
    key: str
    role: str
    phase: int
    bytes: int
    content_type: str
    cache_control: str
    action: str  # "upload", "skip" (already stored with the same ETag) or "hold" (staging)


@dataclass(frozen=True)
class PushResult:
    destination: str
    plan: list[PlannedObject]
    pruned: list[str] = field(default_factory=list)
    invalidations: list[cf.Invalidation] = field(default_factory=list)
    verified: bool = False
    seconds: float = 0.0

    @property
    def uploaded(self) -> list[PlannedObject]:
        return [p for p in self.plan if p.action == "upload"]


def push(request: PushRequest, progress: ProgressSink | None = None) -> PushResult:
    started = time.perf_counter()
    if request.prune and not request.destination.prefix:
        raise InputError("--prune needs a prefix: at a bucket root it would delete all else")
    if request.prune and request.stage:
        raise InputError("--prune deletes what the release no longer lists: not while staging")
    # The listing waits on the origin while reading and hashing the release waits on the
    # CPU: run them side by side. A refused tree is reported at once, without waiting for
    # the origin to answer.
    def connect_and_list() -> tuple[Any, dict[str, RemoteObject]]:
        s3 = client(request.connection)
        return s3, list_prefix(s3, request.destination)

    listing = _in_background(connect_and_list)
    release = read_release(request.release_dir)
    digests = check_tree(request.release_dir, release, request.transfer)
    s3, remote = listing()
    plan = make_plan(release, request, remote, digests)
    if request.stage:
        refuse_over_published(plan, remote)
    if request.dry_run:
        return PushResult(str(request.destination), plan, seconds=time.perf_counter() - started)
    _upload_in_phases(s3, request, release, plan, digests, progress)
    pruned: list[str] = []
    if request.prune:
        listed = {p.key for p in plan}
        pruned = sorted(key for key in remote if key not in listed)
        delete_keys(s3, request.destination.bucket, pruned)
    invalidations: list[cf.Invalidation] = []
    if request.distribution:
        changed = [p.key for p in plan if p.action == "upload" and p.role in MANIFEST_ROLES]
        changed += [k for k in pruned if PurePosixPath(k).suffix in (".m3u8", ".mpd")]
        if changed:
            invalidations = cf.invalidate(
                client(request.connection, "cloudfront"), request.distribution,
                cf.invalidation_paths(changed), request.wait,
            )
    return PushResult(
        str(request.destination), plan, pruned, invalidations, verified=True,
        seconds=time.perf_counter() - started,
    )


def _in_background(job: Callable[[], T]) -> Callable[[], T]:
    """Start job on a daemon thread (an abandoned job never holds up the exit); the returned
    function waits for its result or re-raises its error."""
    box: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            box.append(job())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True, name="cdnpack-list")
    thread.start()

    def result() -> T:
        thread.join()
        if errors:
            raise errors[0]
        return box[0]

    return result


def check_tree(root: Path, release: Release, transfer: Transfer) -> dict[str, str]:
    """Refuse anything that is not a public file of the release, exactly as listed.

    Keys and other secrets never reach a bucket: a file the listing does not name (a key
    file, a CPIX document, a stray log) stops the push, and so does a listed file whose
    role or type is not a public one. Sizes and sha256 are checked; returns path → ETag.
    """
    listed = {f.path: f for f in release.files}
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    unlisted = sorted(present - listed.keys() - {RELEASE_NAME})
    if unlisted:
        raise InputError(
            f"{root}: refusing to push files release.json does not list: "
            + ", ".join(unlisted[:5]) + (" ..." if len(unlisted) > 5 else "")
        )
    for entry in release.files:
        suffix = PurePosixPath(entry.path).suffix
        if entry.role not in PHASES or suffix not in CONTENT_TYPES:
            raise InputError(f"{root}: {entry.path} ({entry.role}) is not a public release file")
        if ".." in PurePosixPath(entry.path).parts or entry.path.startswith("/"):
            raise InputError(f"{root}: {entry.path} escapes the release directory")
        if entry.path not in present:
            raise InputError(f"{root}: {entry.path} is listed but missing")
    # Two threads: hashlib releases the GIL, and the machine this runs on has two cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda f: _digest(root, f, transfer), release.files)
        return dict(results)


def _digest(root: Path, entry: ReleaseFile, transfer: Transfer) -> tuple[str, str]:
    path = root / entry.path
    size = path.stat().st_size
    sha256, etag = file_digests(path, transfer)
    if size != entry.bytes or sha256 != entry.sha256:
        raise InputError(f"{root}: {entry.path} does not match release.json (size or sha256)")
    return entry.path, etag


def make_plan(
    release: Release, request: PushRequest, remote: dict[str, Any], etags: dict[str, str]
) -> list[PlannedObject]:
    manifest_cache = f"public, max-age={request.manifest_max_age}"
    plan = []
    for entry in sorted(release.files, key=lambda f: (PHASES[f.role], f.path)):
        key = request.destination.key(entry.path)
        stored = remote.get(key)
        unchanged = (
            stored is not None and stored.size == entry.bytes and stored.etag == etags[entry.path]
        )
        plan.append(
            PlannedObject(
                path=entry.path,
                key=key,
                role=entry.role,
                phase=PHASES[entry.role],
                bytes=entry.bytes,
                content_type=CONTENT_TYPES[PurePosixPath(entry.path).suffix],
                cache_control=manifest_cache if entry.role in MANIFEST_ROLES else IMMUTABLE,
                action="skip" if unchanged else (
                    "hold" if request.stage and PHASES[entry.role] == 3 else "upload"),
            )
        )
    return plan


def refuse_over_published(plan: list[PlannedObject], remote: dict[str, RemoteObject]) -> None:
    """Staging must not touch a prefix that already publishes another release: its players
    would fetch our new segments and media playlists under names their manifests know
    (segments are cached as immutable, so a CDN would mix the two for a year)."""
    for item in plan:
        if item.action == "hold" and item.key in remote:
            raise InputError(
                f"{item.key} already publishes a different release: stage a new release "
                "under a new prefix (segment names are immutable)"
            )


def _upload_in_phases(
    s3: Any,
    request: PushRequest,
    release: Release,
    plan: list[PlannedObject],
    etags: dict[str, str],
    progress: ProgressSink | None,
) -> None:
    """Upload phase by phase; a phase is complete only when S3's answers prove every object
    of it stored with our bytes, so a manifest never goes up over a corrupt segment.
    (Skipped objects were proven by the listing that planned the push.)"""
    todo = [p for p in plan if p.action == "upload"]
    total_bytes = sum(p.bytes for p in todo)
    sent = 0
    objects = 0
    sha = {f.path: f.sha256 for f in release.files}

    def on_bytes(n: int) -> None:
        nonlocal sent
        sent += n
        if progress:
            progress("upload", sent, total_bytes)

    def on_done(item: Upload) -> None:
        nonlocal objects
        objects += 1
        if progress:
            progress("objects", objects, len(todo))

    for phase in sorted({p.phase for p in todo}):
        uploads = [
            Upload(
                path=request.release_dir / p.path,
                key=p.key,
                size=p.bytes,
                extra_args={
                    "ContentType": p.content_type,
                    "CacheControl": p.cache_control,
                    # S3 verifies this on receipt (additional checksums); kept with the object.
                    "ChecksumAlgorithm": "SHA256",
                    "Metadata": {"sha256": sha[p.path]},
                },
            )
            for p in todo
            if p.phase == phase
        ]
        answered = upload_all(s3, request.destination.bucket, uploads, request.connection,
                              request.transfer, on_bytes, on_done)
        verify([p for p in todo if p.phase == phase], answered, etags)


def verify(uploaded: list[PlannedObject], answered: dict[str, str], etags: dict[str, str]) -> None:
    """Each upload's answer from S3 carries the ETag (MD5) of the bytes it stored."""
    for item in uploaded:
        etag = answered.get(item.key)
        if etag is None:
            raise OriginError(f"verify: S3 never acknowledged {item.key}")
        if etag != etags[item.path]:
            raise OriginError(f"verify: {item.key} was stored with different bytes (ETag {etag})")
