"""Benchmark the codec table's encoders: speed (frames/s on this machine's cores) and quality per
bit (VMAF BD-rate against x264 at its preset) at the chosen presets and their neighbours.

One generated 720p clip (testsrc2 with temporal noise, a middle difficulty), every encoder run
through packager/encoding/codecs.py's options with the key frames of a 2 s segment plan, at
three CRF points each; encodes interleaved point by point so machine load hits every preset
alike. Speed is the encoder's CPU time per frame (user + system of the ffmpeg process), and
the frames/s that makes on this machine's cores when they are free (cores / CPU per frame):
on a shared machine wall-clock frames/s favours the encoders with more threads, which take a
larger share of the busy cores (wall-clock figures are reported too). Quality: VMAF (model
vmaf_v0.6.1, ffmpeg-full's libvmaf) against the source, and BD-rate as the mean log-rate
difference over the VMAF range both curves cover (piecewise linear in log rate).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import re
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.encoding.codecs import CODECS, CappedQuality, KeyFramePlan, encoder_options
from packager.encoding.segments import segment_starts
from packager.tools import find_tool, tool_version

FPS = 25
#: (codec, preset) pairs measured; the table's choice for each codec is among them.
CANDIDATES = (
    ("h264", "veryfast"), ("h264", "fast"),
    ("hevc", "faster"), ("hevc", "fast"), ("hevc", "medium"),
    ("av1", "12"), ("av1", "10"), ("av1", "8"), ("av1", "6"),
)
#: CRF points per codec: x264/x265 and SVT-AV1 scales differ; these overlap in VMAF on the
#: clip (about 80-93).
CRFS = {"h264": (25, 30, 35), "hevc": (25, 30, 35), "av1": (34, 42, 50)}
REFERENCE = ("h264", "veryfast")
#: A cap far above any point: the CRF alone decides (the curve, not the VBV, is compared).
NO_CAP = 100_000_000


@dataclass(frozen=True)
class Point:
    crf: int
    kbps: float
    vmaf: float
    seconds: float  # wall clock of the encode
    cpu: float  # user + system seconds of the encode


def make_source(path: Path, seconds: float) -> Path:
    """A lossless-enough 720p mezzanine: testsrc2 with temporal noise (grain-like detail)."""
    if not path.exists():
        subprocess.run([str(find_tool("ffmpeg").path), "-hide_banner", "-loglevel", "error",
                        "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size=1280x720:rate={FPS},noise=alls=8:allf=t",
                        "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast",
                        "-qp", "4", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def encode(source: Path, out: Path, codec: str, preset: str, crf: int,
           seconds: float) -> tuple[float, float]:
    """One encode through the codec table: (wall seconds, CPU seconds)."""
    row = CODECS[codec]
    plan = KeyFramePlan(tuple(segment_starts(seconds, 2.0)), 2 * 2 * FPS)
    options = encoder_options(row, CappedQuality(crf, NO_CAP, 2 * NO_CAP), plan,
                              preset=preset, profile=row.profiles[-1] if codec == "h264"
                              else "")
    args = [str(find_tool(row.tool).path), "-hide_banner", "-nostdin", "-loglevel", "error",
            "-y", "-i", str(source)]
    args += [str(a) for key, value in options.items() for a in (f"-{key}", value)]
    args += ["-an", "-f", "mp4", str(out)]
    before = os.times()
    start = time.perf_counter()
    subprocess.run(args, check=True, env={"SVT_LOG": "1", **os.environ})
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system)
    return wall, cpu


def vmaf(distorted: Path, source: Path) -> float:
    """Mean VMAF (vmaf_v0.6.1, libvmaf's default model) of an encode against the source."""
    result = subprocess.run(
        [str(find_tool("ffmpeg-full").path), "-hide_banner", "-nostdin", "-i", str(distorted),
         "-i", str(source), "-lavfi", "[0:v][1:v]libvmaf=n_threads=2", "-f", "null", "-"],
        capture_output=True, text=True, check=True)
    match = re.search(r"VMAF score: ([0-9.]+)", result.stderr)
    if match is None:
        raise SystemExit(f"no VMAF score from libvmaf: {result.stderr[-300:]}")
    return float(match.group(1))


def bd_rate(reference: list[Point], test: list[Point]) -> float | None:
    """Mean bitrate difference (fraction) at equal VMAF over the range both cover."""
    low = max(min(p.vmaf for p in reference), min(p.vmaf for p in test))
    high = min(max(p.vmaf for p in reference), max(p.vmaf for p in test))
    if high <= low:
        return None
    steps = 100
    diffs = [_log_rate(test, low + (high - low) * i / steps)
             - _log_rate(reference, low + (high - low) * i / steps) for i in range(steps + 1)]
    return math.exp(sum(diffs) / len(diffs)) - 1


def _log_rate(points: list[Point], quality: float) -> float:
    ordered = sorted(points, key=lambda p: p.vmaf)
    for a, b in itertools.pairwise(ordered):
        if a.vmaf <= quality <= b.vmaf:
            t = (quality - a.vmaf) / (b.vmaf - a.vmaf) if b.vmaf > a.vmaf else 0.0
            return math.log(a.kbps) + t * (math.log(b.kbps) - math.log(a.kbps))
    nearest = min(ordered, key=lambda p: abs(p.vmaf - quality))
    return math.log(nearest.kbps)


def measure(source: Path, workdir: Path, seconds: float) -> dict[tuple[str, str], list[Point]]:
    """Every candidate at every CRF point, point by point (interleaved)."""
    curves: dict[tuple[str, str], list[Point]] = {c: [] for c in CANDIDATES}
    for index in range(len(CRFS[REFERENCE[0]])):
        for codec, preset in CANDIDATES:
            crf = CRFS[codec][index]
            out = workdir / f"{codec}_{preset}_{crf}.mp4"
            wall, cpu = encode(source, out, codec, preset, crf, seconds)
            kbps = out.stat().st_size * 8 / seconds / 1000
            curves[(codec, preset)].append(Point(crf, kbps, vmaf(out, source), wall, cpu))
            out.unlink()
    return curves


def report(curves: dict[tuple[str, str], list[Point]], seconds: float) -> dict[str, Any]:
    frames = seconds * FPS
    cores = os.cpu_count() or 1
    reference = curves[REFERENCE]
    reference_cpu = statistics.median(p.cpu for p in reference) / frames
    rows = []
    for (codec, preset), points in curves.items():
        cpu = statistics.median(p.cpu for p in points) / frames
        bd = bd_rate(reference, points)
        rows.append({
            "codec": codec, "encoder": CODECS[codec].encoder, "preset": preset,
            "chosen": CODECS[codec].preset == preset,
            "fps_free_cores": round(cores / cpu, 1),
            "cpu_vs_x264": round(cpu / reference_cpu, 3),
            "cpu_s_per_frame": round(cpu, 4),
            "wall_fps": round(frames / statistics.median(p.seconds for p in points), 1),
            "bd_rate_vs_x264_pct": None if bd is None else round(100 * bd, 1),
            "points": [{"crf": p.crf, "kbps": round(p.kbps), "vmaf": round(p.vmaf, 2)}
                       for p in points],
        })
    return {
        "source": f"1280x720 {FPS} fps {seconds:g} s testsrc2 + temporal noise",
        "cpus": os.cpu_count(),
        "ffmpeg": tool_version(find_tool("ffmpeg")),
        "reference": f"{REFERENCE[0]} {REFERENCE[1]}",
        "rows": rows,
    }


def print_table(doc: dict[str, Any]) -> None:
    print(f"source {doc['source']}; ffmpeg {doc['ffmpeg']}; {doc['cpus']} cpus; "
          f"BD-rate over VMAF against {doc['reference']}\n")
    print(f"{'encoder':<10} {'preset':<9} {'fps':>6} {'CPU/x264':>8} {'wall fps':>8} "
          f"{'BD-rate':>8}  points (kb/s @ VMAF)")
    for row in doc["rows"]:
        bd = "-" if row["bd_rate_vs_x264_pct"] is None else f"{row['bd_rate_vs_x264_pct']:+.1f}%"
        mark = "*" if row["chosen"] else " "
        points = ", ".join(f"{p['kbps']}@{p['vmaf']:.1f}" for p in row["points"])
        print(f"{row['encoder']:<10} {row['preset'] + mark:<9} {row['fps_free_cores']:>6.1f} "
              f"{row['cpu_vs_x264']:>8.2f} {row['wall_fps']:>8.1f} {bd:>8}  {points}")
    print(f"\nfps: frames/s on {doc['cpus']} free cores (cores / CPU s per frame); "
          "* the codec table's preset")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=4.0, help="source seconds (4)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--workdir", type=Path, help="kept, source cached (default: temp dir)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        workdir: Path = args.workdir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="cdnpack-bench-")))
        workdir.mkdir(parents=True, exist_ok=True)
        source = make_source(workdir / f"source_720p_{args.duration:g}s.mp4", args.duration)
        doc = report(measure(source, workdir, args.duration), args.duration)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_table(doc)


if __name__ == "__main__":
    main()
