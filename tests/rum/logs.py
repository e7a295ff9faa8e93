"""Log files for the rum tests: viewers' requests as an edge serves them, written by the same
code the emulated edges log with (testbed/accesslog.py)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, replace
from pathlib import Path

from testbed.accesslog import AccessLog, Served

T0 = 1_796_385_600.0  # 2026-12-04T12:00:00Z, the start of an hour
CONFIG_YAML = """
regions:
  - {id: na, name: North America, weight: 0.5, countries: [US, CA]}
  - {id: jpkr, name: Japan / Korea, weight: 0.5, countries: [JP, KR]}
cdns:
  - {id: alpha, base_url: "http://alpha.example:8080/"}
  - {id: beta, base_url: "http://beta.example/"}
targets: [master.m3u8]
"""


@dataclass(frozen=True)
class Viewer:
    sid: str
    host: str = "alpha.example:8080"
    country: str = "JP"
    edge: str = "NRT57-P1"
    ip: str = "203.0.113.77"


def cmcd_query(**keys: object) -> str:
    parts = []
    for k, v in keys.items():
        if v is True:
            parts.append(k)
        elif isinstance(v, str) and k in ("sid", "cid"):
            parts.append(f'{k}="{v}"')
        else:
            parts.append(f"{k}={v}")
    return "CMCD=" + urllib.parse.quote(",".join(sorted(parts)), safe="")


def request(viewer: Viewer, end: float, took: float, query: str, status: int = 200,
            size: int = 100_000, path: str = "/v/seg.m4s") -> Served:
    return Served(end=end, time_taken=took, ttfb=took / 2, client_ip=viewer.ip,
                  client_port=50000, method="GET", host=viewer.host, path=path, query=query,
                  status=status, sc_bytes=size + 300, content_type="video/mp4",
                  content_length=size, result_type="Hit" if status < 400 else "Error",
                  country=viewer.country, edge_location=viewer.edge)


def session(viewer: Viewer, start: float, bitrate: int, mtp: int, stalls: int = 0,
            segments: int = 6) -> list[Served]:
    """A manifest, then `segments` video segments: the first two at startup (`su`), the
    last `stalls` of them after a stall (`bs`). Startup = start -> end of the 2nd segment."""
    out = [request(viewer, start + 0.2, 0.2, cmcd_query(sid=viewer.sid, ot="m", su=True),
                   path="/master.m3u8", size=900)]
    for i in range(segments):
        keys: dict[str, object] = {"sid": viewer.sid, "ot": "v", "br": bitrate, "mtp": mtp,
                                   "d": 2000}
        if i < 2:
            keys["su"] = True
        if i >= segments - stalls:
            keys["bs"] = True
        out.append(request(viewer, start + 0.5 * (i + 1), 0.3, cmcd_query(**keys)))
    return out


def write_logs(directory: Path, entries: list[Served]) -> list[Path]:
    log = AccessLog(directory)
    for e in entries:
        log.add(e)
    return log.flush()


def moved(entries: list[Served], **changes: object) -> list[Served]:
    return [replace(e, **changes) for e in entries]  # type: ignore[arg-type]
