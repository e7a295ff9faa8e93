"""Per-title ladders: the title is measured (trial encodes over a sample of it, VMAF of each
size x quality point against the source) and its rungs are placed on what was measured.

Plan as data, then execute: `plan_analysis` lists the trial jobs (one per excerpt and codec),
an executor runs them (packager/quality/trials.py), `plan_ladder` places the rungs
(placement.py) and `renditions` turns them into what the transcode encodes: capped CRF, the
VBV cap at the fixed ladder's factors of the predicted bitrate (docs/per-title.md says why).
"""

from __future__ import annotations

import math
import os
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

from packager.encoding.codecs import (
    CappedQuality,
    KeyFramePlan,
    VideoCodec,
    check_build,
    codec_names,
    encoder_options,
    transcode_tool,
    video_codec,
)
from packager.encoding.ladder import (
    BUFSIZE_SECONDS,
    MAXRATE_FACTOR,
    LadderSpec,
    Rendition,
    even_floor,
    even_round,
)
from packager.encoding.media import MediaInfo
from packager.encoding.per_title_spec import PerTitleSpec
from packager.encoding.placement import FLOOR, Limits, Rung, place_rungs, rendition_id
from packager.errors import InputError
from packager.executor import Executor, JobProgress, LocalExecutor
from packager.quality.hull import RatePoint, convex_hull
from packager.quality.trials import TrialEncode, TrialJob, rate_points, run_trial
from packager.quality.vmaf import Excerpt, Viewing, vmaf_tool

#: Candidate heights when the ladder file names none (those above the source are left out).
DEFAULT_RESOLUTIONS = (2160, 1440, 1080, 720, 540, 360, 240)

#: The sample: excerpts of EXCERPT_SECONDS spread evenly over the title, about SAMPLE_SHARE
#: of it, between MIN_EXCERPTS and MAX_EXCERPTS of them (bench/quality.py measures what the
#: analysis costs against the production encode).
EXCERPT_SECONDS = 2.0
MIN_EXCERPT_SECONDS = 1.0
SAMPLE_SHARE = 0.1
MIN_EXCERPTS = 3
MAX_EXCERPTS = 12
#: VMAF of every n-th frame of a trial (libvmaf n_subsample; its motion feature still sees
#: every frame).
TRIAL_SUBSAMPLE = 3
#: The CRFs every size is tried at, per codec (each on its own scale; x265's CRF gives x264's
#: quality about 3 higher, SVT-AV1's scale is 1-63). The same for every size: at one bitrate a
#: smaller picture sits at a lower CRF than a larger one, so where a smaller size takes over
#: the hull is at the CRFs the tallest is tried at, not higher. (Trying each smaller size 3
#: higher left a grainy title's 240p and 360p without points between 0.3 and 1.5 Mb/s, where
#: they are the best sizes: bench/quality.py, BENCHMARKS.md.)
TRIAL_GRIDS = {
    "h264": (19.0, 25.0, 31.0, 37.0),
    "hevc": (21.0, 27.0, 33.0, 39.0),
    "av1": (24.0, 32.0, 40.0, 48.0),
}
#: What pins each encoder to one thread, so that a trial's bits depend on its input alone.
ONE_THREAD = {"libx265": ("x265-params", "pools=1:frame-threads=1"),
              "libsvtav1": ("svtav1-params", "lp=1")}


def checked(ladder: LadderSpec, media: MediaInfo, codecs: Sequence[str] | None,
            copy: bool) -> PerTitleSpec:
    """The ladder's per-title spec with its codecs resolved (its own, else --codec, else the
    ladder's), once everything an analysis would refuse has been refused: before anything is
    written. `codecs`: --codec; `copy`: --copy, which cannot take a per-title ladder."""
    assert ladder.per_title is not None
    if copy:
        raise InputError("--copy keeps the source's encoding: a per-title ladder encodes")
    spec = replace(ladder.per_title,
                   codecs=codec_names(ladder.per_title.codecs or codecs or ladder.codecs))
    candidates(spec, media)
    assert media.video is not None  # candidates refuses a source without video
    sample(media, media.video.frame_rate)
    rows = [video_codec(name) for name in spec.codecs]
    vmaf_tool()
    check_build("ffmpeg-full", rows, media.video.codec)  # the trials and their scores
    check_build(transcode_tool(rows, media.video.codec), rows, media.video.codec)
    return spec


@dataclass(frozen=True)
class Candidate:
    width: int
    height: int


def candidates(spec: PerTitleSpec, media: MediaInfo) -> list[Candidate]:
    """The sizes to try, tallest first: the listed (or default) heights at the source's
    display aspect; a listed height above the source is bad input."""
    video = media.video
    if video is None:
        raise InputError(f"{media.path}: has no video: a per-title ladder needs a picture")
    source = even_floor(video.height)
    if spec.resolutions:
        above = [h for h in spec.resolutions if h > video.height]
        if above:
            raise InputError(f"per_title.resolutions: {above[0]}p is above the source's "
                             f"{video.height}p (ladders never upscale)")
        heights = sorted({even_floor(h) for h in spec.resolutions}, reverse=True)
    else:
        heights = [source] + [h for h in DEFAULT_RESOLUTIONS if h < source * 0.9]
    return [Candidate(even_round(h * video.display_aspect), h) for h in heights]


def sample(media: MediaInfo, frame_rate: Fraction) -> list[Excerpt]:
    """Excerpts spread over the title, each starting on a frame; a title too short for
    MIN_EXCERPTS excerpts of MIN_EXCERPT_SECONDS is bad input."""
    duration = media.duration
    length = min(EXCERPT_SECONDS, duration / MIN_EXCERPTS)
    frames = math.floor(length * frame_rate)
    if length < MIN_EXCERPT_SECONDS or frames < 2:
        raise InputError(
            f"{media.path}: {duration:.2f} s is too short to sample for a per-title ladder "
            f"(at least {MIN_EXCERPTS * MIN_EXCERPT_SECONDS:g} s)")
    length = float(frames / frame_rate)
    count = min(MAX_EXCERPTS, max(MIN_EXCERPTS, round(SAMPLE_SHARE * duration / length)))
    excerpts = []
    for k in range(count):
        start = min(max((k + 0.5) * duration / count - length / 2, 0.0), duration - length)
        start = float(math.floor(start * frame_rate) / frame_rate)
        excerpts.append(Excerpt(round(start, 6), round(length, 6)))
    return excerpts


@dataclass(frozen=True)
class AnalysisPlan:
    """The trial jobs of a title, and what the VMAF is measured as."""

    viewing: Viewing
    excerpts: tuple[Excerpt, ...]
    jobs: tuple[TrialJob, ...]


def plan_analysis(spec: PerTitleSpec, ladder: LadderSpec, media: MediaInfo,
                  frame_rate: Fraction, segment_duration: float, work: Path) -> AnalysisPlan:
    """One trial job per excerpt and codec; refuses bad input before anything runs."""
    sizes = candidates(spec, media)
    excerpts = sample(media, frame_rate)
    vmaf_tool()  # a missing libvmaf is exit 3 before any work
    top = sizes[0]
    viewing = Viewing(top.width, top.height, frame_rate)
    # The production encode's GOP (closed, no scene cuts, at most two segments long); an
    # excerpt starts on a key frame as a segment does.
    key_frames = KeyFramePlan((0.0,), 2 * math.ceil(frame_rate * segment_duration))
    jobs = []
    for name in spec.codecs:
        codec = video_codec(name)
        encodes = []
        for size in sizes:
            for quality in TRIAL_GRIDS[name]:
                options = trial_options(codec, ladder.preset(codec), quality, key_frames,
                                        _profile(codec, size.height))
                encodes.append(TrialEncode(size.width, size.height, quality,
                                           tuple((k, str(v)) for k, v in options.items())))
        jobs += [TrialJob(media.path, excerpt, name, viewing, tuple(encodes),
                          work / "trials", f"{name}_{k}", TRIAL_SUBSAMPLE)
                 for k, excerpt in enumerate(excerpts)]
    return AnalysisPlan(viewing, tuple(excerpts), tuple(jobs))


def trial_options(codec: VideoCodec, preset: str, crf: float, key_frames: KeyFramePlan,
                  profile: str) -> dict[str, object]:
    """A trial's ffmpeg output options: the production encoder and preset at `crf`,
    uncapped, on one thread."""
    options: dict[str, object] = encoder_options(
        codec, CappedQuality(crf, 0, 0), key_frames, preset=preset, profile=profile)
    del options["maxrate"], options["bufsize"]
    options["threads"] = 1
    if codec.encoder in ONE_THREAD:
        key, params = ONE_THREAD[codec.encoder]
        options[key] = f"{options[key]}:{params}" if key in options else params
    return options


def _profile(codec: VideoCodec, height: int) -> str:
    """H.264's profile by height as the fixed ladder has it; the table's for the others."""
    if codec.name == "h264":
        return "high" if height >= 720 else "main"
    return codec.profiles[0]


@dataclass(frozen=True)
class PerTitleLadder:
    """What was measured and what was chosen from it."""

    spec: PerTitleSpec
    viewing: Viewing
    excerpts: tuple[Excerpt, ...]
    points: tuple[RatePoint, ...]
    rungs: tuple[Rung, ...]
    cpu_seconds: float  # the analysis' CPU time (every process it ran)
    seconds: float  # its wall time
    hull: tuple[RatePoint, ...] = field(default=())  # each codec's, cheapest first


def analyse(spec: PerTitleSpec, ladder: LadderSpec, media: MediaInfo, frame_rate: Fraction,
            segment_duration: float, work: Path, executor: Executor | None = None,
            progress: JobProgress | None = None) -> PerTitleLadder:
    """Run the trial jobs and place the rungs."""
    plan = plan_analysis(spec, ladder, media, frame_rate, segment_duration, work)
    started = time.perf_counter()
    before = _children_cpu()
    results = (executor or LocalExecutor(os.cpu_count())).map(run_trial, plan.jobs, progress)
    cpu = _children_cpu() - before
    points = rate_points(score for scores in results for score in scores)
    return plan_ladder(spec, plan, points, cpu, time.perf_counter() - started)


def plan_ladder(spec: PerTitleSpec, plan: AnalysisPlan, points: Sequence[RatePoint],
                cpu_seconds: float = 0.0, seconds: float = 0.0) -> PerTitleLadder:
    limits = _limits(spec)
    rungs = [rung for codec in spec.codecs
             for rung in place_rungs([p for p in points if p.codec == codec], spec.targets,
                                     limits, integer_crf=video_codec(codec).crf_integer)]
    hull = tuple(h for codec in spec.codecs
                 for h in convex_hull(p for p in points if p.codec == codec))
    return PerTitleLadder(spec, plan.viewing, plan.excerpts, tuple(points), tuple(rungs),
                          round(cpu_seconds, 3), round(seconds, 3), hull)


def _limits(spec: PerTitleSpec) -> Limits:
    return Limits(spec.min_bitrate, spec.max_bitrate, spec.max_rungs, spec.floor_bitrate)


def _children_cpu() -> float:
    """CPU seconds of every child process waited for so far (a process pool's workers count
    once the pool is shut down, with the ffmpeg processes they ran)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: The floor rung's VBV buffer, in seconds at the floor bitrate: with its peak capped at the
#: floor itself, a title of D seconds averages at most (1 + 0.9 / D) x the floor (x264 and x265
#: start the buffer 90 % full), whatever the sample predicted (a 60 s grainy title's floor
#: delivered 216 kb/s at the CRF predicted for 200 under the usual 1.5x cap).
FLOOR_BUFFER_SECONDS = 1


def renditions(ladder: PerTitleLadder, preset: Callable[[VideoCodec], str]) -> list[Rendition]:
    """The video renditions to encode, tallest first (the transcode scales in cascade);
    `preset`: each codec's (LadderSpec.preset). The floor rung is held to floor_bitrate."""
    out = []
    for rung in ladder.rungs:
        maxrate, bufsize = int(rung.bitrate * MAXRATE_FACTOR), rung.bitrate * BUFSIZE_SECONDS
        if rung.role == FLOOR:
            floor = _limits(ladder.spec).floor_rate  # where placement put it
            maxrate, bufsize = min(maxrate, floor), min(bufsize, floor * FLOOR_BUFFER_SECONDS)
        out.append(Rendition(
            id=rendition_id(rung), kind="video", codec=rung.codec, bitrate=rung.bitrate,
            width=rung.width, height=rung.height, frame_rate=ladder.viewing.frame_rate,
            profile=_profile(video_codec(rung.codec), rung.height), maxrate=maxrate,
            bufsize=bufsize, preset=preset(video_codec(rung.codec)), crf=rung.crf,
        ))
    return sorted(out, key=lambda r: (-r.height, -r.bitrate))
