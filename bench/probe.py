"""Benchmark the probe: fetches per second and TTFB error against local edges, beside `curl -w`.

Edges (testbed.edges, its own process, select() loop) answer /bytes/N after a configured first-byte
delay; that delay is the ground truth.  Variants, same edges, same URLs:
  ours-cold   probes.http.Fetcher, new connection per fetch (the probe's default), C in flight
  ours-warm   the same with keep-alive
  curl-cold   one `curl -Z --parallel-max C` over the URL list, `Connection: close`,
              TTFB = time_starttransfer - time_pretransfer (request written -> first byte)
  curl-seq    the same URLs one after another (no parallelism): curl's best-case timing
Goal: ours-cold >= 500 fetches/s with median |TTFB error| <= 2 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from probes.http import Fetcher
from probes.lag import LagMonitor
from probes.loop import new_loop
from testbed.edges import EdgeSpec

DELAYS = (0.005, 0.010, 0.020, 0.040)
BODY = 2000


@dataclass(frozen=True)
class Outcome:
    variant: str
    fetches: int
    errors: int
    seconds: float
    per_second: float
    median_abs_error_ms: float
    p95_abs_error_ms: float
    max_abs_error_ms: float
    lagged: int
    unlagged_median_abs_error_ms: float | None  # over the samples the probe did not flag


def start_edges(workdir: Path) -> tuple[subprocess.Popen[str], dict[str, int]]:
    spec = workdir / "edges.json"
    spec.write_text(json.dumps([asdict(EdgeSpec(f"d{int(d * 1000)}", delay=d)) for d in DELAYS]))
    proc = subprocess.Popen([sys.executable, "-m", "testbed.edges", str(spec)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def plan(ports: dict[str, int], count: int) -> list[tuple[str, float]]:
    """(url, configured delay) round-robin over the edges."""
    edges = [(f"http://127.0.0.1:{ports[f'd{int(d * 1000)}']}/bytes/{BODY}", d) for d in DELAYS]
    return [edges[i % len(edges)] for i in range(count)]


def summarise(variant: str, errors_s: list[float], failed: int, seconds: float,
              lagged_errors_s: list[float]) -> Outcome:
    errs = sorted(abs(e) * 1000 for e in errors_s + lagged_errors_s)
    n = len(errs) + failed
    clean = [abs(e) * 1000 for e in errors_s]
    return Outcome(
        variant, n, failed, round(seconds, 3), round(n / seconds, 1),
        round(statistics.median(errs), 3), round(errs[int(0.95 * (len(errs) - 1))], 3),
        round(errs[-1], 3), len(lagged_errors_s),
        round(statistics.median(clean), 3) if clean else None,
    )


async def _ours(urls: list[tuple[str, float]], concurrency: int, warm: bool) -> Outcome:
    lag = LagMonitor(0.005)
    queue = list(reversed(urls))
    errors: list[float] = []
    lagged: list[float] = []
    failed = 0

    async def worker(f: Fetcher) -> None:
        nonlocal failed
        while queue:
            url, delay = queue.pop()
            r = await f.fetch(url)
            if r.error is not None or r.ttfb is None:
                failed += 1
                continue
            (lagged if r.lagged else errors).append(r.ttfb - delay)

    async with lag.running(), Fetcher(timeout=5.0, concurrency=concurrency, warm=warm,
                                      lag=lag) as f:
        started = time.perf_counter()
        await asyncio.gather(*(worker(f) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    name = f"ours-{'warm' if warm else 'cold'} c={concurrency}"
    return summarise(name, errors, failed, seconds, lagged)


def _curl(curl: str, urls: list[tuple[str, float]], concurrency: int, workdir: Path) -> Outcome:
    config = workdir / "curl.txt"
    config.write_text("".join(f'url = "{u}"\noutput = "/dev/null"\n' for u, _ in urls))
    args = [curl, "-s", "-H", "Connection: close", "-K", str(config),
            "-w", "%{url_effective} %{time_pretransfer} %{time_starttransfer} %{http_code}\\n"]
    if concurrency > 1:
        # --parallel-immediate: open connections at once instead of waiting to multiplex
        args[1:1] = ["-Z", "--parallel-immediate", "--parallel-max", str(concurrency)]
    started = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True, check=False).stdout
    seconds = time.perf_counter() - started
    delay_of = dict(urls)
    errors: list[float] = []
    failed = 0
    for line in out.splitlines():
        url, pre, start, code = line.split()
        if code != "200":
            failed += 1
            continue
        errors.append(float(start) - float(pre) - delay_of[url])
    failed += len(urls) - len(out.splitlines())
    variant = f"curl-cold c={concurrency}" if concurrency > 1 else "curl-seq"
    return summarise(variant, errors, failed, seconds, [])


def run(coro: Coroutine[Any, Any, Outcome]) -> Outcome:
    """On the probe's own loop (StampedSelector), as `cdnpack probe` runs."""
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fetches", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--curl-concurrency", type=int, default=16)
    parser.add_argument("--curl-seq", type=int, default=200, help="URLs for sequential curl")
    parser.add_argument("--out", type=Path, default=Path("bench/out/probe.json"))
    args = parser.parse_args()
    results: list[Outcome] = []
    with tempfile.TemporaryDirectory() as tmp:
        proc, ports = start_edges(Path(tmp))
        try:
            urls = plan(ports, args.fetches)
            run(_ours(urls[:200], 8, warm=False))  # warm-up (imports, caches), discarded
            for concurrency in args.concurrency:
                results.append(run(_ours(urls, concurrency, warm=False)))
                results.append(run(_ours(urls, concurrency, warm=True)))
            curl = shutil.which("curl")
            if curl:
                results.append(_curl(curl, urls, args.curl_concurrency, Path(tmp)))
                results.append(_curl(curl, urls[: args.curl_seq], 1, Path(tmp)))
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=10)
    print(f"{'variant':<16} {'fetches':>7} {'err':>4} {'s':>7} {'fetch/s':>8} "
          f"{'med|e|ms':>9} {'p95|e|ms':>9} {'max|e|ms':>9} {'lagged':>6} {'unlagged med':>12}")
    for r in results:
        clean = r.unlagged_median_abs_error_ms
        print(f"{r.variant:<16} {r.fetches:>7} {r.errors:>4} {r.seconds:>7.2f} "
              f"{r.per_second:>8.1f} {r.median_abs_error_ms:>9.3f} {r.p95_abs_error_ms:>9.3f} "
              f"{r.max_abs_error_ms:>9.3f} {r.lagged:>6} "
              f"{'-' if clean is None else f'{clean:.3f}':>12}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"delays_s": DELAYS, "body_bytes": BODY,
                                    "results": [asdict(r) for r in results]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
