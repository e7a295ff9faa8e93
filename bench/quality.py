"""Quality per byte: per-title ladders against the fixed default ladder, measured with VMAF.

For each generated 720p scene (testbed/clips.py SCENES: flat animation, a talking head, high
motion with grain), in one run so that machine load hits every variant alike:
  fixed       the default H.264 ladder (capped VBR), one ffmpeg for the ladder
  per-title   per codec: the analysis (trial encodes on the sample, VMAF) and the production
              encode of the rungs it placed (capped CRF), one ffmpeg for the ladder
Every rung of every ladder is scored on the whole title against the source (libvmaf,
vmaf_v0.6.1, every frame, upscaled to 1280x720, packager/quality/vmaf.py). BD-rate (PCHIP,
packager/quality/bdrate.py) compares each ladder's convex hull of (bitrate, VMAF) with the
fixed H.264 ladder's; negative is fewer bits for the same VMAF.
--rate-control also encodes the per-title H.264 rungs as one-pass and two-pass VBR at the
bitrate the analysis predicted (same VBV cap), to compare with capped CRF.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

from packager.encoding.codecs import KeyFramePlan, encoder_options, video_codec
from packager.encoding.ladder import (
    BUFSIZE_SECONDS,
    MAXRATE_FACTOR,
    PRESETS,
    Rendition,
    load_ladder,
    plan_renditions,
)
from packager.encoding.media import MediaInfo, probe
from packager.encoding.per_title import analyse
from packager.encoding.per_title import renditions as per_title_renditions
from packager.encoding.per_title_spec import PerTitleSpec
from packager.encoding.placement import Rung as PlannedRung
from packager.encoding.placement import SizeCurve, rendition_id
from packager.encoding.segments import segment_starts
from packager.encoding.transcode import build_ladder_command, run_ffmpeg
from packager.errors import CdnpackError
from packager.quality.bdrate import BdRateError, bd_rate
from packager.quality.encode import Encode, video_packets
from packager.quality.hull import RatePoint, convex_hull
from packager.quality.vmaf import Viewing, measure
from packager.tools import find_tool, run_tool, tool_version
from testbed.clips import SCENES, make_scene

SEGMENT_SECONDS = 4.0
#: The bitrates the bench reports each codec needs, per source.
QUALITY_MARKS = (60.0, 80.0)


@dataclass(frozen=True)
class Rung:
    rendition: str
    width: int
    height: int
    bitrate: int  # measured on the encode, video only
    vmaf: float
    vmaf_p5: float
    target: float | None = None
    predicted_bitrate: int = 0
    predicted_vmaf: float = 0.0


@dataclass(frozen=True)
class LadderRun:
    name: str
    codec: str
    rungs: list[Rung]
    encode_cpu: float  # the production encode's CPU seconds (ffmpeg, every thread)
    encode_wall: float
    frames: int
    analysis_cpu: float = 0.0
    analysis_wall: float = 0.0
    #: A per-title ladder's trial points (what the analysis measured).
    points: tuple[RatePoint, ...] = ()

    def curve(self) -> list[tuple[float, float]]:
        """The ladder's convex hull as (bitrate, VMAF): what a player can get from it."""
        points = [RatePoint(self.codec, r.width, r.height, 0.0, r.bitrate, r.vmaf, r.vmaf_p5)
                  for r in self.rungs]
        return [(p.bitrate, p.vmaf) for p in convex_hull(points)]


def cached(path: Path, make: Callable[[], LadderRun]) -> LadderRun:
    """A ladder run measured by an earlier bench run on the same workdir, or measured now and
    kept (a scene takes tens of minutes on a loaded machine: a cut-off run resumes)."""
    if path.is_file():
        doc = json.loads(path.read_text())
        doc["rungs"] = [Rung(**r) for r in doc["rungs"]]
        doc["points"] = tuple(RatePoint(**p) for p in doc["points"])
        return LadderRun(**doc)
    run = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(asdict(run)))
    partial.replace(path)
    print(f"{path.parent.name}: {run.name} measured", file=sys.stderr)
    return run


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def encode_ladder(name: str, codec: str, media: MediaInfo, renditions: list[Rendition],
                  work: Path, viewing: Viewing, two_pass: bool = False,
                  targets: dict[str, tuple[float | None, int, float]] | None = None
                  ) -> LadderRun:
    """Encode the ladder in one ffmpeg (or, two-pass, one ffmpeg per rung and pass), then
    score every rung on the whole title."""
    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cpu, started = children_cpu(), time.perf_counter()
    if two_pass:
        paths = [encode_two_pass(media, r, out) for r in renditions]
    else:
        args, tracks = build_ladder_command(media, renditions, SEGMENT_SECONDS, out)
        run_ffmpeg(args, media.duration, None)
        paths = [t.path for t in tracks]
    encode_cpu, encode_wall = children_cpu() - cpu, time.perf_counter() - started
    encodes = [Encode((p,)) for p in paths]
    packets = [video_packets(e) for e in encodes]
    scores = measure(media.path, encodes, [p.frames for p in packets], viewing)
    rungs = []
    for r, p, s in zip(renditions, packets, scores, strict=True):
        target, predicted_rate, predicted_vmaf = (targets or {}).get(r.id, (None, 0, 0.0))
        rungs.append(Rung(r.id, r.width, r.height, p.bitrate, round(s.mean, 3), round(s.p5, 3),
                          target, predicted_rate, round(predicted_vmaf, 3)))
    return LadderRun(name, codec, rungs, round(encode_cpu, 2), round(encode_wall, 2),
                     packets[0].frames)


def encode_two_pass(media: MediaInfo, r: Rendition, out: Path) -> Path:
    """One rung as two-pass VBR at its bitrate, with the production encode's options."""
    assert media.video is not None
    rate = r.frame_rate
    starts = segment_starts(media.duration, SEGMENT_SECONDS, rate)
    gop = 2 * math.ceil(rate * Fraction(SEGMENT_SECONDS))
    options = encoder_options(video_codec(r.codec), replace(r, crf=0.0).rate_control,
                              KeyFramePlan(tuple(starts), gop), preset=r.preset or None,
                              profile=r.profile)
    ffmpeg = str(find_tool("ffmpeg").path)
    chain = (f"fps={rate.numerator}/{rate.denominator},format=yuv420p,"
             f"scale={r.width}:{r.height},setsar=1")
    flat = [a for k, v in options.items() for a in (f"-{k}", str(v))]
    log = out / f"{r.id}.pass"
    path = out / f"{r.id}.mp4"
    for number, target in ((1, ["-f", "null", "-"]), (2, ["-f", "mp4", str(path)])):
        args = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i",
                str(media.path), "-map", f"0:{media.video.index}", "-vf", chain, *flat,
                "-pass", str(number), "-passlogfile", str(log), *target]
        result = run_tool(args)
        if result.returncode != 0:
            raise SystemExit(f"two-pass {r.id} pass {number}: {result.stderr_tail[-2:]}")
    return path


def predictions(rungs: Sequence[PlannedRung]) -> dict[str, tuple[float | None, int, float]]:
    """Rendition id -> (target, predicted bitrate, predicted VMAF) of a per-title ladder."""
    return {rendition_id(r): (r.target, r.bitrate, r.vmaf) for r in rungs}


def bitrate_for(points: Sequence[RatePoint], vmaf: float) -> int | None:
    """The fewest bits any trial size needs for `vmaf` (None: no size reaches it)."""
    found = []
    for size in {(p.width, p.height) for p in points}:
        at = SizeCurve([p for p in points if (p.width, p.height) == size]).at_vmaf(vmaf)
        if at is not None:
            found.append(at[1])
    return round(min(found)) if found else None


def bd(anchor: LadderRun, test: LadderRun) -> float | None:
    try:
        return round(bd_rate(anchor.curve(), test.curve()), 2)
    except BdRateError:
        return None


def run_scene(scene: str, source: Path, work: Path, codecs: Sequence[str],
              rate_control: bool) -> dict[str, Any]:
    media = probe(source)
    assert media.video is not None
    rate = media.video.frame_rate
    viewing = Viewing(media.video.width, media.video.height, rate)
    fixed_spec = PRESETS["default"]
    fixed = cached(work / "fixed-h264.json", lambda: encode_ladder(
        "fixed-h264", "h264", media,
        [r for r in plan_renditions(fixed_spec, media, []) if r.kind == "video"], work, viewing))
    runs = [fixed]
    needs: dict[str, dict[str, int | None]] = {}
    ladder_spec = load_ladder("per-title")
    for codec in codecs:
        def per_title(codec: str = codec) -> LadderRun:
            spec = PerTitleSpec(codecs=(codec,))
            ladder = analyse(spec, ladder_spec, media, rate, SEGMENT_SECONDS,
                             work / f"pt-{codec}")
            renditions = per_title_renditions(ladder, ladder_spec.preset)
            run = encode_ladder(f"per-title-{codec}", codec, media, renditions, work, viewing,
                                targets=predictions(ladder.rungs))
            return replace(run, analysis_cpu=ladder.cpu_seconds, analysis_wall=ladder.seconds,
                           points=ladder.points)
        run = cached(work / f"per-title-{codec}.json", per_title)
        runs.append(run)
        needs[codec] = {f"vmaf_{mark:g}": bitrate_for(run.points, mark)
                        for mark in QUALITY_MARKS}
        if rate_control and codec == "h264":
            # The per-title rungs again, as VBR at the bitrate the analysis predicted.
            vbr = [Rendition(r.rendition, "video", codec, r.predicted_bitrate, r.width,
                             r.height, rate, "high" if r.height >= 720 else "main",
                             int(r.predicted_bitrate * MAXRATE_FACTOR),
                             r.predicted_bitrate * BUFSIZE_SECONDS,
                             preset=ladder_spec.x264_preset) for r in run.rungs]
            guesses = {r.rendition: (r.target, r.predicted_bitrate, r.predicted_vmaf)
                       for r in run.rungs}
            for name, two_pass in (("per-title-h264-vbr", False),
                                   ("per-title-h264-2pass", True)):
                runs.append(cached(work / f"{name}.json", partial(
                    encode_ladder, name, "h264", media, vbr, work, viewing, two_pass=two_pass,
                    targets=guesses)))
    by_name = {r.name: r for r in runs}
    return {
        "scene": scene,
        "source": f"{media.video.width}x{media.video.height} {rate} fps "
                  f"{media.duration:g} s, {media.size * 8 / media.duration / 1e6:.1f} Mb/s",
        "ladders": [asdict(r) | {"hull": r.curve(), "points": len(r.points)} for r in runs],
        "bd_rate_vs_fixed_h264": {r.name: bd(fixed, r) for r in runs[1:]},
        "bd_rate_vs_capped_crf": {
            name: bd(by_name["per-title-h264"], by_name[name])
            for name in ("per-title-h264-vbr", "per-title-h264-2pass") if name in by_name},
        "analysis_cpu_share": {r.name: round(r.analysis_cpu / r.encode_cpu, 3)
                               for r in runs if r.analysis_cpu},
        # frames of the title per second of the ladder's encode: on the wall clock of this
        # shared machine, and as 2 free cores would give it (CPU seconds / 2)
        "encode_fps": {r.name: round(r.frames / r.encode_wall, 1) for r in runs},
        "encode_fps_2_cores": {r.name: round(r.frames / (r.encode_cpu / 2), 1) for r in runs},
        "bitrate_needed": needs,
    }


def summary(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Averages over the scenes (BD-rates, CPU shares)."""
    out: dict[str, Any] = {}
    names = sorted({n for d in docs for n in d["bd_rate_vs_fixed_h264"]})
    for name in names:
        values = [d["bd_rate_vs_fixed_h264"][name] for d in docs
                  if d["bd_rate_vs_fixed_h264"].get(name) is not None]
        if values:
            out[f"bd_rate_mean:{name}"] = round(sum(values) / len(values), 2)
            out[f"bd_rate_worst:{name}"] = max(values)
    return out


def print_table(doc: dict[str, Any]) -> None:
    print(f"{doc['machine']}; ffmpeg {doc['ffmpeg']}; {doc['duration']:g} s scenes")
    for scene in doc["scenes"]:
        print(f"\n== {scene['scene']}: {scene['source']}")
        for ladder in scene["ladders"]:
            extra = (f", analysis {ladder['analysis_cpu']:.1f} s CPU"
                     if ladder["analysis_cpu"] else "")
            print(f"  {ladder['name']}: encode {ladder['encode_cpu']:.1f} s CPU, "
                  f"{ladder['frames'] / ladder['encode_wall']:.1f} fps{extra}")
            for r in ladder["rungs"]:
                goal = f" target {r['target']:g}" if r["target"] is not None else ""
                guess = (f" (predicted {r['predicted_bitrate'] / 1000:.0f} kb/s, "
                         f"{r['predicted_vmaf']:.2f})" if r["predicted_bitrate"] else "")
                print(f"    {r['rendition']:<24} {r['bitrate'] / 1000:>7.0f} kb/s  "
                      f"VMAF {r['vmaf']:6.2f} p5 {r['vmaf_p5']:6.2f}{goal}{guess}")
        print(f"  BD-rate vs fixed H.264: {scene['bd_rate_vs_fixed_h264']}")
        if scene["bd_rate_vs_capped_crf"]:
            print(f"  BD-rate vs capped CRF: {scene['bd_rate_vs_capped_crf']}")
        print(f"  analysis CPU / production encode CPU: {scene['analysis_cpu_share']}")
        print(f"  ladder encode fps (2 free cores, from CPU time): "
              f"{scene['encode_fps_2_cores']}")
        print(f"  bitrate needed: {scene['bitrate_needed']}")
    print(f"\n{doc['summary']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="scene seconds (60)")
    parser.add_argument("--scenes", default=",".join(SCENES), help="comma-separated")
    parser.add_argument("--codecs", default="h264,hevc,av1",
                        help="per-title codecs (h264,hevc,av1)")
    parser.add_argument("--rate-control", action="store_true",
                        help="also encode the per-title H.264 rungs as 1- and 2-pass VBR")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--workdir", type=Path, help="kept, sources cached (default: temp)")
    args = parser.parse_args()
    unknown = [scene for scene in args.scenes.split(",") if scene not in SCENES]
    if unknown:
        parser.error(f"unknown scene {unknown[0]!r} (known: {', '.join(SCENES)})")
    with contextlib.ExitStack() as stack:
        workdir: Path = args.workdir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="cdnpack-bench-")))
        workdir.mkdir(parents=True, exist_ok=True)
        docs = []
        try:
            for scene in args.scenes.split(","):
                source = workdir / f"{scene}_720p_{args.duration:g}s.mp4"
                if not source.exists():
                    partial = source.with_suffix(".partial.mp4")
                    make_scene(partial, scene, args.duration)
                    partial.rename(source)
                docs.append(run_scene(scene, source, workdir / scene,
                                      args.codecs.split(","), args.rate_control))
        except CdnpackError as exc:
            raise SystemExit(f"error: {exc}") from exc
    doc = {
        "machine": f"{os.cpu_count()} cores, {_cpu_model()}, {platform.system()}",
        "ffmpeg": tool_version(find_tool("ffmpeg")),
        "duration": args.duration,
        "scenes": docs,
        "summary": summary(docs),
    }
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_table(doc)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
