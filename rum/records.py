"""RUM.jsonl: real-viewer aggregates per (region, CDN, hour), the ingest ledger, a strict reader.

One JSON object a line, `type` first:
  rum   one cell: sessions, startup p50/p95 (s), rebuffer ratio and rebuffering sessions,
        measured throughput p50 and delivered bitrate (bits/s), error rate, bytes
  file  one ingested log file: its identity (name, size, ETag or mtime), lines, and what was
        wrong in it (rejected lines, malformed CMCD values, a truncated gzip); the ledger that
        makes a second ingest of the same files count them once
Nothing here names a viewer: no address, no session id (sessions are counted, never kept).
Startup and throughput are per session (each viewer counts once), then percentiles over the
cell's sessions. Throughput comes two ways: `mtp_p50`, what players measured and reported (CMCD
mtp; shaka-player sends none), and `throughput_p50`, what the edge logged delivering video
(sc-bytes x 8 / time-taken). The rebuffer ratio is the share of video requests that carried
CMCD `bs` (buffer starved since the previous request): CMCD v1 reports that a stall happened,
not how long it lasted.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from packager.errors import InputError
from packager.files import read_text

SCHEMA = 1
#: What a RUM file is called in errors about one.
RUM_FILE = "RUM file (JSONL from cdnpack rum ingest)"


@dataclass(frozen=True)
class RumCell:
    region: str
    cdn: str
    hour: str  # ISO 8601 UTC start of the hour
    sessions: int
    requests: int
    errors: int
    bytes: int
    startup_p50: float | None  # seconds
    startup_p95: float | None
    video_requests: int  # CMCD ot=v or av
    starved_requests: int  # ... that carried bs
    rebuffering_sessions: int
    mtp_p50: float | None  # bits/s, CMCD mtp (the player's measure; not every player sends it)
    throughput_p50: float | None  # bits/s, video sc-bytes / time-taken (the edge's measure)
    bitrate: float | None  # bits/s, mean CMCD br of video requests
    batch: str

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def rebuffer_ratio(self) -> float | None:
        return self.starved_requests / self.video_requests if self.video_requests else None

    def line(self) -> dict[str, Any]:
        return {"type": "rum", "schema": SCHEMA, **asdict(self), "error_rate": self.error_rate,
                "rebuffer_ratio": self.rebuffer_ratio}


@dataclass(frozen=True)
class LogFile:
    """One ingested file; (name, size, version) is its identity in the ledger."""

    source: str  # path or s3:// URL, as given
    name: str
    size: int
    version: str  # S3 ETag, or the local file's mtime in ns
    lines: int
    rejected: int  # lines with the wrong field count (or unreadable fields)
    bad_cmcd: int  # malformed CMCD values, counted and skipped
    problem: str | None  # e.g. "truncated gzip: read 1200 lines before the cut"
    batch: str

    @property
    def identity(self) -> tuple[str, int, str]:
        return self.name, self.size, self.version

    def line(self) -> dict[str, Any]:
        return {"type": "file", "schema": SCHEMA, **asdict(self)}


@dataclass(frozen=True)
class RumData:
    cells: list[RumCell]
    files: list[LogFile]

    @property
    def identities(self) -> set[tuple[str, int, str]]:
        return {f.identity for f in self.files}


def jsonl(lines: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(x, sort_keys=False, separators=(",", ":")) + "\n" for x in lines)


_CELL_FIELDS = dict(RumCell.__annotations__)
_FILE_FIELDS = dict(LogFile.__annotations__)


def read_rum(path: Path) -> RumData:
    """Every record of a RUM.jsonl; a line that is not one is an InputError naming file:line."""
    return parse_rum(read_text(path, RUM_FILE), str(path))


def parse_rum(text: str, where: str) -> RumData:
    cells: list[RumCell] = []
    files: list[LogFile] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}:{number}: not JSON ({exc.msg})") from exc
        if not isinstance(doc, dict) or doc.get("type") not in ("rum", "file"):
            raise InputError(f"{where}:{number}: not a RUM record (type rum or file)")
        if doc.get("schema") != SCHEMA:
            raise InputError(f"{where}:{number}: schema {doc.get('schema')!r}, "
                             f"this cdnpack reads {SCHEMA}")
        if doc["type"] == "rum":
            cells.append(RumCell(**_fields(doc, _CELL_FIELDS, where, number)))
        else:
            files.append(LogFile(**_fields(doc, _FILE_FIELDS, where, number)))
    return RumData(cells, files)


_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "float | None": (int, float, type(None)),
    "str | None": (str, type(None)),
}


def _fields(doc: dict[str, Any], fields: dict[str, Any], where: str,
            number: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, annotation in fields.items():
        if name not in doc:
            raise InputError(f"{where}:{number}: missing {name!r}")
        value = doc[name]
        allowed = _TYPES[str(annotation)]
        if isinstance(value, bool) or not isinstance(value, allowed):
            raise InputError(f"{where}:{number}: {name} must be {annotation}, got {value!r}")
        out[name] = value
    return out


@dataclass(frozen=True)
class RumSummary:
    """A (region, CDN) over every hour of a RUM file: what score and gate put beside probes.

    Counts add up exactly; rates are recomputed from the counts. Hourly records do not keep
    each session's value, so the percentiles are the session-weighted means of the hourly ones
    (exact when one hour holds all the sessions).
    """

    region: str
    cdn: str
    sessions: int
    requests: int
    errors: int
    bytes: int
    startup_p50: float | None
    startup_p95: float | None
    rebuffer_ratio: float | None
    rebuffering_sessions: int
    mtp_p50: float | None
    throughput_p50: float | None
    bitrate: float | None
    hours: int

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def load_summaries(path: Path) -> dict[tuple[str, str], RumSummary]:
    """A RUM.jsonl as (region, CDN) -> summary over its hours (`score`/`gate --rum`)."""
    return summarize(read_rum(path).cells)


def summarize(cells: Iterable[RumCell]) -> dict[tuple[str, str], RumSummary]:
    groups: dict[tuple[str, str], list[RumCell]] = defaultdict(list)
    for c in cells:
        groups[c.region, c.cdn].append(c)
    return {key: _summary(key, group) for key, group in sorted(groups.items())}


def _weighted(cells: list[RumCell], name: str) -> float | None:
    pairs: list[tuple[float, int]] = [(float(getattr(c, name)), c.sessions) for c in cells
                                      if getattr(c, name) is not None]
    weight = sum(w for _, w in pairs)
    if not pairs:
        return None
    if weight == 0:
        return sum(v for v, _ in pairs) / len(pairs)
    return sum(v * w for v, w in pairs) / weight


def _summary(key: tuple[str, str], cells: list[RumCell]) -> RumSummary:
    video = sum(c.video_requests for c in cells)
    ratio = sum(c.starved_requests for c in cells) / video if video else None
    return RumSummary(
        region=key[0], cdn=key[1], sessions=sum(c.sessions for c in cells),
        requests=sum(c.requests for c in cells), errors=sum(c.errors for c in cells),
        bytes=sum(c.bytes for c in cells), startup_p50=_weighted(cells, "startup_p50"),
        startup_p95=_weighted(cells, "startup_p95"), rebuffer_ratio=ratio,
        rebuffering_sessions=sum(c.rebuffering_sessions for c in cells),
        mtp_p50=_weighted(cells, "mtp_p50"), throughput_p50=_weighted(cells, "throughput_p50"),
        bitrate=_weighted(cells, "bitrate"),
        hours=len({c.hour for c in cells}),
    )


def lines_of(data: RumData) -> Iterator[dict[str, Any]]:
    for f in data.files:
        yield f.line()
    for c in data.cells:
        yield c.line()
