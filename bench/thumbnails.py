"""What --thumbnails costs: the `package` job with and without it, side by side, interleaved.

Two modes, each against itself without thumbnails:
  transcode  the sheets are one more branch of the ladder's single ffmpeg graph
  copy       --copy decodes nothing, so the sheets take a decode of their own: one seek per
             thumbnail (draw_thumbnails); its anchor is one ffmpeg decoding the whole video
             through the same select/scale/tile filters (what a transcode's branch does)
Every run's release is checked (sheet count, I-frame playlists), so a broken run cannot look
fast. Ratios (median of the runs, interleaved) are the figures of record.
"""

from __future__ import annotations

import argparse
import math
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from packager.encoding.media import probe
from packager.encoding.thumbnails import (
    JPEG_QUALITY,
    ThumbnailSpec,
    parse_thumbnails,
    plan_thumbnails,
)
from packager.encoding.transcode import draw_thumbnails
from packager.output.pipeline import PackageRequest, package
from packager.tools import find_tool
from testbed.clips import ClipSpec, make_clip


def cpu_seconds() -> float:
    """User + system time of this process and every child it waited for (ffmpeg, workers):
    the work done, which the load of other jobs on the machine changes much less than the
    wall time."""
    ours, children = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                       resource.RUSAGE_CHILDREN))
    return ours.ru_utime + ours.ru_stime + children.ru_utime + children.ru_stime


def run(source: Path, out: Path, copy: bool, ladder: str, spec: ThumbnailSpec | None,
        duration: float, cpu: list[float]) -> float:
    shutil.rmtree(out, ignore_errors=True)
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    result = package(PackageRequest(source=source, output=out, copy=copy, ladder=ladder,
                                    thumbnails=spec))
    seconds = time.perf_counter() - started
    cpu.append(cpu_seconds() - cpu_before)
    videos = sum(r.kind == "video" for r in result.release.renditions)
    assert len(result.release.iframes) == videos > 0
    if spec is not None:
        (sheets,) = result.release.thumbnails
        assert sheets.sheets == math.ceil(math.ceil(duration / spec.interval) / spec.per_sheet)
    return seconds


def draw(source: Path, work: Path, spec: ThumbnailSpec, seek: bool) -> float:
    """The copy mode's sheets alone: seeks (ours) or one decode of the whole video."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    media = probe(source)
    assert media.video is not None
    plan = plan_thumbnails(spec, media, work)
    started = time.perf_counter()
    if seek:
        draw_thumbnails(media, plan, work)
    else:  # hand-written: the transcode branch's filters over a decode of the whole video
        plan.directory.mkdir()
        subprocess.run(
            [str(find_tool("ffmpeg").path), "-v", "error", "-nostdin", "-i", str(source),
             "-map", f"0:{media.video.index}", "-vf",
             f"select='gte(t,selected_n*{spec.interval:g}-0.001)',"
             f"scale={plan.width}:{spec.height},setsar=1,tile={spec.columns}x{spec.rows}",
             "-fps_mode", "passthrough", "-c:v", "mjpeg", "-q:v", str(JPEG_QUALITY),
             "-f", "image2", str(plan.directory / "tile_%05d.jpg")],
            check=True,
        )
    seconds = time.perf_counter() - started
    sheets = len(list(plan.directory.glob("tile_*.jpg")))
    assert sheets == math.ceil(len(range(math.ceil(media.duration / spec.interval)))
                               / spec.per_sheet), sheets
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--thumbnails", default="10s:5x5:180")
    parser.add_argument("--ladder", default="default")
    parser.add_argument("--modes", default="copy,transcode")
    args = parser.parse_args()
    spec = parse_thumbnails(args.thumbnails)
    with tempfile.TemporaryDirectory(prefix="bench-thumbnails-") as tmp:
        work = Path(tmp)
        width = args.height * 16 // 9
        # A key frame every 2 s, as streaming sources have (x264's default 10 s would put every
        # 10 s thumbnail on a key frame and flatter --copy's seeks).
        source = make_clip(work / "source.mp4",
                           ClipSpec(duration=args.duration, width=width, height=args.height,
                                    keyframe_interval=50))
        print(f"source: {args.duration:g} s {width}x{args.height} 25 fps H.264 (GOP 2 s) + AAC; "
              f"--thumbnails {args.thumbnails}; ladder {args.ladder}; {args.runs} runs")
        for mode in args.modes.split(","):
            copy = mode == "copy"
            times: dict[str, list[float]] = {"without": [], "with": []}
            cpu: dict[str, list[float]] = {"without": [], "with": []}
            for _ in range(args.runs):
                for variant, thumbnails in (("without", None), ("with", spec)):
                    times[variant].append(run(source, work / "out", copy, args.ladder,
                                              thumbnails, args.duration, cpu[variant]))
            if copy:
                times |= {"seeks": [], "full decode": []}
                for _ in range(args.runs):
                    times["seeks"].append(draw(source, work / "draw", spec, seek=True))
                    times["full decode"].append(draw(source, work / "draw", spec, seek=False))
            medians = {k: statistics.median(v) for k, v in times.items()}
            line = ", ".join(f"{k} {v:.2f} s" for k, v in medians.items())
            line += f"; with/without {medians['with'] / medians['without']:.3f}"
            cpus = {k: statistics.median(v) for k, v in cpu.items()}
            line += (f"; CPU without {cpus['without']:.2f} s, with {cpus['with']:.2f} s, "
                     f"with/without {cpus['with'] / cpus['without']:.3f}")
            if copy:
                line += f"; seeks/full decode {medians['seeks'] / medians['full decode']:.3f}"
            print(f"{mode}: {line} (runs: " + "; ".join(
                f"{k} " + ", ".join(f"{t:.2f}" for t in v) for k, v in times.items()) + ")")


if __name__ == "__main__":
    main()
