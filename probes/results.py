"""Probe results as JSONL: record layout, writing a run atomically, reading files back strictly.

A run file is one `run` record (region, weight, settings, counts) followed by one `fetch` record
per HTTP fetch and one `playback` record per video session.  Times are seconds (`*_s`), rates
bits per second (`*_bps`).  Readers reject what they cannot trust with file:line, so a gate never
passes on a half-read file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packager.errors import InputError
from packager.files import decode_text, read_text
from probes.config import ProbeConfig, Region
from probes.http import ERROR_CLASSES, FetchResult
from probes.lag import LagStats
from probes.video import Playback

if TYPE_CHECKING:
    from cdn.s3 import Connection

SCHEMA = 1
#: What a results file is called in errors about one.
RESULTS_FILE = "probe results file (JSONL)"


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    region: str
    region_name: str
    weight: float
    started_at: str
    seconds: float
    fetches: int
    abandoned: int  # units cut by the deadline, not recorded (like k6's interrupted iterations)
    deadline_hit: bool
    lag_max: float
    lagged: int  # fetches flagged as timed under event-loop lag


@dataclass(frozen=True)
class FetchRecord:
    region: str
    cdn: str
    target: str
    step: str  # file | manifest | playlist | init | segment | audio | text (companions')
    ttfb: float | None
    total: float
    throughput: float | None
    error: str | None
    lagged: bool
    run_id: str = ""  # the run it belongs to (steering plans from each region's newest run)


@dataclass(frozen=True)
class PlaybackRecord:
    region: str
    cdn: str
    target: str
    rendition: str | None
    startup: float | None
    top_bandwidth: int | None
    ratio: float | None
    error: str | None
    lagged: bool
    run_id: str = ""


@dataclass(frozen=True)
class Results:
    runs: list[RunRecord]
    fetches: list[FetchRecord]
    playbacks: list[PlaybackRecord]


def run_line(run_id: str, region: Region, started_at: str, seconds: float, config: ProbeConfig,
             units: int, completed: int, deadline_hit: bool, lag: LagStats,
             lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The run record that heads a run file: who probed, with which settings, and what came of
    it (counts over the fetch records that follow it)."""
    settings = config.probe
    fetches = [x for x in lines if x["type"] == "fetch"]
    return {
        "type": "run", "schema": SCHEMA, "run_id": run_id, "region": region.id,
        "region_name": region.name, "weight": region.weight, "started_at": started_at,
        "seconds": round(seconds, 4), "config": str(config.path),
        "settings": {
            "samples": settings.samples, "connections": settings.connections,
            "concurrency": settings.concurrency, "timeout_s": settings.timeout,
            "deadline_s": settings.deadline, "renditions": settings.renditions,
            "segments": settings.segments,
        },
        "cdns": [c.id for c in config.cdns], "targets": [t.path for t in config.targets],
        "units": units, "completed": completed, "abandoned": units - completed,
        "deadline_hit": deadline_hit, "fetches": len(fetches),
        "lag_max_s": round(lag.max, 6), "lag_episodes": lag.episodes,
        "lagged": sum(1 for x in fetches if x["lagged"]),
    }


def fetch_line(run_id: str, region: str, cdn: str, target: str, sample: int, step: str,
               rendition: str | None, r: FetchResult) -> dict[str, Any]:
    def sec(v: float | None) -> float | None:
        return None if v is None else round(v, 7)

    return {
        "type": "fetch", "run_id": run_id, "region": region, "cdn": cdn, "target": target,
        "sample": sample, "step": step, "rendition": rendition, "url": r.url,
        "started_at": r.started_at, "ended_at": r.ended_at, "dns_s": sec(r.dns),
        "connect_s": sec(r.connect), "tls_s": sec(r.tls), "ttfb_s": sec(r.ttfb),
        "transfer_s": sec(r.transfer), "total_s": sec(r.total), "bytes": r.bytes,
        "throughput_bps": None if r.throughput is None else round(r.throughput),
        "status": r.status, "cache": r.cache, "cache_headers": r.cache_headers,
        "remote_addr": r.remote_addr, "reused": r.reused, "error": r.error,
        "error_detail": r.error_detail, "loop_lag_s": sec(r.lag), "lagged": r.lagged,
    }


def playback_line(run_id: str, region: str, cdn: str, sample: int,
                  p: Playback) -> dict[str, Any]:
    return {
        "type": "playback", "run_id": run_id, "region": region, "cdn": cdn, "target": p.target,
        "sample": sample, "rendition": p.rendition, "bandwidth_bps": p.bandwidth,
        "top_bandwidth_bps": p.top_bandwidth,
        "startup_s": None if p.startup is None else round(p.startup, 7),
        "sustainable_bps": None if p.sustainable is None else round(p.sustainable),
        "sustainable_ratio": None if p.ratio is None else round(p.ratio, 4),
        "error": p.error, "error_detail": p.error_detail,
        "lagged": any(s.result.lagged for s in p.steps),
    }


def jsonl(lines: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)


def parse_jsonl(text: str, source: str) -> Results:
    docs: list[tuple[str, Any]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.strip():
            where = f"{source}:{number}"
            try:
                docs.append((where, json.loads(raw)))
            except ValueError as exc:
                raise InputError(f"{where}: not JSON ({exc})") from exc
    return parse_records(docs)


def parse_records(docs: Iterable[tuple[str, Any]]) -> Results:
    """Typed records from (where, decoded JSON) pairs; `where` names the file:line in errors."""
    runs: list[RunRecord] = []
    fetches: list[FetchRecord] = []
    playbacks: list[PlaybackRecord] = []
    for where, doc in docs:
        try:
            if not isinstance(doc, dict):
                raise TypeError("not an object")
            kind = doc.get("type")
            if kind == "run":
                if doc.get("schema") != SCHEMA:
                    raise ValueError(f"schema {doc.get('schema')!r}, expected {SCHEMA}")
                runs.append(RunRecord(
                    str(doc["run_id"]), str(doc["region"]), str(doc["region_name"]),
                    float(doc["weight"]), str(doc["started_at"]), float(doc["seconds"]),
                    int(doc["fetches"]), int(doc["abandoned"]), bool(doc["deadline_hit"]),
                    float(doc["lag_max_s"]), int(doc["lagged"]),
                ))
            elif kind == "fetch":
                error = doc["error"]
                if error is not None and error not in ERROR_CLASSES:
                    raise ValueError(f"unknown error class {error!r}")
                fetches.append(FetchRecord(
                    str(doc["region"]), str(doc["cdn"]), str(doc["target"]), str(doc["step"]),
                    _opt(doc["ttfb_s"]), float(doc["total_s"]), _opt(doc["throughput_bps"]),
                    error, bool(doc["lagged"]), str(doc.get("run_id", "")),
                ))
            elif kind == "playback":
                top = doc["top_bandwidth_bps"]
                playbacks.append(PlaybackRecord(
                    str(doc["region"]), str(doc["cdn"]), str(doc["target"]), doc["rendition"],
                    _opt(doc["startup_s"]), None if top is None else int(top),
                    _opt(doc["sustainable_ratio"]), doc["error"], bool(doc["lagged"]),
                    str(doc.get("run_id", "")),
                ))
            else:
                raise ValueError(f"unknown record type {kind!r}")
        except (ValueError, TypeError, KeyError) as exc:
            detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise InputError(f"{where}: not a cdnpack probe record ({detail})") from exc
    return Results(runs, fetches, playbacks)


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def merge(parts: Iterable[Results]) -> Results:
    runs: list[RunRecord] = []
    fetches: list[FetchRecord] = []
    playbacks: list[PlaybackRecord] = []
    for part in parts:
        runs += part.runs
        fetches += part.fetches
        playbacks += part.playbacks
    return Results(runs, fetches, playbacks)


def read_results(sources: Iterable[str], conn: Connection | None = None, *,
                 allow_empty: bool = False) -> Results:
    """Read result files, directories of them (every *.jsonl below, in name order) and
    s3://BUCKET/PREFIX locations; at least one record must be found unless `allow_empty`
    (a steering server whose bus holds nothing yet plans without data)."""
    # boto3 only when s3 is used: reading local files must not pay for it.
    from probes.s3store import read_prefix, results_connection  # noqa: PLC0415

    parts: list[Results] = []
    for source in sources:
        if source.startswith("s3://"):
            for key, body in read_prefix(source, conn or results_connection()):
                parts.append(parse_jsonl(decode_text(body, key, RESULTS_FILE), key))
            continue
        path = Path(source)
        for file in sorted(path.rglob("*.jsonl")) if path.is_dir() else [path]:
            parts.append(parse_jsonl(read_text(file, RESULTS_FILE), str(file)))
    results = merge(parts)
    if not results.fetches and not allow_empty:
        raise InputError("no fetch records in " + ", ".join(sources))
    return results
