"""Benchmark content steering: does it improve delivery, and can its server keep up?

Part 1, delivery. The demo's world (testbed/demo.py): a local origin, twelve emulated edges
(two CDNs x six regions, each with its own first-byte delay and bandwidth), fastly degraded in
Europe and Southeast Asia. A steered release (720p default ladder, 2 s segments) is pushed, the
six regions are probed for real, and the plan's static steering documents are published
(`steer publish`'s documents, served through the region's cloudfront edge as the CloudFront
Function would). Then a population of simulated viewers per region, interleaved:
  steering      fetches its region's steering document, then plays the first pathway
  cloudfront    plays cloudfront only          } the two single-CDN deployments; the best
  fastly        plays fastly only              } one is the lower audience-weighted startup
  equal split   viewer i plays CDN i mod 2
A viewer is the probe's player-like start (probes/video.py: multivariant, media playlist, init,
first segment of the top rendition, through the region's edge) plus sustained fetches of the
next segments on the same keep-alive connections. Startup is the time to the first segment
(the steering document's fetch included for steering viewers); delivered throughput is the
top rendition's segment bits over the time spent fetching them.
Goals: steering at least as good as the best single CDN in every region (startup p95 within
10 %, the spread between two samples of one path at 48 viewers: where steering and the best
single CDN use the same CDN their ratios ranged 0.87-1.10 over runs; throughput p50 no lower
by more than 5 %), and its startup p95 >= 20 % better than the equal split's in the
degraded regions.

Part 2, the steering server (`cdnpack steer serve`, pinned to core 0) answering
/hls.json with a viewer's region header and throughput report, beside a static-file baseline
(aiohttp serving the same document from a file, also on core 0); load generators pinned to
core 1, Debian's (`apt-get install -y wrk hey`), keep-alive, repetitions interleaved:
  saturation  wrk, one thread, 16 connections: the most requests/s each server answers
  at 3,000/s  hey, 20 workers x 150 requests/s: latency at the goal's rate (an open rate
              per worker, so a slow answer cannot lower the load it is measured under)
Goal: >= 3,000 requests/s with p99 <= 10 ms.

Command: .venv/bin/python -m bench.steering [--viewers 24] [--segments 3] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cdn.publish import PushRequest, push
from cdn.s3 import S3Location
from packager.files import write_atomic
from packager.output.pipeline import PackageRequest, package
from probes.config import SHIPPED_CONFIG, ProbeConfig, load_config
from probes.http import Fetcher
from probes.results import jsonl, read_results
from probes.run import probe_region
from probes.score import nearest_rank
from probes.video import parse_hls_media, parse_hls_multivariant
from steering.documents import manifest_spec
from steering.plan import make_plan
from steering.publish import PublishRequest, publish
from testbed.clips import ClipSpec, make_clip
from testbed.demo import BUCKET, DEGRADED, PREFIX, demo_config, local_cdn
from testbed.origin import free_port, local_connection

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = ("steering", "cloudfront", "fastly", "equal split")
DOCUMENTS = f"{PREFIX}/steering"
IN_FLIGHT = 8  # viewers at once: enough to overlap edge delays, few enough not to lag
WRK_CONNECTIONS = 16
RATE_WORKERS, RATE_PER_WORKER = 20, 150  # 3,000 requests/s
#: Servers and load generators alike ask for a higher CPU priority (granted to root), as the
#: emulated edges do: on a machine shared with other jobs, the neighbours' bursts would
#: otherwise be what the tail latency measures.
PRIORITY = ("nice", "-n", "-10") if os.geteuid() == 0 else ()


@dataclass(frozen=True)
class Session:
    region: str
    strategy: str
    cdn: str
    startup: float | None  # seconds to the first segment
    throughput: float | None  # bits/s over the sustained segment fetches
    error: str | None


async def viewer(config: ProbeConfig, region: str, strategy: str, index: int,
                 segments: int) -> Session:
    """One simulated viewer (module docstring), fetching as hls.js does.

    Every viewer opens the release through one CDN's URL: its own CDN for the single-CDN and
    split strategies, the manifests' default pathway (cloudfront) for steering viewers. A
    steering viewer then asks for its steering document (SERVER-URI, here the region's
    cloudfront edge serving the published documents) while it loads the default pathway's
    media playlist, and moves to the document's first pathway before the first segment."""
    cdns = {c.id: c for c in config.cdns}
    default = config.cdns[0].id
    entry = {"steering": default, "equal split": sorted(cdns)[index % len(cdns)]}.get(
        strategy, strategy)
    async with Fetcher(timeout=20, concurrency=2, warm=True) as fetcher:
        started = time.perf_counter()

        async def get(url: str) -> bytes:
            answer = await fetcher.fetch(url, keep_body=True)
            if answer.error is not None:
                raise ViewerError(f"{url}: {answer.error}")
            return answer.body

        async def playlist(cdn: str, variants_of: bytes) -> tuple[str, bytes]:
            variants = parse_hls_multivariant(variants_of.decode(), master, cdn)
            url = cdns[cdn].localize(region, max(variants, key=lambda v: v.bandwidth).url)
            return url, await get(url)

        try:
            master = cdns[entry].url_for(region, "master.m3u8")
            multivariant = await get(master)
            cdn = entry
            if strategy == "steering":
                document = cdns[default].url_for(region, f"steering/hls/{region}.json")
                doc, (media_url, media) = await asyncio.gather(
                    get(document), playlist(cdn, multivariant))
                cdn = json.loads(doc)["PATHWAY-PRIORITY"][0]
                if cdn != entry:
                    media_url, media = await playlist(cdn, multivariant)
            else:
                media_url, media = await playlist(cdn, multivariant)
            init, urls = parse_hls_media(media.decode(), media_url, segments + 1)
            if init is not None:
                await get(init)
            await get(urls[0])
            startup = time.perf_counter() - started
            bits, busy = 0, 0.0
            for url in urls[1:]:
                answer = await fetcher.fetch(url)
                if answer.error is not None:
                    raise ViewerError(f"{url}: {answer.error}")
                bits += answer.bytes * 8
                busy += (answer.ttfb or 0.0) + (answer.transfer or 0.0)
        except ViewerError as exc:
            return Session(region, strategy, entry, None, None, str(exc))
    return Session(region, strategy, cdn, startup, bits / busy if busy else None, None)


class ViewerError(Exception):
    """A fetch of a simulated viewer failed (counted, never hidden)."""


async def population(config: ProbeConfig, viewers: int, segments: int) -> list[Session]:
    plan = [(region.id, strategy, i) for i in range(viewers) for region in config.regions
            for strategy in STRATEGIES]
    random.Random(20261204).shuffle(plan)  # no strategy gets the quiet or the busy moments
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(region: str, strategy: str, i: int) -> Session:
        async with gate:
            return await viewer(config, region, strategy, i, segments)

    return list(await asyncio.gather(*(one(*p) for p in plan)))


@dataclass(frozen=True)
class Cell:
    startup_p95: float
    throughput_p50: float
    sessions: int
    errors: int
    cdns: dict[str, int]


def cells(sessions: list[Session]) -> dict[tuple[str, str], Cell]:
    out: dict[tuple[str, str], Cell] = {}
    for key in sorted({(s.region, s.strategy) for s in sessions}):
        mine = [s for s in sessions if (s.region, s.strategy) == key]
        ok = [s for s in mine if s.error is None]
        starts = [s.startup for s in ok if s.startup is not None]
        rates = [s.throughput for s in ok if s.throughput is not None]
        used: dict[str, int] = {}
        for s in ok:
            used[s.cdn] = used.get(s.cdn, 0) + 1
        out[key] = Cell(nearest_rank(starts, 95) if starts else math.inf,
                        nearest_rank(rates, 50, higher_is_better=True) if rates else 0.0,
                        len(mine), len(mine) - len(ok), used)
    return out


def delivery(workdir: Path, viewers: int, segments: int) -> dict[str, Any]:
    """Part 1 (module docstring): the table per region and strategy, and the goals."""
    source = make_clip(workdir / "source.mp4", ClipSpec(duration=16, width=1280, height=720))
    results = workdir / "probes"
    results.mkdir()
    with local_cdn(workdir) as (url, _, edges, _):
        config_path = demo_config(edges, SHIPPED_CONFIG, workdir / "regions.yaml",
                                  f"http://127.0.0.1:{free_port()}/")
        config = load_config(config_path)
        release = workdir / "release"
        package(PackageRequest(source=source, output=release, segment_duration=2.0,
                               steering=manifest_spec(config)))
        connection = local_connection(url)
        push(PushRequest(release, S3Location(BUCKET, PREFIX), connection=connection))
        for region in config.regions:
            run = probe_region(config, region.id)
            write_atomic(results / f"probe-{region.id}.jsonl", jsonl(run.lines))
        plan = make_plan(read_results([str(results)]), config, datetime.now(UTC))
        publish(PublishRequest(S3Location(BUCKET, DOCUMENTS), config, plan, connection))
        started = time.monotonic()
        sessions = asyncio.run(population(config, viewers, segments))
        seconds = time.monotonic() - started
    table = cells(sessions)
    weights = {r.id: r.weight for r in config.regions}
    single = {cdn: sum(weights[r] * table[r, cdn].startup_p95 for r in weights)
              for cdn in ("cloudfront", "fastly")}
    best = min(single, key=lambda c: single[c])
    assert config.steering is not None
    limits = (config.steering.max_age, config.steering.hysteresis)
    rows: list[dict[str, Any]] = []
    for rid in weights:
        steer, best_cell, split = (table[rid, s] for s in ("steering", best, "equal split"))
        rows.append({
            "region": rid,
            "degraded": any(rid in r for r in DEGRADED.values()),
            "order": list(plan.for_region(rid).order),
            "why": plan.for_region(rid).reasons(plan.created, *limits),
            **{f"{s} startup p95 ms": round(table[rid, s].startup_p95 * 1000, 1)
               for s in STRATEGIES},
            **{f"{s} throughput p50 Mb/s": round(table[rid, s].throughput_p50 / 1e6, 1)
               for s in STRATEGIES},
            "steering / best single startup": round(steer.startup_p95 / best_cell.startup_p95, 3),
            "steering / best single throughput": round(
                steer.throughput_p50 / best_cell.throughput_p50, 3),
            "startup gain vs equal split": round(1 - steer.startup_p95 / split.startup_p95, 3),
            "errors": sum(table[rid, s].errors for s in STRATEGIES),
        })
    as_good = all(r["steering / best single startup"] <= 1.10
                  and r["steering / best single throughput"] >= 0.95 for r in rows)
    better = all(r["startup gain vs equal split"] >= 0.20 for r in rows if r["degraded"])
    return {"viewers_per_cell": viewers, "sessions": len(sessions), "seconds": round(seconds, 1),
            "best_single": best, "rows": rows,
            "goal_as_good_as_best_single": as_good, "goal_20pct_vs_equal_split": better}


@contextmanager
def pinned(args: list[str], core: int, ready: str | None = None) -> Iterator[subprocess.Popen[str]]:
    """A server process on one core; waits for a line containing `ready` on its stdout."""
    proc = subprocess.Popen([*PRIORITY, "taskset", "-c", str(core), *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        while ready is not None and ready not in (line := proc.stdout.readline()):
            if not line:
                raise RuntimeError(f"{args[:4]} exited {proc.wait()}")
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def wrk(url: str, seconds: int, headers: dict[str, str]) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) from wrk on core 1."""
    args = [*PRIORITY, "taskset", "-c", "1", "wrk", "-t1", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s",
            "--latency", *(x for k, v in headers.items() for x in ("-H", f"{k}: {v}")), url]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    if "Non-2xx or 3xx responses" in out:
        raise RuntimeError(f"wrk saw error answers from {url}:\n{out}")

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, out, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"wrk output without {pattern!r}:\n{out}")
        return match

    def quantile(q: str) -> float:
        value, unit = find(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)\s*$").groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return float(find(r"Requests/sec:\s+([\d.]+)").group(1)), quantile("50"), quantile("99")


def hey(url: str, seconds: int, headers: dict[str, str]) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) from hey at RATE_WORKERS x RATE_PER_WORKER, on core 1."""
    args = [*PRIORITY, "taskset", "-c", "1", "hey", "-z", f"{seconds}s", "-c", str(RATE_WORKERS),
            "-q", str(RATE_PER_WORKER),
            *(x for k, v in headers.items() for x in ("-H", f"{k}: {v}")), url]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    codes = re.findall(r"\[(\d+)\]\s+\d+ responses", out)
    if codes != ["200"]:
        raise RuntimeError(f"hey saw answers other than 200 from {url}:\n{out}")

    def number(pattern: str) -> float:
        match = re.search(pattern, out, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"hey output without {pattern!r}:\n{out}")
        return float(match.group(1))

    return (number(r"Requests/sec:\s+([\d.]+)"), number(r"50% in ([\d.]+) secs") * 1000,
            number(r"99% in ([\d.]+) secs") * 1000)


def serve_static(root: str, port: int) -> None:
    """The baseline: aiohttp serving files (what a static steering document costs)."""
    from aiohttp import web  # noqa: PLC0415 (only in the baseline's own process)
    app = web.Application()
    app.router.add_static("/", root)
    print("listening", flush=True)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def server_load(workdir: Path, repeat: int, seconds: int) -> dict[str, Any]:
    """Part 2 (module docstring)."""
    missing = [tool for tool in ("wrk", "hey", "taskset") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"bench/steering.py needs {', '.join(missing)}: "
                         "apt-get install -y wrk hey util-linux")
    config = workdir / "regions.yaml"
    results = workdir / "probes"
    static = workdir / "static"
    static.mkdir()
    port, static_port = free_port(), free_port()
    query = "reload=1&_HLS_pathway=cloudfront&_HLS_throughput=8000000"
    steer_url = f"http://127.0.0.1:{port}/hls.json?{query}"
    headers = {"CloudFront-Viewer-Country": "FR"}
    serve_args = [sys.executable, "-m", "cli", "steer", "serve", "--config", str(config),
                  "--results", str(results), "--listen", f"127.0.0.1:{port}", "--refresh",
                  "30s", "--json"]
    runs: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    with ExitStack() as stack:
        stack.enter_context(pinned(serve_args, 0, "listening"))
        with urllib.request.urlopen(urllib.request.Request(steer_url, headers=headers)) as doc:
            (static / "hls.json").write_bytes(doc.read())
        stack.enter_context(pinned([sys.executable, "-m", "bench.steering", "--serve-static",
                                    str(static), str(static_port)], 0, "listening"))
        targets = {"steer serve": steer_url,
                   "static file": f"http://127.0.0.1:{static_port}/hls.json"}
        for target in targets.values():  # warm both (imports, first connections)
            wrk(target, 2, headers)
        for _ in range(repeat):
            for load, tool in (("saturation", wrk), ("3000/s", hey)):
                for name, target in targets.items():
                    time.sleep(1)
                    runs.setdefault((name, load), []).append(tool(target, seconds, headers))
    summary: dict[str, Any] = {}
    for (name, load), values in runs.items():
        summary.setdefault(name, {})[load] = {
            "requests_per_s": round(statistics.median(v[0] for v in values)),
            "p50_ms": round(statistics.median(v[1] for v in values), 2),
            "p99_ms": round(statistics.median(v[2] for v in values), 2),
            "runs": [[round(r), round(p50, 2), round(p99, 2)] for r, p50, p99 in values],
        }
    ours, static_file = summary["steer serve"], summary["static file"]
    return {**summary,
            "ratio_saturation_requests_per_s": round(
                ours["saturation"]["requests_per_s"]
                / static_file["saturation"]["requests_per_s"], 3),
            # hey's per-worker limiter delivers a few percent under its nominal rate.
            "goal_3000_rps_p99_10ms": (ours["saturation"]["requests_per_s"] >= 3000
                                       and ours["3000/s"]["requests_per_s"] >= 2850
                                       and ours["3000/s"]["p99_ms"] <= 10),
            "load": f"saturation: wrk -t1 -c{WRK_CONNECTIONS} -d{seconds}s --latency; 3000/s: "
                    f"hey -c {RATE_WORKERS} -q {RATE_PER_WORKER} -z {seconds}s; both on core 1,"
                    " servers on core 0"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--viewers", type=int, default=24, help="viewers per region x strategy")
    parser.add_argument("--segments", type=int, default=3,
                        help="sustained segment fetches after the first")
    parser.add_argument("--repeat", type=int, default=3, help="wrk runs per server")
    parser.add_argument("--load-seconds", type=int, default=10)
    parser.add_argument("--serve-static", nargs=2, metavar=("ROOT", "PORT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_static:
        serve_static(args.serve_static[0], int(args.serve_static[1]))
        return
    if args.viewers < 1 or args.segments < 1 or args.repeat < 1 or args.load_seconds < 1:
        parser.error("--viewers, --segments, --repeat and --load-seconds must be positive")
    with tempfile.TemporaryDirectory(prefix="bench-steering-") as tmp:
        workdir = Path(tmp)
        report = {"date": datetime.now(UTC).date().isoformat(),
                  "load_average": os.getloadavg()[0],
                  "delivery": delivery(workdir, args.viewers, args.segments),
                  "server": server_load(workdir, args.repeat, args.load_seconds)}
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "steering.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
