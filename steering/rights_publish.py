"""`cdnpack rights publish`: the rights function and its data on CloudFront.

The release must be on the origin already (`push` or `release`): every object it lists is
checked there first, so the function never routes a viewer to a manifest that is not stored.
So is the distribution: the behaviours serving the release must let the function see the
viewer's country and run no other viewer-request function. Then, in this order, each step only
after the one before succeeded:
  1. the KeyValueStore (created once per distribution) gets the release's keys (directories
     first, the release root last: a half-written release is answered 403, never let through)
     and loses the release's keys that no longer exist;
  2. the function (one per distribution: the code holds no release's data) is created or
     updated and published to LIVE;
  3. it is associated with the viewer-request event of the distribution's behaviours that
     serve the release.
`--function-file` and `--kvs-file` write the exact code and key/value pairs (the import
format) first; `--dry-run` writes them and calls nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdn.edge_functions import (
    Association,
    PublishedFunction,
    Store,
    StoreUpdate,
    associate,
    cloudfront,
    ensure_function,
    ensure_store,
    keyvaluestore,
    plan_association,
    store_keys,
    update_store,
)
from cdn.publish import PHASES
from cdn.s3 import Connection, S3Location, client, list_prefix
from packager.errors import InputError
from packager.files import write_atomic
from packager.output.release import read_release
from steering.rights_data import (
    DIRECTORY,
    MAX_STORE_BYTES,
    Entry,
    entries,
    import_document,
    release_path,
)

RUNTIME = "cloudfront-js-2.0"
TEMPLATE = Path(__file__).resolve().with_name("rights_function.js")
#: CloudFront Functions refuse code larger than this.
MAX_FUNCTION_BYTES = 10_240
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def function_code() -> str:
    code = TEMPLATE.read_text()
    if len(code.encode()) > MAX_FUNCTION_BYTES:  # a guard on our own file
        raise InputError(f"{TEMPLATE}: over CloudFront's {MAX_FUNCTION_BYTES} bytes")
    return code


def default_name(distribution: str) -> str:
    """One function and one store per distribution: `cdnpack-rights-<distribution id>`."""
    return f"cdnpack-rights-{distribution.lower()}"


@dataclass(frozen=True)
class RightsPublishRequest:
    release_dir: Path
    destination: S3Location
    distribution: str
    connection: Connection
    url_path: str | None = None  # the path viewers request the release under; default /PREFIX/
    function_file: Path | None = None
    kvs_file: Path | None = None
    dry_run: bool = False
    name: str | None = None  # of the function and its store; default default_name()

    @property
    def path(self) -> str:
        return self.url_path if self.url_path is not None else f"/{self.destination.prefix}/"


@dataclass(frozen=True)
class RightsPublishResult:
    request: RightsPublishRequest
    name: str
    code_bytes: int
    pairs: list[Entry]
    grants: list[str]
    store: Store | None = None
    update: StoreUpdate | None = None
    deleted: list[str] = field(default_factory=list)
    function: PublishedFunction | None = None
    association: Association | None = None

    def doc(self) -> dict[str, Any]:
        r = self.request
        return {
            "release": str(r.release_dir), "destination": str(r.destination),
            "url_path": release_path(r.path), "distribution": r.distribution,
            "dry_run": r.dry_run, "grants": self.grants, "runtime": RUNTIME,
            "function": {"name": self.name, "bytes": self.code_bytes,
                         "file": str(r.function_file) if r.function_file else None,
                         "arn": self.function.arn if self.function else None,
                         "created": bool(self.function and self.function.created),
                         "updated": bool(self.function and self.function.updated),
                         "published": bool(self.function and self.function.published)},
            "store": {"name": self.name, "arn": self.store.arn if self.store else None,
                      "created": bool(self.store and self.store.created),
                      "file": str(r.kvs_file) if r.kvs_file else None,
                      "keys": len(self.pairs), "bytes": sum(p.size for p in self.pairs),
                      "deleted": self.deleted,
                      "etag": self.update.etag if self.update else None,
                      "items": self.update.items if self.update else None,
                      "total_bytes": self.update.bytes if self.update else None,
                      "batches": self.update.batches if self.update else 0},
            "behaviours": self.association.behaviours if self.association else [],
            "associated": bool(self.association and self.association.changed),
        }

    def lines(self) -> list[str]:
        data = sum(p.size for p in self.pairs)
        out = [f"rights of {self.request.release_dir}: grants {', '.join(self.grants)}; "
               f"{len(self.pairs)} keys, {data} bytes of edge data "
               f"({data / MAX_STORE_BYTES:.2%} of a KeyValueStore); function "
               f"{self.code_bytes} bytes ({RUNTIME})"]
        if self.request.dry_run:
            return [*out, "dry run: nothing published"]
        assert self.store
        assert self.update
        assert self.function
        assert self.association
        out.append(f"key value store {self.name}{' (created)' if self.store.created else ''}: "
                   f"{self.update.items} keys, {self.update.bytes} bytes, version "
                   f"{self.update.etag}; {len(self.deleted)} stale keys deleted")
        state = ("created" if self.function.created else "updated" if self.function.updated
                 else "unchanged")
        out.append(f"function {self.name}: {state}"
                   f"{', published to LIVE' if self.function.published else ''}")
        out.append(f"distribution {self.association.distribution}: viewer requests of "
                   f"{', '.join(self.association.behaviours)} run it"
                   f"{'' if self.association.changed else ' (already)'}")
        return out


def publish_rights(request: RightsPublishRequest) -> RightsPublishResult:
    name = request.name or default_name(request.distribution)
    if not _NAME.match(name):
        raise InputError(f"{name!r}: a function name is 1-64 of a-z A-Z 0-9 _ -")
    if not request.path.startswith("/"):
        raise InputError(f"--url-path {request.path!r} must start with /")
    release = read_release(request.release_dir)
    pairs = entries(release, request.path)
    code = function_code()
    if request.function_file is not None:
        write_atomic(request.function_file, code)
    if request.kvs_file is not None:
        write_atomic(request.kvs_file, import_document(pairs))
    result = RightsPublishResult(request, name, len(code.encode()), pairs,
                                 [g.id for g in release.rights])
    if request.dry_run:
        return result
    _check_on_origin(request, release)
    cf = cloudfront(request.connection)
    prefix = request.path.rstrip("/")
    plan = plan_association(cf, request.distribution, name,
                            [f"{prefix}/{f.path}" for f in release.files if f.role in PHASES])
    store = ensure_store(cf, name, f"cdnpack rights: {request.distribution}")
    kvs = keyvaluestore(request.connection)
    ours = {p.key for p in pairs}
    root = pairs[0].key
    stale = sorted(k for k in store_keys(kvs, store.arn)
                   if k not in ours and (k.startswith(root + "/") or k.startswith(root + "|")))
    # Directories first and the release root last: a reader in between sees directories
    # whose release is not there yet (403), never a root whose directories are missing.
    ordered = sorted(pairs, key=lambda p: (not p.value.startswith(DIRECTORY), p.key == root))
    update = update_store(kvs, store.arn, [(p.key, p.value) for p in ordered], stale)
    function = ensure_function(cf, name, code.encode(), f"cdnpack rights ({RUNTIME})",
                               store.arn)
    association = associate(cf, plan, function.arn)
    return RightsPublishResult(request, name, len(code.encode()), pairs,
                               [g.id for g in release.rights], store, update, stale, function,
                               association)


def _check_on_origin(request: RightsPublishRequest, release: Any) -> None:
    """Every public file of the release is stored, with its size: pushed before published."""
    remote = list_prefix(client(request.connection), request.destination)
    missing = [f.path for f in release.files if f.role in PHASES
               and (remote.get(request.destination.key(f.path)) is None
                    or remote[request.destination.key(f.path)].size != f.bytes)]
    if missing:
        raise InputError(f"{request.destination}: {len(missing)} objects of the release are "
                         f"not stored there (e.g. {missing[0]}): push it first")
