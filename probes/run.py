"""The `probe` job: every CDN x target x sample for one region, bounded, ended by the deadline.

Work is interleaved sample-major (sample 1 of every CDN and target, then sample 2, ...) so every
CDN is measured across the same time window.  `concurrency` workers pull units from one queue;
the Fetcher's semaphore bounds fetches in flight.  When the deadline passes, units still running
are cancelled and left out of the results (counted as `abandoned`, like k6's interrupted
iterations): a half-played session would bias startup times.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

from packager.interrupts import run_async
from probes.config import Cdn, ProbeConfig, Target
from probes.http import Fetcher
from probes.lag import LagMonitor, LagStats
from probes.loop import new_loop
from probes.results import fetch_line, playback_line, run_line
from probes.video import play

log = logging.getLogger(__name__)

#: Called after each unit with (done, total) for a progress bar.
ProgressSink = Callable[[int, int], None]


@dataclass(frozen=True)
class Unit:
    sample: int
    cdn: Cdn
    target: Target


@dataclass(frozen=True)
class ProbeRun:
    run_id: str
    region: str
    started_at: str
    seconds: float
    units: int
    completed: int
    abandoned: int
    deadline_hit: bool
    fetches: int
    errors: int
    lag: LagStats
    lines: list[dict[str, Any]]  # run record first, then fetch and playback records


def probe_region(config: ProbeConfig, region_id: str,
                 progress: ProgressSink | None = None) -> ProbeRun:
    """Run the region's probes on a fresh event loop; never outlives the deadline by much."""
    return run_async(probe_region_async(config, region_id, progress), new_loop)


async def probe_region_async(config: ProbeConfig, region_id: str,
                             progress: ProgressSink | None = None) -> ProbeRun:
    region = config.region(region_id)
    settings = config.probe
    run_id = uuid.uuid4().hex[:12]
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    units = [Unit(s, cdn, t) for s in range(settings.samples) for cdn in config.cdns
             for t in config.targets]
    queue: asyncio.Queue[Unit] = asyncio.Queue()
    for unit in units:
        queue.put_nowait(unit)
    lines: list[dict[str, Any]] = []
    done = 0
    pins: dict[str, str] = {}
    for cdn in config.cdns:
        pins.update(cdn.resolve_for(region.id))
    lag = LagMonitor(settings.lag_threshold)
    start = perf_counter()
    deadline_hit = False

    async def run_unit(fetcher: Fetcher, unit: Unit) -> list[dict[str, Any]]:
        url = unit.cdn.url_for(region.id, unit.target.path)
        base = (run_id, region.id, unit.cdn.id, unit.target.path, unit.sample)
        if unit.target.kind == "file":
            return [fetch_line(*base, "file", None, await fetcher.fetch(url))]
        out: list[dict[str, Any]] = []
        seen: set[int] = set()
        locate = functools.partial(unit.cdn.localize, region.id)
        for playback in await play(fetcher, unit.target.path, url, unit.target.kind,
                                   settings.renditions, settings.segments, unit.cdn.id, locate):
            for step in playback.steps:
                if id(step.result) not in seen:  # the manifest is shared by all renditions
                    seen.add(id(step.result))
                    out.append(fetch_line(*base, step.step, step.rendition, step.result))
            out.append(playback_line(run_id, region.id, unit.cdn.id, unit.sample, playback))
        return out

    async def worker(fetcher: Fetcher) -> None:
        nonlocal done
        while not queue.empty():
            unit = queue.get_nowait()
            lines.extend(await run_unit(fetcher, unit))
            done += 1
            if progress is not None:
                progress(done, len(units))

    async with lag.running(), Fetcher(
        timeout=settings.timeout, concurrency=settings.concurrency,
        warm=settings.connections == "warm", pins=pins, tls_verify=settings.tls_verify, lag=lag,
    ) as fetcher:
        try:
            async with asyncio.timeout(settings.deadline):
                await asyncio.gather(*(worker(fetcher) for _ in range(settings.concurrency)))
        except TimeoutError:
            deadline_hit = True
            log.warning("deadline of %gs reached: %d of %d units not completed",
                        settings.deadline, len(units) - done, len(units))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await fetcher.session.close()
    seconds = perf_counter() - start
    fetches = [x for x in lines if x["type"] == "fetch"]
    stats = lag.stats()
    head = run_line(run_id, region, started_at, seconds, config, len(units), done,
                    deadline_hit, stats, lines)
    return ProbeRun(
        run_id=run_id, region=region.id, started_at=started_at, seconds=seconds,
        units=len(units), completed=done, abandoned=len(units) - done,
        deadline_hit=deadline_hit, fetches=len(fetches),
        errors=sum(1 for x in fetches if x["error"]), lag=stats, lines=[head, *lines],
    )
