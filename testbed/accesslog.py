"""Access logs of the emulated edges, in CloudFront's two formats, delivered as CloudFront does.

Standard logs: gzip files named `<distribution-id>.YYYY-MM-DD-HH.<unique-id>.gz`, each headed by
`#Version: 1.0` and `#Fields: ...` and holding the 33 documented fields per line (rum/cloudfront.py
has the list and the AWS page it comes from). Real-time logs: the documented fields, all of them
in order, one tab-separated record per line, in gzip objects as Firehose lands them
(`<stream>-1-YYYY-MM-DD-HH-MM-SS-<uuid>.gz`). Entries are buffered and each flush writes new
whole files (aside, then renamed), so a reader never sees half a file: CloudFront, too, delivers
several files per hour and never appends to one.
"""

from __future__ import annotations

import gzip
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from rum.cloudfront import (
    REALTIME_CMCD,
    REALTIME_FIELDS,
    STANDARD_HEADER,
    standard_file_name,
)
from rum.cmcd import Cmcd, from_query

STANDARD_DIR = "standard"
REALTIME_DIR = "realtime"


@dataclass(frozen=True)
class Served:
    """One request as an edge served it (what a CloudFront log line says of it)."""

    end: float  # epoch seconds: the last byte sent (or the connection cut)
    time_taken: float  # seconds, request received -> last byte
    ttfb: float  # seconds, request received -> first byte
    client_ip: str
    client_port: int
    method: str
    host: str  # the viewer's Host header
    path: str
    query: str  # as received (CMCD stays URL-encoded)
    status: int  # 0 (logged as 000): no answer was sent
    sc_bytes: int  # headers and body bytes sent
    content_type: str
    content_length: int
    result_type: str  # Hit | Miss | Error
    user_agent: str = "-"
    referer: str = "-"
    range_start: int | None = None
    range_end: int | None = None
    cs_bytes: int = 0
    country: str = "-"
    edge_location: str = "IAD89-P1"
    domain: str = "d111111abcdef8.cloudfront.net"
    distribution: str = "E2CDNPACKTEST"


def _dash(value: object) -> str:
    text = "-" if value is None else str(value)
    return text if text else "-"


def _encoded(text: str) -> str:
    """CloudFront URL-encodes spaces and other unsafe characters of a logged value."""
    return quote(text, safe="/:;,=&%?+-_.~()!*'@") if text not in ("", "-") else "-"


def standard_line(r: Served, request_id: str) -> str:
    end = datetime.fromtimestamp(r.end, UTC)
    fields = [
        end.strftime("%Y-%m-%d"), end.strftime("%H:%M:%S"), r.edge_location, r.sc_bytes,
        r.client_ip, r.method, r.domain, r.path, f"{r.status:03d}", _encoded(r.referer),
        _encoded(r.user_agent), r.query or "-", "-", r.result_type, request_id, r.host,
        "http", r.cs_bytes, f"{r.time_taken:.3f}", "-", "-", "-", r.result_type, "HTTP/1.1",
        "-", "-", r.client_port, f"{r.ttfb:.3f}", r.result_type, r.content_type,
        r.content_length, _dash(r.range_start), _dash(r.range_end),
    ]
    return "\t".join(_dash(f) for f in fields)


def _cmcd_field(cmcd: Cmcd | None, key: str) -> str:
    if cmcd is None or key not in cmcd.data:
        return "-"
    value = cmcd.data[key]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def realtime_line(r: Served, request_id: str) -> str:
    cmcd = from_query(r.query) if r.query else None
    values: dict[str, object] = {
        "timestamp": f"{r.end:.3f}", "c-ip": r.client_ip, "time-to-first-byte": f"{r.ttfb:.3f}",
        "sc-status": f"{r.status:03d}", "sc-bytes": r.sc_bytes, "cs-method": r.method,
        "cs-protocol": "http", "cs-host": r.domain, "cs-uri-stem": r.path,
        "cs-bytes": r.cs_bytes, "x-edge-location": r.edge_location,
        "x-edge-request-id": request_id, "x-host-header": r.host,
        "time-taken": f"{r.time_taken:.3f}", "cs-protocol-version": "HTTP/1.1",
        "c-ip-version": "IPv6" if ":" in r.client_ip else "IPv4",
        "cs-user-agent": _encoded(r.user_agent), "cs-referer": _encoded(r.referer),
        "cs-uri-query": r.query or "-", "x-edge-response-result-type": r.result_type,
        "x-edge-result-type": r.result_type, "sc-content-type": r.content_type,
        "sc-content-len": r.content_length, "sc-range-start": r.range_start,
        "sc-range-end": r.range_end, "c-port": r.client_port,
        "x-edge-detailed-result-type": r.result_type, "c-country": r.country,
        "primary-distribution-id": r.distribution, "primary-distribution-dns-name": r.domain,
    }
    for field, key in REALTIME_CMCD.items():
        values[field] = _cmcd_field(cmcd, key)
    return "\t".join(_dash(values.get(f)) for f in REALTIME_FIELDS)


def request_id() -> str:
    """An x-edge-request-id: 56 URL-safe base64 characters, like CloudFront's."""
    return secrets.token_urlsafe(42)[:56]


def write_gzip(path: Path, text: str) -> None:
    """A whole gzip file, written aside and renamed in (a reader sees all of it or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=6))
    temp.replace(path)


class AccessLog:
    """Buffers an edge's served requests; `flush()` delivers them as new log files."""

    def __init__(self, directory: Path, distribution: str = "E2CDNPACKTEST") -> None:
        self.directory = directory
        self.distribution = distribution
        self.pending: list[Served] = []
        self.delivered = 0

    def add(self, served: Served) -> None:
        self.pending.append(served)

    def flush(self) -> list[Path]:
        """One standard file per hour of the pending requests, one real-time object per flush."""
        entries, self.pending = self.pending, []
        if not entries:
            return []
        written = []
        ids = [request_id() for _ in entries]
        by_hour: dict[str, list[str]] = {}
        for entry, rid in zip(entries, ids, strict=True):
            hour = datetime.fromtimestamp(entry.end, UTC).strftime("%Y-%m-%d-%H")
            by_hour.setdefault(hour, []).append(standard_line(entry, rid))
        for hour, lines in by_hour.items():
            name = standard_file_name(self.distribution, hour, secrets.token_hex(4))
            path = self.directory / STANDARD_DIR / name
            write_gzip(path, STANDARD_HEADER + "\n".join(lines) + "\n")
            written.append(path)
        stamp = datetime.fromtimestamp(time.time(), UTC).strftime("%Y-%m-%d-%H-%M-%S")
        name = f"cdnpack-realtime-1-{stamp}-{secrets.token_hex(8)}.gz"
        path = self.directory / REALTIME_DIR / name
        write_gzip(path, "".join(realtime_line(e, r) + "\n"
                                 for e, r in zip(entries, ids, strict=True)))
        written.append(path)
        self.delivered += len(entries)
        return written


def read_lines(paths: Sequence[Path]) -> list[str]:
    """Every data line of these log files (header lines left out)."""
    lines: list[str] = []
    for p in paths:
        with gzip.open(p, "rt", encoding="utf-8") as f:
            lines += [x.rstrip("\n") for x in f if not x.startswith("#")]
    return lines
