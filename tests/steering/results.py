"""Probe results written by hand for the steering tests: a region's run in which each CDN
delivers with a chosen first-byte time, startup, throughput and error count.

The records have exactly the layout `cdnpack probe` writes (probes/results.py reads them back
strictly), so what steering reads here is what it reads in production."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from probes.results import SCHEMA, jsonl

TOP_BANDWIDTH = 1_000_000  # bits/s of the "top rendition" the runs report
SAMPLES = 20


@dataclass(frozen=True)
class Delivery:
    """What one CDN delivered in a run: every sample alike (exact percentiles)."""

    ttfb: float = 0.05  # seconds
    startup: float = 0.5  # seconds
    throughput: float = 8_000_000.0  # bits/s
    errors: int = 0  # failed fetches out of SAMPLES


def run_lines(region: str, deliveries: dict[str, Delivery], ended: datetime | None = None,
              run_id: str | None = None, weight: float = 1.0) -> list[dict[str, Any]]:
    """One probe run of `region`: a run record, SAMPLES segment fetches and SAMPLES playbacks
    per CDN. `ended` defaults to now."""
    run_id = run_id or uuid.uuid4().hex[:12]
    seconds = 2.0
    started = (ended or datetime.now(UTC)) - timedelta(seconds=seconds)
    fetches: list[dict[str, Any]] = []
    plays: list[dict[str, Any]] = []
    for cdn, d in deliveries.items():
        for sample in range(SAMPLES):
            failed = sample < d.errors
            fetches.append({
                "type": "fetch", "run_id": run_id, "region": region, "cdn": cdn,
                "target": "master.m3u8", "sample": sample, "step": "segment",
                "ttfb_s": None if failed else d.ttfb, "total_s": d.ttfb + 0.01,
                "throughput_bps": None if failed else d.throughput,
                "error": "http_5xx" if failed else None, "lagged": False,
            })
            plays.append({
                "type": "playback", "run_id": run_id, "region": region, "cdn": cdn,
                "target": "master.m3u8", "sample": sample, "rendition": "video_240p",
                "startup_s": None if failed else d.startup,
                "top_bandwidth_bps": TOP_BANDWIDTH, "sustainable_ratio": None,
                "error": "http_5xx" if failed else None, "lagged": False,
            })
    head = {
        "type": "run", "schema": SCHEMA, "run_id": run_id, "region": region,
        "region_name": region, "weight": weight,
        "started_at": started.isoformat(timespec="microseconds"), "seconds": seconds,
        "fetches": len(fetches), "abandoned": 0, "deadline_hit": False, "lag_max_s": 0.0,
        "lagged": 0,
    }
    return [head, *fetches, *plays]


def write_run(directory: Path, region: str, deliveries: dict[str, Delivery],
              ended: datetime | None = None) -> Path:
    """A results file as `cdnpack probe -o` leaves it (written aside, renamed into place)."""
    lines = run_lines(region, deliveries, ended)
    path = directory / f"probe-{region}-{lines[0]['run_id']}.jsonl"
    part = path.with_suffix(".part")
    part.write_text(jsonl(lines))
    part.replace(path)
    return path
