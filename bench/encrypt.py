"""Benchmark: `cdnpack package --copy --encrypt cbcs|cenc` against Shaka Packager doing the same
job (same input, segment duration, scheme, key, HLS + DASH), with `cp` as the physical floor.

The input (10 min 1080p H.264 + AAC, about 390 MB) is made once: one generated minute, then
concatenated with `-c copy`. Runs alternate between tools so that cache and load drift hit
both alike; the median of several runs is reported with the peak RSS of each tool's process
tree (wait4's ru_maxrss). Usage: .venv/bin/python -m bench.encrypt [--runs 3] [--minutes 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from packager.tools import find_tool

ROOT = Path(__file__).resolve().parent.parent
KID = "00112233445566778899aabbccddeeff"
KEY = "0123456789abcdef0123456789abcdef"
IV = "000102030405060708090a0b0c0d0e0f"
SEGMENT_SECONDS = 4


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mb: float
    #: user + system CPU seconds of the process tree: a figure the machine's load disturbs
    #: far less than wall time (bench/localize.py reports both).
    cpu_seconds: float = 0.0


def timed(args: Sequence[str | Path], env: dict[str, str] | None = None) -> Run:
    """Wall time and peak RSS (largest process in the tree, from wait4) of one command."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(a) for a in args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise SystemExit(f"{args[0]} failed ({proc.returncode}): {stderr[-500:]}")
    if proc.stderr:
        proc.stderr.close()
    return Run(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)


def make_input(workdir: Path, minutes: int) -> Path:
    target = workdir / f"input_1080p_{minutes}min.mp4"
    if target.exists():
        return target
    ffmpeg = str(find_tool("ffmpeg").path)
    minute = workdir / "minute_1080p.mp4"
    subprocess.run(
        [ffmpeg, "-v", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:beep_factor=4:sample_rate=48000",
         "-t", "60", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "5M",
         "-maxrate", "5M", "-bufsize", "10M", "-g", "50", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "128k", "-ac", "2", str(minute)],
        check=True,
    )
    listing = workdir / "concat.txt"
    listing.write_text("".join(f"file '{minute.name}'\n" for _ in range(minutes)))
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
         "-c", "copy", str(target)],
        check=True,
    )
    return target


def ours(source: Path, out: Path, scheme: str) -> Run:
    # The previous run's output is removed before timing, as for Shaka Packager.
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "CDNPACK_KEY": f"{KID}:{KEY}"}
    return timed(
        [sys.executable, "-m", "cli", "package", source, "-o", out, "--copy",
         "--encrypt", scheme, "--iv", IV if scheme == "cbcs" else IV[:16],
         "--segment-duration", str(SEGMENT_SECONDS), "--json"],
        env=env,
    )


def shaka(source: Path, out: Path, scheme: str) -> Run:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    args: list[str | Path] = [
        find_tool("packager").path,
        f"in={source},stream=video,init_segment={out}/video/init.mp4,"
        f"segment_template={out}/video/$Number%05d$.m4s,playlist_name=video/playlist.m3u8",
        f"in={source},stream=audio,init_segment={out}/audio/init.mp4,"
        f"segment_template={out}/audio/$Number%05d$.m4s,playlist_name=audio/playlist.m3u8,"
        "hls_group_id=audio",
        "--enable_raw_key_encryption", "--keys", f"key_id={KID}:key={KEY}",
        "--protection_scheme", scheme, "--clear_lead", "0",
        "--segment_duration", str(SEGMENT_SECONDS), "--generate_static_live_mpd",
        "--mpd_output", f"{out}/manifest.mpd",
        "--hls_master_playlist_output", f"{out}/master.m3u8",
        "--vmodule=*=0", "--quiet",
    ]
    if scheme == "cbcs":
        args += ["--iv", IV]
    return timed(args)


def copy_floor(source: Path, out: Path) -> Run:
    out.mkdir(parents=True, exist_ok=True)
    return timed(["cp", source, out / "copy.mp4"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--schemes", nargs="+", default=["cbcs", "cenc"])
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out" / "encrypt")
    options = parser.parse_args()
    workdir: Path = options.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    source = make_input(workdir, options.minutes)
    print(f"input: {source.name}, {source.stat().st_size / 1e6:.0f} MB")
    # The machine is shared: say how busy it was, so that runs can be compared fairly.
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    results: dict[str, list[Run]] = {}
    for i in range(options.runs):
        for scheme in options.schemes:
            jobs: list[tuple[str, Callable[[], Run]]] = [
                (f"cdnpack {scheme}", partial(ours, source, workdir / "ours", scheme)),
                (f"shaka {scheme}", partial(shaka, source, workdir / "shaka", scheme)),
            ]
            if i % 2:
                jobs.reverse()
            for name, job in jobs:
                results.setdefault(name, []).append(job())
        results.setdefault("cp", []).append(copy_floor(source, workdir / "floor"))
    # Best of the runs too: on a shared machine it is the least disturbed run of each tool.
    print(f"{'job':<14}{'median s':>10}{'best s':>8}{'peak RSS MB':>13}   runs")
    for name, runs in results.items():
        median = statistics.median(r.seconds for r in runs)
        best = min(r.seconds for r in runs)
        rss = max(r.peak_rss_mb for r in runs)
        listed = " ".join(f"{r.seconds:.2f}" for r in runs)
        print(f"{name:<14}{median:>10.2f}{best:>8.2f}{rss:>13.0f}   {listed}")
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    for scheme in options.schemes:
        a = statistics.median(r.seconds for r in results[f"cdnpack {scheme}"])
        b = statistics.median(r.seconds for r in results[f"shaka {scheme}"])
        best_a = min(r.seconds for r in results[f"cdnpack {scheme}"])
        best_b = min(r.seconds for r in results[f"shaka {scheme}"])
        print(f"{scheme}: cdnpack / shaka = {a / b:.2f} (median), {best_a / best_b:.2f} (best)")


if __name__ == "__main__":
    main()
