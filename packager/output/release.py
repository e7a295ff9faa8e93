"""release.json: every file of a packaged release with its role, size and sha256.

Later stages (push, gate) trust this file instead of the directory listing, so it is written
last and lists exactly the files in the tree.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass, replace
from functools import cache
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar, Union, cast, get_args, get_origin, get_type_hints

from packager.errors import InputError
from packager.files import read_text, write_atomic

T = TypeVar("T")

RELEASE_NAME = "release.json"
SCHEMA_VERSION = 1
ROLES = ("multivariant", "media-playlist", "mpd", "init", "segment",
         # Trick play: I-frame playlists (output/trickplay.py); thumbnail sheets and their
         # image playlists (output/thumbnails.py).
         "iframe-playlist", "image", "image-playlist")
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
    ".jpg": "image/jpeg",
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
    #: Video: the delivered track's measured quality (packager/quality/delivered.py); None
    #: when not measured (--copy, --no-vmaf, and release.json files written before it).
    vmaf: VmafSummary | None = None
    #: Per-title: the VMAF target the rung was placed for (`cdnpack quality` gates on it);
    #: None for a fixed rung, the low-bandwidth floor and a rung a bitrate cap decided.
    vmaf_target: float | None = None


@dataclass(frozen=True)
class VmafSummary:
    """VMAF of a rendition against the source, scored at the release's viewing size."""

    mean: float
    p5: float  # 5th-percentile frame: how bad the worst moments get
    model: str
    frames: int


@dataclass(frozen=True)
class RatePointSummary:
    """One trial encode of a per-title analysis (over the sample), as quality/hull.py has it."""

    codec: str
    width: int
    height: int
    quality: float  # the encoder's CRF
    bitrate: int
    vmaf: float
    vmaf_p5: float


@dataclass(frozen=True)
class RungSummary:
    """Why a per-title rendition is what it is: where it sits on the measured curves."""

    rendition: str
    codec: str
    width: int
    height: int
    crf: float
    predicted_bitrate: int
    predicted_vmaf: float
    role: str  # target, floor (the low-bandwidth rung) or capped (by max_bitrate)
    target: float | None


@dataclass(frozen=True)
class PerTitleSummary:
    """What a per-title ladder was chosen from: the sample, every trial point, each codec's
    convex hull, and the rungs placed on it."""

    codecs: list[str]
    targets: list[float]
    floor_bitrate: int
    rate_control: str  # how the rungs are encoded ("capped-crf": CRF under the VBV cap)
    excerpts: list[list[float]]  # [start, duration] seconds
    analysis_cpu_seconds: float
    analysis_seconds: float
    points: list[RatePointSummary]
    hull: list[RatePointSummary]
    rungs: list[RungSummary]


@dataclass(frozen=True)
class QualitySummary:
    """How the renditions' VMAF was measured: the model and the size both sides were scaled
    to (the ladder's top, as the viewer sees every rung); a per-title ladder's analysis."""

    model: str
    viewing: str  # WIDTHxHEIGHT
    per_title: PerTitleSummary | None = None


@dataclass(frozen=True)
class ProtectionSummary:
    """How a release is encrypted: scheme, KIDs (UUID form) and DRM systems; never a key."""

    scheme: str
    kids: list[str]  # each distinct KID once
    systems: list[str]  # --drm systems signalled; empty: the common-format pssh only
    rendition_kids: dict[str, str]  # rendition id -> the KID its tracks are encrypted with


@dataclass(frozen=True)
class IFrameSummary:
    """One video rendition's HLS I-frame playlist (output/trickplay.py)."""

    rendition: str
    playlist: str  # path in the release
    iframes: int
    bandwidth: int  # the EXT-X-I-FRAME-STREAM-INF BANDWIDTH, bits/s
    average_bandwidth: int


@dataclass(frozen=True)
class ThumbnailSummary:
    """A set of thumbnail tile sheets (--thumbnails) and where manifests point at them."""

    id: str  # its directory, the DASH Representation id
    interval: float  # seconds between thumbnails
    columns: int
    rows: int
    width: int  # of one thumbnail, pixels
    height: int
    sheets: int
    bandwidth: int  # bits/s, as signalled
    playlist: str  # the HLS image playlist's path; "" without HLS


@dataclass(frozen=True)
class ReleaseInputs:
    """What a release was made from, recorded by `catalog run` (release/inputs.py): a published
    release whose inputs equal a title's current ones is up to date and is not made again."""

    source: str  # the path or s3:// URL as the catalog names it
    source_bytes: int
    #: "etag:<ETag>" for an S3 source (HEAD), "sha256:<hex>" for a file.
    source_version: str
    #: Every other file the release is made from (title file, its dubs and subtitles, a ladder
    #: file, a CPIX document): path -> "sha256:<hex>".
    files: dict[str, str]
    #: The title's options that shape the release, each as JSON text.
    options: dict[str, str]
    cdnpack: str  # the version that made it


@dataclass(frozen=True)
class GrantSummary:
    """One grant of the title's rights (packager/rights) and the manifests written for it:
    what viewers in its territories are routed to during its window, and all they may fetch."""

    id: str
    territories: list[str]  # ISO 3166-1 alpha-2, regions expanded
    start: str  # RFC 3339, UTC: in force from (inclusive)
    end: str | None  # until (exclusive); None: no end
    max_height: int | None
    audio: list[str]  # the languages its manifests carry
    subtitles: list[str]
    renditions: list[str]  # rendition ids (and thumbnail sets) its manifests list
    manifests: dict[str, str]  # "hls" / "dash" -> the grant's multivariant playlist / MPD


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
    #: Trick play: empty in release.json files written before it existed.
    iframes: list[IFrameSummary] = field(default_factory=list)
    thumbnails: list[ThumbnailSummary] = field(default_factory=list)
    #: Recorded by `catalog run`; None for a release `package` made on its own.
    inputs: ReleaseInputs | None = None
    #: Territories and windows: one manifest set per grant (empty: no rights, unrestricted).
    rights: list[GrantSummary] = field(default_factory=list)
    #: Absent (None) when no rendition was measured.
    quality: QualitySummary | None = None

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


def finish_release(
    root: Path, *, source: str, duration: float, segment_duration: float,
    formats: list[str], renditions: list[RenditionSummary], files: list[ReleaseFile],
    protection: ProtectionSummary | None = None,
    iframes: list[IFrameSummary] | None = None,
    thumbnails: list[ThumbnailSummary] | None = None,
    rights: list[GrantSummary] | None = None,
    quality: QualitySummary | None = None,
) -> Release:
    """The one way a Release is made: built from what was written, checked against the tree
    (it lists exactly the files there) and written as release.json, last."""
    release = Release(
        schema=SCHEMA_VERSION, source=source, duration=round(duration, 6),
        segment_duration=segment_duration, formats=[f for f in FORMATS if f in formats],
        renditions=renditions, files=files, protection=protection,
        iframes=iframes or [], thumbnails=thumbnails or [], rights=rights or [],
        quality=quality,
    )
    write_release(root, release)
    return release


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
    """release.json, checked field by field against the model: later stages trust it (push
    uploads exactly what it lists), so a damaged or foreign file is refused in one line."""
    path = root / RELEASE_NAME
    if not path.is_file() and root.is_dir():
        raise InputError(f"{root}: no {RELEASE_NAME}; not a cdnpack release")
    return parse_release(read_text(path, RELEASE_NAME), str(path))


def parse_release(text: str, where: str) -> Release:
    """A release.json's text (a local file's, or a published one's) as a checked Release."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{where}: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{where}: not a cdnpack {RELEASE_NAME} (a JSON object is expected)")
    if doc.get("schema") != SCHEMA_VERSION:
        raise InputError(f"{where}: schema {doc.get('schema')!r}, expected {SCHEMA_VERSION}")
    return typed(Release, doc, where)


def stamp_inputs(root: Path, inputs: ReleaseInputs) -> Release:
    """Record what the release in `root` was made from in its release.json (replaced
    atomically: the tree's files are unchanged, so the listing still holds)."""
    release = replace(read_release(root), inputs=inputs)
    write_atomic(root / RELEASE_NAME, json.dumps(asdict(release), indent=2) + "\n")
    return release


def typed(cls: type[T], doc: Any, where: str) -> T:
    """A dataclass from decoded JSON, every field checked against its annotation (str, int,
    float, bool, None, lists, string-keyed dicts and nested dataclasses): a wrong type is an
    InputError naming the field, not an AttributeError three stages later."""
    if not isinstance(doc, dict):
        raise InputError(f"{where}: must be an object, got {type(doc).__name__}")
    values: dict[str, Any] = {}
    for name, hint, required in _fields_of(cast(type, cls)):
        if name not in doc:
            if required:
                raise InputError(f"{where}: {name} is missing")
            continue
        values[name] = _value(doc[name], hint, f"{where}: {name}")
    return cls(**values)


@cache
def _fields_of(cls: type) -> tuple[tuple[str, Any, bool], ...]:
    """(name, annotation, required) per field: resolving annotations costs more than checking
    a value, and a release lists thousands of files of one class."""
    hints = get_type_hints(cls)
    return tuple((f.name, hints[f.name],
                  f.default is MISSING and f.default_factory is MISSING)
                 for f in fields(cls))


@cache
def _shape(hint: Any) -> tuple[Any, tuple[Any, ...], bool]:
    """(origin, arguments, is a dataclass) of an annotation: found once per annotation, not
    once per value."""
    return get_origin(hint), get_args(hint), is_dataclass(hint) and isinstance(hint, type)


def _value(value: Any, hint: Any, where: str) -> Any:
    if type(value) is hint and hint in (str, int, bool, float):  # most values, first
        return value
    origin, args, record = _shape(hint)
    if record:
        return typed(hint, value, where)
    if origin in (UnionType, Union):
        if value is None and type(None) in args:  # the common optional field, without a retry
            return None
        for option in args:
            try:
                return _value(value, option, where)
            except InputError:
                continue
        raise InputError(f"{where}: {value!r:.40} is not {hint}")
    if origin is list and isinstance(value, list):
        return [_value(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict and isinstance(value, dict):
        return {k: _value(v, args[1], f"{where}.{k}") for k, v in value.items()
                if isinstance(k, str)}
    if hint is type(None) and value is None:
        return None
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise InputError(f"{where}: {value!r:.40} is not {getattr(hint, '__name__', hint)}")
