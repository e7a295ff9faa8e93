"""Benchmark: `cdnpack package --copy --encrypt cbcs|cenc` against Shaka Packager doing the same
job (same input, segment duration, scheme, key, HLS + DASH), with `cp` as the physical floor.

Two inputs by default, both 720p H.264 + AAC: 10 minutes (about 240 MiB: the cost per byte)
and 2 seconds (the fixed cost: interpreter, imports, probing, start-up of the workers). Each is
made once under bench/out/encrypt from one generated minute (concatenated or cut with
`-c copy`). Runs alternate between the tools so that cache and load drift hit both alike.
For each input and scheme the figures of record are the ratios of the medians, ours / Shaka,
of wall time and of CPU time (user + system of the whole process tree, from wait4: a figure the
machine's other jobs disturb far less than wall time), and each tool's peak RSS (the largest
process of its tree). Goals (issue 25): wall <= 0.8, CPU <= 1.0, memory flat in input length.

Usage: .venv/bin/python -m bench.encrypt [--runs 5] [--short-runs 15] [--lengths 600 2]
       [--height 720] [--schemes cbcs cenc] [--baseline DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench.bytecode import compile_ours
from bench.machine import machine_doc, machine_line
from packager.tools import find_tool

ROOT = Path(__file__).resolve().parent.parent
KID = "00112233445566778899aabbccddeeff"
KEY = "0123456789abcdef0123456789abcdef"
IV = "000102030405060708090a0b0c0d0e0f"
SEGMENT_SECONDS = 4
#: Video bitrate of the generated source per height (the 720p one is the issue's ~240 MiB).
BITRATES = {720: "3200k", 1080: "5M"}
#: Inputs at most this long are timed `--short-runs` times: their runs last tens of ms.
SHORT = 10
WALL_GOAL = 0.8
CPU_GOAL = 1.0


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mb: float
    #: user + system CPU seconds of the process tree: a figure the machine's load disturbs
    #: far less than wall time (bench/localize.py reports both).
    cpu_seconds: float = 0.0


def timed(args: Sequence[str | Path], env: dict[str, str] | None = None,
          cwd: Path | None = None) -> Run:
    """Wall time, peak RSS (largest process in the tree) and CPU time (user + system of the
    tree) of one command, from wait4."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(a) for a in args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        cwd=cwd,
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


def make_input(workdir: Path, seconds: int, height: int = 720) -> Path:
    """A `seconds` long H.264 + AAC MP4 at `height`: one generated minute (a key frame every
    2 s), concatenated and cut with `-c copy`."""
    target = workdir / f"input_{height}p_{seconds}s.mp4"
    if target.exists():
        return target
    ffmpeg = str(find_tool("ffmpeg").path)
    minute = workdir / f"minute_{height}p.mp4"
    if not minute.exists():
        rate = BITRATES.get(height, "5M")
        subprocess.run(
            [ffmpeg, "-v", "error", "-y",
             "-f", "lavfi", "-i", f"testsrc2=size={height * 16 // 9}x{height}:rate=25",
             "-f", "lavfi", "-i", "sine=frequency=440:beep_factor=4:sample_rate=48000",
             "-t", "60", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", rate,
             "-maxrate", rate, "-bufsize", f"{2 * int(rate.rstrip('kM'))}{rate[-1]}",
             "-g", "50", "-pix_fmt", "yuv420p",
             "-c:a", "aac", "-b:a", "128k", "-ac", "2", str(minute)],
            check=True,
        )
    listing = workdir / "concat.txt"
    listing.write_text(f"file '{minute.name}'\n" * math.ceil(seconds / 60))
    partial_target = target.with_name(f".{target.name}.part.mp4")
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
         "-t", str(seconds), "-c", "copy", str(partial_target)],
        check=True,
    )
    partial_target.replace(target)
    return target


def ours(source: Path, out: Path, scheme: str, tree: Path = ROOT) -> Run:
    """`cdnpack package` of this source tree, or of another one (`--baseline`: run from its
    directory, its modules come first on the path)."""
    # The previous run's output is removed before timing, as for Shaka Packager.
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "CDNPACK_KEY": f"{KID}:{KEY}"}
    return timed(
        [sys.executable, "-m", "cli", "package", source.absolute(), "-o", out.absolute(),
         "--copy", "--encrypt", scheme, "--iv", IV if scheme == "cbcs" else IV[:16],
         "--segment-duration", str(SEGMENT_SECONDS), "--json"],
        env=env, cwd=tree,
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


def summary(ours_runs: list[Run], shaka_runs: list[Run]) -> dict[str, Any]:
    """Ratios of the medians (wall and CPU), and each side's medians and peak RSS."""
    def median(runs: list[Run], field: str) -> float:
        return statistics.median(float(getattr(r, field)) for r in runs)
    wall = median(ours_runs, "seconds") / median(shaka_runs, "seconds")
    cpu = median(ours_runs, "cpu_seconds") / median(shaka_runs, "cpu_seconds")
    return {
        "wall_ratio": wall,
        "cpu_ratio": cpu,
        "wall_met": wall <= WALL_GOAL,
        "cpu_met": cpu <= CPU_GOAL,
        "ours": {"wall": median(ours_runs, "seconds"), "cpu": median(ours_runs, "cpu_seconds"),
                 "peak_rss_mb": max(r.peak_rss_mb for r in ours_runs)},
        "shaka": {"wall": median(shaka_runs, "seconds"),
                  "cpu": median(shaka_runs, "cpu_seconds"),
                  "peak_rss_mb": max(r.peak_rss_mb for r in shaka_runs)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each long input")
    parser.add_argument("--short-runs", type=int, default=15,
                        help=f"runs of each input of {SHORT} s or less")
    parser.add_argument("--lengths", type=int, nargs="+", default=[600, 2],
                        help="input lengths in seconds")
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--schemes", nargs="+", default=["cbcs", "cenc"])
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out" / "encrypt")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--baseline", type=Path,
                        help="another cdnpack source tree timed in the same runs (e.g. `git "
                             "archive <commit> | tar -x -C DIR`): a change against its parent")
    options = parser.parse_args()
    workdir: Path = options.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    sources = {n: make_input(workdir, n, options.height) for n in options.lengths}
    compile_ours(*([options.baseline] if options.baseline else []))
    machine_before = machine_line()
    results: dict[tuple[int, str, str], list[Run]] = {}
    for length, source in sources.items():
        runs = options.short_runs if length <= SHORT else options.runs
        for i in range(runs):
            for scheme in options.schemes:
                jobs: list[tuple[str, Callable[[], Run]]] = [
                    ("cdnpack", partial(ours, source, workdir / "ours", scheme)),
                    ("shaka", partial(shaka, source, workdir / "shaka", scheme)),
                ]
                if options.baseline:
                    jobs.append(("baseline", partial(ours, source, workdir / "baseline",
                                                     scheme, options.baseline)))
                jobs = jobs[i % len(jobs):] + jobs[:i % len(jobs)]  # the order rotates
                for name, job in jobs:
                    results.setdefault((length, scheme, name), []).append(job())
            results.setdefault((length, "-", "cp"), []).append(
                copy_floor(source, workdir / "floor"))
    shutil.rmtree(workdir / "floor", ignore_errors=True)
    doc: dict[str, Any] = {
        "machine": machine_doc(),
        "height": options.height,
        "inputs": {str(n): {"name": s.name, "bytes": s.stat().st_size}
                   for n, s in sources.items()},
        "runs": [{"length": n, "scheme": scheme, "tool": tool, "runs": [asdict(r) for r in rs]}
                 for (n, scheme, tool), rs in results.items()],
        "summary": {f"{n}s {scheme}": summary(results[(n, scheme, "cdnpack")],
                                              results[(n, scheme, "shaka")])
                    for n in sources for scheme in options.schemes},
    }
    if options.baseline:
        doc["baseline"] = {f"{n}s {scheme}": summary(results[(n, scheme, "baseline")],
                                                     results[(n, scheme, "shaka")])
                           for n in sources for scheme in options.schemes}
    if options.json:
        print(json.dumps(doc, indent=2))
        return
    print(machine_before)
    for n, s in sources.items():
        print(f"input {n} s: {s.name}, {s.stat().st_size / 2**20:.0f} MiB")
    print(f"\n{'job':<22}{'wall median':>12}{'best':>8}{'CPU median':>12}{'peak RSS MB':>13}"
          "   wall per run")
    for (n, scheme, tool), runs in results.items():
        name = f"{n}s {scheme} {tool}" if tool != "cp" else f"{n}s cp"
        listed = " ".join(f"{r.seconds:.3f}" for r in runs)
        print(f"{name:<22}{statistics.median(r.seconds for r in runs):>12.3f}"
              f"{min(r.seconds for r in runs):>8.3f}"
              f"{statistics.median(r.cpu_seconds for r in runs):>12.3f}"
              f"{max(r.peak_rss_mb for r in runs):>13.0f}   {listed}")
    print(f"\nafter: {machine_line()}\n")
    print(f"{'cdnpack / Shaka Packager':<26}{'wall':>8}{'CPU':>8}   goals: wall <= {WALL_GOAL}, "
          f"CPU <= {CPU_GOAL}")
    for key, s in doc["summary"].items():
        verdict = "met" if s["wall_met"] and s["cpu_met"] else "NOT met"
        print(f"{key:<26}{s['wall_ratio']:>8.2f}{s['cpu_ratio']:>8.2f}   {verdict}; peak RSS "
              f"{s['ours']['peak_rss_mb']:.0f} vs {s['shaka']['peak_rss_mb']:.0f} MB")
        if options.baseline:
            b = doc["baseline"][key]
            print(f"{'  baseline':<26}{b['wall_ratio']:>8.2f}{b['cpu_ratio']:>8.2f}   "
                  f"(this tree / baseline: wall {s['ours']['wall'] / b['ours']['wall']:.2f}, "
                  f"CPU {s['ours']['cpu'] / b['ours']['cpu']:.2f})")


if __name__ == "__main__":
    main()
