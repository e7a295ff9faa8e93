"""Benchmark cdnpack's one-process ladder against N sequential ffmpeg runs and a bare ffmpeg.

Variants, interleaved per repetition, same source, same ladder, same encoder flags:
  ours         build_ladder_command + run_ffmpeg (ffmpeg-python, cascaded scaling,
               Python reads -progress)
  sequential   one ffmpeg per video rendition (each decodes the source) + one AAC-only ffmpeg
  handwritten  one hand-written ffmpeg (split=N, scale per rung), stdout/stderr to /dev/null
Outputs are probed after every run, so a broken variant cannot look fast.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from packager.encoding.ladder import PRESETS, LadderSpec, Rendition, plan_renditions
from packager.encoding.media import MediaInfo, probe
from packager.encoding.segments import force_key_frames, segment_starts
from packager.encoding.transcode import VIDEO_TIMESCALE, build_ladder_command, run_ffmpeg
from packager.errors import CdnpackError
from packager.tools import find_tool, tool_version
from testbed.clips import ClipSpec, make_clip

RUNG_HEIGHTS = (1080, 720, 480, 360)
# Copied from packager/encoding/transcode.py, so the hand-written commands spell out what ours does.
VIDEO_MOVFLAGS = "+frag_keyframe+empty_moov+default_base_moof+negative_cts_offsets"
AUDIO_MOVFLAGS = "+frag_every_frame+empty_moov+default_base_moof"
QUIET = ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y"]
SEQUENTIAL_AUDIO = "separate AAC-only process"


@dataclasses.dataclass(frozen=True)
class Job:
    """What every variant encodes: one source, one ladder, one segment duration."""

    ffmpeg: str
    media: MediaInfo
    spec: LadderSpec
    renditions: list[Rendition]
    segment_duration: float

    @property
    def videos(self) -> list[Rendition]:
        return [r for r in self.renditions if r.kind == "video"]

    @property
    def audio(self) -> Rendition:
        return next(r for r in self.renditions if r.kind == "audio")

    @property
    def video_map(self) -> str:
        assert self.media.video is not None
        return f"0:{self.media.video.index}"

    @property
    def audio_map(self) -> str:
        assert self.media.audio
        return f"0:{self.media.audio[0].index}"

    def decode_filter(self) -> str:
        rate = self.videos[0].frame_rate
        return f"fps={rate.numerator}/{rate.denominator},format=yuv420p"

    def video_args(self, r: Rendition) -> list[str]:
        gop = math.ceil(r.frame_rate * self.segment_duration)
        return [
            "-c:v", "libx264", "-profile:v", r.profile, "-preset", self.spec.x264_preset,
            "-b:v", str(r.bitrate), "-maxrate", str(r.maxrate), "-bufsize", str(r.bufsize),
            "-g", str(2 * gop), "-sc_threshold", "0", "-flags", "+cgop",
            "-force_key_frames", force_key_frames(
                segment_starts(self.media.duration, self.segment_duration, r.frame_rate)),
            "-movflags", VIDEO_MOVFLAGS, "-video_track_timescale", str(VIDEO_TIMESCALE),
            "-map_metadata", "-1", "-map_chapters", "-1", "-f", "mp4",
        ]

    def audio_args(self) -> list[str]:
        a = self.audio
        return [
            "-c:a", "aac", "-b:a", str(a.bitrate), "-ac", str(a.channels),
            "-ar", str(a.sample_rate), "-movflags", AUDIO_MOVFLAGS,
            "-map_metadata", "-1", "-map_chapters", "-1", "-f", "mp4",
        ]


def run_ours(job: Job, out: Path) -> list[Path]:
    args, tracks = build_ladder_command(job.media, job.renditions, job.segment_duration, out)
    run_ffmpeg(args, job.media.duration, None)
    return [t.path for t in tracks]


def run_sequential(job: Job, out: Path) -> list[Path]:
    source = ["-i", str(job.media.path)]
    for r in job.videos:
        chain = f"{job.decode_filter()},scale={r.width}:{r.height},setsar=1"
        _run([job.ffmpeg, *QUIET, *source, "-map", job.video_map, "-vf", chain,
              *job.video_args(r), str(out / f"{r.id}.mp4")])
    _run([job.ffmpeg, *QUIET, *source, "-map", job.audio_map, *job.audio_args(),
          str(out / f"{job.audio.id}.mp4")])
    return [out / f"{r.id}.mp4" for r in job.renditions]


def run_handwritten(job: Job, out: Path) -> list[Path]:
    """One ffmpeg: decode once, split into N scaled branches, N video encodes + AAC."""
    n = len(job.videos)
    graph = f"[{job.video_map}]{job.decode_filter()},split={n}"
    graph += "".join(f"[v{i}]" for i in range(n))
    for i, r in enumerate(job.videos):
        graph += f";[v{i}]scale={r.width}:{r.height},setsar=1[o{i}]"
    args = [job.ffmpeg, *QUIET, "-i", str(job.media.path), "-filter_complex", graph]
    for i, r in enumerate(job.videos):
        args += ["-map", f"[o{i}]", *job.video_args(r), str(out / f"{r.id}.mp4")]
    _run([*args, "-map", job.audio_map, *job.audio_args(), str(out / f"{job.audio.id}.mp4")])
    return [out / f"{r.id}.mp4" for r in job.renditions]


VARIANTS: dict[str, Callable[[Job, Path], list[Path]]] = {
    "ours": run_ours, "sequential": run_sequential, "handwritten": run_handwritten,
}


def _run(args: list[str]) -> None:
    """Run ffmpeg with nothing attached; on failure show the command to reproduce it."""
    code = subprocess.call(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if code != 0:
        raise SystemExit(f"ffmpeg exited {code}: {shlex.join(args)}")


def check_same_flags(job: Job, out: Path) -> None:
    """Fail before timing if ours no longer uses the encoder flags written by hand here."""
    ours, _ = build_ladder_command(job.media, job.renditions, job.segment_duration, out)
    for r in job.renditions:
        end = ours.index(str(out / f"{r.id}.mp4"))
        start = max(i for i in range(end) if ours[i] == "-map") + 2
        options = ours[start:end]
        theirs = set(zip(options[::2], options[1::2], strict=True))
        mine = job.video_args(r) if r.kind == "video" else job.audio_args()
        missing = set(zip(mine[::2], mine[1::2], strict=True)) - theirs
        if missing or len(theirs) != len(mine) // 2:
            raise SystemExit(f"{r.id}: bench flags drifted from build_ladder_command: {missing}")


def check_outputs(variant: str, paths: list[Path], duration: float) -> None:
    """Every output exists, is non-empty and holds (nearly) the whole source duration."""
    for path in paths:
        if not path.is_file() or path.stat().st_size == 0:
            raise SystemExit(f"{variant}: {path.name} missing or empty")
        if probe(path).duration < 0.9 * duration:
            raise SystemExit(f"{variant}: {path.name} is shorter than the source")


def make_source(workdir: Path, duration: float, height: int) -> Path:
    """The test clip, generated once and reused from the workdir."""
    width = round(height * 16 / 9 / 2) * 2
    path = workdir / f"source_{width}x{height}_{duration:g}s.mp4"
    if not path.exists():
        partial = path.with_suffix(".partial.mp4")
        make_clip(partial, ClipSpec(duration=duration, width=width, height=height, frame_rate="25"))
        partial.rename(path)
    return path


def benchmark(job: Job, workdir: Path, repeat: int) -> dict[str, list[float]]:
    """Seconds per run of each variant, interleaved so machine noise hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(repeat):
        for name, variant in VARIANTS.items():
            out = workdir / name
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            start = time.perf_counter()
            paths = variant(job, out)
            times[name].append(time.perf_counter() - start)
            check_outputs(name, paths, job.media.duration)
    return times


def report(job: Job, times: dict[str, list[float]], repeat: int) -> dict[str, Any]:
    """The configuration, every run, and the headline ratios (of medians)."""
    median = {name: statistics.median(runs) for name, runs in times.items()}
    video = job.media.video
    assert video is not None
    return {
        "source": f"{video.width}x{video.height} {video.frame_rate} fps {job.media.duration:g} s",
        "ladder": [r.id for r in job.renditions],
        "x264_preset": job.spec.x264_preset,
        "segment_duration_s": job.segment_duration,
        "repeat": repeat,
        "cpus": os.cpu_count(),
        "ffmpeg": tool_version(find_tool("ffmpeg")),
        "sequential_audio": SEQUENTIAL_AUDIO,
        "variants": {
            name: {"median_s": median[name], "min_s": min(runs), "runs_s": runs}
            for name, runs in times.items()
        },
        "ours_over_handwritten": median["ours"] / median["handwritten"],
        "ours_over_sequential": median["ours"] / median["sequential"],
        "overhead_vs_handwritten_pct": 100 * (median["ours"] / median["handwritten"] - 1),
    }


def print_table(doc: dict[str, Any]) -> None:
    print(f"source {doc['source']}; ladder {', '.join(doc['ladder'])}; "
          f"x264 {doc['x264_preset']}; {doc['segment_duration_s']:g} s segments")
    print(f"ffmpeg {doc['ffmpeg']}; {doc['cpus']} cpus; median of {doc['repeat']} runs")
    print(f"sequential = one process per video rendition + {doc['sequential_audio']}\n")
    print(f"{'variant':<12} {'median s':>9} {'min s':>9}")
    for name, row in doc["variants"].items():
        print(f"{name:<12} {row['median_s']:>9.2f} {row['min_s']:>9.2f}")
    print(f"\nours/handwritten  {doc['ours_over_handwritten']:.3f}x  "
          f"(overhead of ours {doc['overhead_vs_handwritten_pct']:+.1f} %)")
    print(f"ours/sequential   {doc['ours_over_sequential']:.3f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60, help="source seconds (60)")
    parser.add_argument("--height", type=int, default=1080, help="source height (1080)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant (3)")
    parser.add_argument("--segment-duration", type=float, default=4.0, help="seconds (4)")
    parser.add_argument("--preset", default="veryfast", help="x264 preset (veryfast)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--workdir", type=Path, help="kept, source cached (default: temp dir)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    base = PRESETS["default"]
    spec = dataclasses.replace(
        base,
        x264_preset=args.preset,
        rungs=tuple(r for r in base.rungs if r.height in RUNG_HEIGHTS),
    )
    with contextlib.ExitStack() as stack:
        workdir: Path = args.workdir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="cdnpack-bench-"))
        )
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            media = probe(make_source(workdir, args.duration, args.height))
            job = Job(str(find_tool("ffmpeg").path), media, spec,
                      plan_renditions(spec, media), args.segment_duration)
            check_same_flags(job, workdir / "ours")
            doc = report(job, benchmark(job, workdir, args.repeat), args.repeat)
        except CdnpackError as exc:
            raise SystemExit(f"error: {exc}") from exc
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_table(doc)


if __name__ == "__main__":
    main()
