"""The edge's data of a release's rights: the key/value pairs the rights function reads from
its CloudFront KeyValueStore (steering/rights_function.js documents the format).

Generated from release.json alone (its grants, as packaged, and its files), never kept by hand.
Values are strings of a few hundred bytes at most: a grant is `id,start,end,COUNTRIES` (times
in base 36 milliseconds, countries two letters each, run together), so a title licensed in 50
territories takes a few hundred bytes, not kilobytes. The store's limits are checked here,
before anything is published: a key of at most 512 bytes, a value of at most 1 KB (grants
beyond it go on in `<release>|1`, `|2`...), 5 MB in all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from packager.errors import InputError
from packager.output.grants import grant_manifest
from packager.output.release import Release
from packager.rights.instants import epoch_ms, parse_instant

MAX_KEY_BYTES = 512
MAX_VALUE_BYTES = 1024
MAX_STORE_BYTES = 5 * 1024 * 1024
ROOT = "R1|"
MORE = "C|"
DIRECTORY = "D|"
MANIFEST_ROLES = ("multivariant", "mpd")


@dataclass(frozen=True)
class Entry:
    key: str
    value: str

    @property
    def size(self) -> int:
        return len(self.key.encode()) + len(self.value.encode())


def release_path(url_path: str) -> str:
    """The release's URL path as the store keys it: lower case, `/` first, none last (the
    distribution's root is `/`)."""
    parts = [p for p in url_path.lower().split("/") if p]
    return "/" + "/".join(parts)


def _key(root: str, name: str) -> str:
    return root.rstrip("/") + "/" + name.lower()


def base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, digit = divmod(number, 36)
        out = digits[digit] + out
        if not number:
            return out


def entries(release: Release, url_path: str) -> list[Entry]:
    """Every key/value pair of the release at `url_path` (the path viewers request it under,
    like /releases/demo/); InputError when it has no grants or would break the store's limits."""
    if not release.rights:
        raise InputError("the release has no rights: package it with --rights (or a title "
                         "file's rights:) first")
    root = release_path(url_path)
    grant_manifests = {p for g in release.rights for p in g.manifests.values()}
    manifests = [f.path for f in release.files
                 if f.role in MANIFEST_ROLES and f.path not in grant_manifests]
    for grant in release.rights:
        for path in grant.manifests.values():
            if not any(grant_manifest(m, grant.id) == path for m in manifests) or "/" in path:
                raise InputError(f"grant {grant.id}: its manifest {path} is not named after one "
                                 "of the release's (master.grant-<id>.m3u8)")
    grants = [_grant(g.id, g.start, g.end, g.territories) for g in release.rights]
    head = f"{ROOT}{','.join(m.lower() for m in manifests)}|"
    chunks = _chunks(grants, MAX_VALUE_BYTES - len(head.encode()) - 4)
    out = [Entry(root, f"{head}{len(chunks)}|{chunks[0]}")]
    out += [Entry(f"{root}|{n}", MORE + chunk) for n, chunk in enumerate(chunks[1:], 1)]
    directories: dict[str, list[str]] = {}
    owners = {f.rendition: PurePosixPath(f.path).parts[0] for f in release.files
              if f.rendition is not None and "/" in f.path}
    for directory in sorted(set(owners.values())):
        directories[directory] = []
    for grant in release.rights:
        for rendition in grant.renditions:
            if rendition in owners:
                directories[owners[rendition]].append(grant.id)
    out += [Entry(_key(root, d), DIRECTORY + ",".join(ids)) for d, ids in directories.items()]
    check_limits(out)
    return out


def _grant(grant_id: str, start: str, end: str | None, territories: Iterable[str]) -> str:
    closes = base36(epoch_ms(parse_instant(end))) if end is not None else ""
    return (f"{grant_id},{base36(epoch_ms(parse_instant(start)))},{closes},"
            f"{''.join(territories)}")


def _chunks(grants: list[str], room: int) -> list[str]:
    """Grants joined with `;`, in as few values as fit `room` bytes each."""
    chunks: list[list[str]] = [[]]
    for grant in grants:
        if len(grant.encode()) > room:
            raise InputError(f"grant {grant.split(',')[0]}: {len(grant)} bytes of edge data, "
                             f"over a KeyValueStore value's {MAX_VALUE_BYTES}")
        if len(";".join([*chunks[-1], grant]).encode()) > room:
            chunks.append([])
        chunks[-1].append(grant)
    return [";".join(c) for c in chunks]


def check_limits(pairs: list[Entry]) -> None:
    for pair in pairs:
        if len(pair.key.encode()) > MAX_KEY_BYTES:
            raise InputError(f"edge data key {pair.key[:60]}...: over the KeyValueStore's "
                             f"{MAX_KEY_BYTES} bytes: serve the release under a shorter path")
        if len(pair.value.encode()) > MAX_VALUE_BYTES:
            raise InputError(f"edge data of {pair.key}: over a KeyValueStore value's "
                             f"{MAX_VALUE_BYTES} bytes")
    total = sum(p.size for p in pairs)
    if total > MAX_STORE_BYTES:
        raise InputError(f"edge data: {total} bytes, over the KeyValueStore's "
                         f"{MAX_STORE_BYTES}")


def import_document(pairs: list[Entry]) -> str:
    """The KeyValueStore import format: {"data": [{"key": ..., "value": ...}, ...]}."""
    return json.dumps({"data": [{"key": p.key, "value": p.value} for p in pairs]},
                      indent=1) + "\n"
