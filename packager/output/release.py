"""release.json: every file of a packaged release with its role, size and sha256.

Later stages (push, gate) trust this file instead of the directory listing, so it is written
last and lists exactly the files in the tree.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from packager.errors import InputError

RELEASE_NAME = "release.json"
SCHEMA_VERSION = 1
ROLES = ("multivariant", "media-playlist", "mpd", "init", "segment")
FORMATS = ("hls", "dash")
#: The content type of each kind of release file. Explicit, because Python's mimetypes
#: (Debian's mime.types) maps .ts to Qt Linguist and knows neither .mpd nor .m4s.
#: Values: RFC 8216 §4, ISO/IEC 23009-1 Annex C, RFC 8081/4337, W3C.
CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".ts": "video/mp2t",
    ".vtt": "text/vtt",
    ".aac": "audio/aac",
}


@dataclass(frozen=True)
class ReleaseFile:
    path: str  # POSIX path relative to the release root
    role: str  # one of ROLES
    rendition: str | None
    bytes: int
    sha256: str


@dataclass(frozen=True)
class RenditionSummary:
    id: str
    kind: str
    codec: str  # RFC 6381
    bandwidth: int  # peak segment bitrate incl. nothing else, bits/s
    average_bandwidth: int
    width: int
    height: int
    frame_rate: str
    channels: int
    sample_rate: int
    segments: int
    duration: float
    #: Audio and text: the BCP 47 tag, the title's role (main, dub, alternate, description;
    #: subtitle, forced-subtitle, caption), flags ("default", "forced") and the menu name.
    #: Defaults: what release.json files written before localized releases mean.
    language: str = "und"
    role: str = ""
    flags: list[str] = field(default_factory=list)
    name: str = ""


@dataclass(frozen=True)
class ProtectionSummary:
    """How a release is encrypted: scheme, KIDs (UUID form) and DRM systems; never a key."""

    scheme: str
    kids: list[str]  # each distinct KID once
    systems: list[str]  # --drm systems signalled; empty: the common-format pssh only
    rendition_kids: dict[str, str]  # rendition id -> the KID its tracks are encrypted with


@dataclass(frozen=True)
class Release:
    schema: int
    source: str
    duration: float
    segment_duration: float
    formats: list[str]
    renditions: list[RenditionSummary]
    files: list[ReleaseFile]
    #: Absent (None) for clear releases and in release.json files written before it existed.
    protection: ProtectionSummary | None = None

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)


def describe_file(root: Path, relative: str, role: str, rendition: str | None) -> ReleaseFile:
    digest = hashlib.sha256()
    size = 0
    with (root / relative).open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return ReleaseFile(relative, role, rendition, size, digest.hexdigest())


def write_release(root: Path, release: Release) -> None:
    listed = {f.path for f in release.files}
    present = {
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
    } - {RELEASE_NAME}
    if listed != present:
        extra = sorted(present - listed)[:3]
        missing = sorted(listed - present)[:3]
        raise AssertionError(f"release tree and listing differ: extra={extra} missing={missing}")
    (root / RELEASE_NAME).write_text(json.dumps(asdict(release), indent=2) + "\n")


def read_release(root: Path) -> Release:
    path = root / RELEASE_NAME
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputError(f"{root}: no {RELEASE_NAME}; not a cdnpack release") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable ({exc})") from exc
    if doc.get("schema") != SCHEMA_VERSION:
        raise InputError(f"{path}: schema {doc.get('schema')!r}, expected {SCHEMA_VERSION}")
    try:
        return Release(
            schema=doc["schema"],
            source=doc["source"],
            duration=doc["duration"],
            segment_duration=doc["segment_duration"],
            formats=list(doc["formats"]),
            renditions=[RenditionSummary(**r) for r in doc["renditions"]],
            files=[ReleaseFile(**f) for f in doc["files"]],
            protection=(
                ProtectionSummary(**doc["protection"]) if doc.get("protection") else None
            ),
        )
    except (KeyError, TypeError) as exc:
        raise InputError(f"{path}: malformed ({exc})") from exc
