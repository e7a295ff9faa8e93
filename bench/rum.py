"""Benchmark `cdnpack rum ingest` against the floor of reading the same logs: `zcat | wc -l`.

Generates CloudFront standard logs (gzip files named as CloudFront names them, the 33 fields,
the W3C header) of realistic viewers: sessions of 40-400 requests across six regions' countries
and edge locations, hls/dash objects, CMCD in the query (br from a ladder, bl, mtp, sid, su at
startup, bs after stalls, ot, d, a few custom keys), real players' user agents, 1% errors.
Then, side by side on the same files, alternating, `--repeat` times each:
  floor    zcat FILES | wc -l              (decompress and count lines: no parsing at all)
  ingest   cdnpack rum ingest FILES --format cloudfront-standard -o RUM.jsonl (a new process)
  engine   the same aggregation in this process (rum.ingest.run_duckdb: no CLI start-up)
Goal: ingest <= 3x the floor. Memory: ingest's peak RSS at two input sizes (the first
`--small` lines and all of them) should stay flat: DuckDB spills past its memory_limit.
Generated data lives in bench/out/rum (ignored by git); it is reused when already there.

  python -m bench.rum [--lines 10000000] [--small 2000000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from urllib.parse import quote

from bench.encrypt import timed
from probes.config import SHIPPED_CONFIG, load_config
from rum.aggregate import mapping_for
from rum.cloudfront import STANDARD_HEADER, standard_file_name
from rum.ingest import run_duckdb
from rum.sources import local_sources

OUT = Path(__file__).resolve().parent / "out" / "rum"
LINES_PER_FILE = 250_000
#: (edge location, country, audience weight)
EDGES = (("IAD89-P1", "US", 20), ("LAX50-C1", "US", 10), ("YTO50-P1", "CA", 4),
         ("FRA56-C2", "DE", 8), ("LHR61-P4", "GB", 8), ("CDG52-P2", "FR", 6),
         ("NRT57-P1", "JP", 8), ("ICN54-C1", "KR", 4), ("SIN2-P3", "SG", 5),
         ("BKK50-C1", "TH", 3), ("GRU3-P1", "BR", 5), ("SCL50-C1", "CL", 2),
         ("DXB52-P1", "AE", 3), ("JED50-C1", "SA", 2))
LADDER = (400, 800, 1400, 2000, 3000, 5000)
AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (SMART-TV; Linux; Tizen 7.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/5.0 Chrome/94.0.4606.31 TV Safari/537.36",
)
HOSTS = ("video.example.com", "video-ap.example.com")
T0 = 1_796_385_600  # 2026-12-04T12:00:00Z


def _session_lines(rng: random.Random, start: float) -> list[str]:
    edge, _, _ = rng.choices(EDGES, weights=[e[2] for e in EDGES])[0]
    sid = str(uuid.UUID(int=rng.getrandbits(128)))
    agent = quote(rng.choice(AGENTS), safe="/;,()")
    ip = f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    host = rng.choice(HOSTS)
    rung = rng.randrange(len(LADDER))
    mtp = rng.randint(1500, 60000)
    dash = rng.random() < 0.4
    ext = "m4s"
    t = start
    lines = []
    count = rng.randint(40, 400)
    for i in range(count):
        video = i > 0 and i % 3 != 0
        if i == 0:
            path, ot = ("/title/manifest.mpd", "m") if dash else ("/title/master.m3u8", "m")
        elif video:
            path, ot = f"/title/video_{LADDER[rung]}k/seg_{i:05d}.{ext}", "v"
        else:
            path, ot = f"/title/audio_128k/seg_{i:05d}.{ext}", "a"
        size = (LADDER[rung] * 250 if video else 32_000) + rng.randint(0, 9999)
        took = max(0.001, size * 8 / (mtp * 1000) * rng.uniform(0.6, 1.4))
        t += took + (rng.uniform(0.5, 1.8) if video else 0.01)
        keys = [f"bl={rng.randint(0, 300) * 100}", f"br={LADDER[rung]}", "d=4004",
                f"mtp={mtp}", f"ot={ot}", f'sid="{sid}"', "sf=" + ("d" if dash else "h"), "st=v"]
        if i < 4:
            keys.append("su")
        if video and rng.random() < 0.02:
            keys.append("bs")
            rung = max(0, rung - 1)
        elif video and rng.random() < 0.03:
            rung = min(len(LADDER) - 1, rung + 1)
        if rng.random() < 0.05:
            keys.append('com.example-player="v2.1"')
        query = "CMCD=" + quote(",".join(sorted(keys)), safe="")
        status = 200 if rng.random() > 0.01 else rng.choice((403, 404, 502, 503, 504))
        moment = time.gmtime(t)
        rid = f"{rng.getrandbits(200):051x}"[:56]
        lines.append(
            f"{time.strftime('%Y-%m-%d', moment)}\t{time.strftime('%H:%M:%S', moment)}\t{edge}\t"
            f"{size + 420}\t{ip}\tGET\td111111abcdef8.cloudfront.net\t{path}\t{status}\t-\t"
            f"{agent}\t{query}\t-\t{'Hit' if status == 200 else 'Error'}\t{rid}==\t{host}\t"
            f"https\t{rng.randint(180, 400)}\t{took:.3f}\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\t"
            f"{'Hit' if status == 200 else 'Error'}\tHTTP/2.0\t-\t-\t{rng.randint(1024, 65535)}"
            f"\t{took / 3:.3f}\t{'Hit' if status == 200 else 'Error'}\tvideo/mp4\t{size}\t-\t-")
    return lines


def write_file(index: int, lines_wanted: int, seed: int) -> Path:
    rng = random.Random(seed * 1_000_003 + index)
    path = OUT / standard_file_name("E2BENCHRUM", f"2026-12-04-{index % 24:02d}",
                                    f"{index:08x}")
    lines: list[str] = []
    while len(lines) < lines_wanted:
        lines += _session_lines(rng, T0 + rng.uniform(0, 3000))
    body = STANDARD_HEADER + "\n".join(lines[:lines_wanted]) + "\n"
    temp = path.with_suffix(".tmp")
    temp.write_bytes(gzip.compress(body.encode(), compresslevel=6))
    temp.replace(path)
    return path


def generate(total: int, seed: int) -> list[Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    files = (total + LINES_PER_FILE - 1) // LINES_PER_FILE
    wanted = [min(LINES_PER_FILE, total - i * LINES_PER_FILE) for i in range(files)]
    paths = [OUT / standard_file_name("E2BENCHRUM", f"2026-12-04-{i % 24:02d}", f"{i:08x}")
             for i in range(files)]
    missing = [i for i, p in enumerate(paths) if not p.exists()]
    if missing:
        with ProcessPoolExecutor(os.cpu_count() or 2) as pool:
            list(pool.map(write_file, missing, [wanted[i] for i in missing],
                          [seed] * len(missing)))
    return paths


def floor(files: list[Path]) -> float:
    started = time.perf_counter()
    done = subprocess.run(f"zcat {' '.join(map(str, files))} | wc -l", shell=True,
                          capture_output=True, text=True, check=True)
    del done
    return time.perf_counter() - started


def ingest(files: list[Path]) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        run = timed([sys.executable, "-m", "cli", "rum", "ingest", *map(str, files),
                     "--format", "cloudfront-standard", "-o", str(Path(tmp) / "RUM.jsonl"),
                     "--cdn", "cloudfront"])
    return run.seconds, int(run.peak_rss_mb * 1024 * 1024)  # bytes, as ru_maxrss measured


def engine(files: list[Path]) -> float:
    """The ingest's DuckDB work alone, in this process."""
    sources = local_sources([str(p) for p in files])
    mapping = mapping_for(load_config(SHIPPED_CONFIG), "cloudfront")
    started = time.perf_counter()
    run_duckdb(sources, "cloudfront-standard", None, mapping, "512MB", "bench")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--small", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not 0 < args.small < args.lines or args.repeat < 1:
        parser.error("need 0 < --small < --lines and --repeat >= 1")
    started = time.perf_counter()
    files = generate(args.lines, args.seed)
    size = sum(p.stat().st_size for p in files)
    print(f"logs: {len(files)} files, {args.lines:,} lines, {size / 1e6:.0f} MB gzip "
          f"(generated or found in {time.perf_counter() - started:.0f} s)")
    small = files[: max(1, args.small // LINES_PER_FILE)]
    rows = []
    engines = []
    for rep in range(args.repeat):
        f = floor(files)
        seconds, rss = ingest(files)
        alone = engine(files)
        rows.append((f, seconds, rss))
        engines.append(alone / f)
        print(f"rep {rep + 1}: floor {f:.1f} s, ingest {seconds:.1f} s "
              f"({seconds / f:.2f}x), peak RSS {rss / 1e6:.0f} MB; engine {alone:.1f} s "
              f"({alone / f:.2f}x)")
    small_seconds, small_rss = ingest(small)
    ratio = statistics.median(s / f for f, s, _ in rows)
    big_rss = max(r for _, _, r in rows)
    print(f"ingest / floor, median of {args.repeat}: {ratio:.2f}x (goal <= 3x) "
          f"{'MET' if ratio <= 3 else 'NOT MET'}; engine / floor "
          f"{statistics.median(engines):.2f}x")
    print(f"peak RSS: {len(small) * LINES_PER_FILE:,} lines {small_rss / 1e6:.0f} MB "
          f"({small_seconds:.1f} s), {args.lines:,} lines {big_rss / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
