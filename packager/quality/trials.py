"""Trial encodes: excerpts of a source encoded at a grid of resolutions and qualities, every
encode scored with VMAF against the excerpt, in ONE ffmpeg per excerpt.

The excerpt is decoded once; one filter graph scales it to every trial size for the
encoders, and one graph per size scores that size's encodes: each encode is decoded back in
the same process (a loopback decoder, ffmpeg >= 7: `-dec`), upscaled to the viewing size and
compared with the excerpt (vmaf.aligned: the same alignment as every other VMAF run). Each
graph runs on a thread of its own; encoders are pinned to one thread so that a trial's bits do
not depend on the machine (identical source, identical ladder).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packager.errors import TranscodeError
from packager.quality.encode import Encode, video_packets
from packager.quality.hull import RatePoint
from packager.quality.vmaf import (
    VMAF_MODEL,
    Excerpt,
    Viewing,
    VmafScore,
    aligned,
    log_directory,
    run_measurement,
    source_input,
    vmaf_tool,
)


@dataclass(frozen=True)
class TrialEncode:
    """One point of the grid: a size, the encoder's quality setting, and the ffmpeg output
    options that encode it (codec, preset, rate control, GOP), as the planner gives them."""

    width: int
    height: int
    quality: float
    options: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class TrialJob:
    """One excerpt of the source, encoded at every point of one codec's grid (picklable: it
    may run in another process)."""

    source: Path
    excerpt: Excerpt
    codec: str
    viewing: Viewing
    encodes: tuple[TrialEncode, ...]
    workdir: Path
    name: str  # unique among the analysis' jobs: names its files
    subsample: int = 1


@dataclass(frozen=True)
class TrialScore:
    """What one trial encode of one excerpt cost and scored."""

    codec: str
    width: int
    height: int
    quality: float
    bits: int
    frames: int
    seconds: float
    scores: tuple[float, ...]  # every `subsample`-th frame's VMAF


def run_trial(job: TrialJob) -> list[TrialScore]:
    """Encode and score one excerpt; the encodes are deleted once counted."""
    job.workdir.mkdir(parents=True, exist_ok=True)
    with log_directory() as logs_dir:
        logs = [logs_dir / f"vmaf_{k}.json" for k in range(len(job.encodes))]
        return _run_trial(job, logs)


def _run_trial(job: TrialJob, logs: list[Path]) -> list[TrialScore]:
    outputs = [job.workdir / f"{job.name}_{k}.mkv" for k in range(len(job.encodes))]
    rate = job.viewing.frame_rate
    sizes = list(dict.fromkeys((e.width, e.height) for e in job.encodes))
    args = [vmaf_tool(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+error",
            "-threads", "1", *source_input(job.source, job.excerpt)]
    by_size = {size: [k for k, e in enumerate(job.encodes) if (e.width, e.height) == size]
               for size in sizes}
    # The encoders' graph: the excerpt at the output rate from 0, one branch per encode.
    encode_graph = [f"[0:v:0]fps={rate.numerator}/{rate.denominator},setpts=PTS-STARTPTS,"
                    f"format=yuv420p,split={len(sizes)}" + "".join(f"[s{i}]" for i in
                                                                  range(len(sizes)))]
    for i, (size, ks) in enumerate(by_size.items()):
        encode_graph.append(f"[s{i}]scale={size[0]}:{size[1]}:flags=bicubic,setsar=1,"
                            f"split={len(ks)}" + "".join(f"[e{k}]" for k in ks))
    args += ["-filter_complex", ";".join(encode_graph)]
    for k, (encode, path) in enumerate(zip(job.encodes, outputs, strict=True)):
        args += ["-map", f"[e{k}]"]
        for key, value in encode.options:
            args += [f"-{key}", value]
        args += ["-f", "matroska", str(path)]
    for k in range(len(job.encodes)):
        args += ["-dec", f"{k}:0"]
    # One scoring graph per size (a thread each), the excerpt split among its encodes.
    for ks in by_size.values():
        graph = [aligned("[0:v:0]", job.viewing, True) + f",split={len(ks)}"
                 + "".join(f"[r{k}]" for k in ks)]
        for k in ks:
            graph.append(aligned(f"[dec:{k}]", job.viewing, False) + f"[d{k}]")
            graph.append(f"[d{k}][r{k}]libvmaf=model=version={VMAF_MODEL}:log_fmt=json:"
                         f"log_path={logs[k]}:n_threads=1:n_subsample={job.subsample}[o{k}]")
        args += ["-filter_complex", ";".join(graph)]
    args += ["-filter_threads", "1"]
    for k in range(len(job.encodes)):
        args += ["-map", f"[o{k}]"]
    args += ["-f", "null", "-"]
    run_measurement(args, f"trial encode of {job.source.name} at {job.excerpt.start:.2f} s")
    scores = []
    for encode, path, log in zip(job.encodes, outputs, logs, strict=True):
        packets = video_packets(Encode((path,)))
        frames = [float(f["metrics"]["vmaf"]) for f in json.loads(log.read_text())["frames"]]
        if len(frames) != math.ceil(packets.frames / job.subsample):
            raise TranscodeError(f"trial {path.name}: VMAF scored {len(frames)} of "
                                 f"{packets.frames} frames (subsample {job.subsample})")
        seconds = packets.frames / float(rate)
        scores.append(TrialScore(job.codec, encode.width, encode.height, encode.quality,
                                 packets.bytes * 8, packets.frames, seconds, tuple(frames)))
        path.unlink()
    return scores


def rate_points(scores: Iterable[TrialScore]) -> list[RatePoint]:
    """Each grid point over all excerpts: bits over seconds, VMAF over every scored frame."""
    grouped: dict[tuple[str, int, int, float], list[TrialScore]] = defaultdict(list)
    for s in scores:
        grouped[(s.codec, s.width, s.height, s.quality)].append(s)
    points = []
    for (codec, width, height, quality), group in sorted(grouped.items()):
        frames = [f for s in group for f in s.scores]
        score = VmafScore.of_frames(frames)
        bitrate = round(sum(s.bits for s in group) / sum(s.seconds for s in group))
        points.append(RatePoint(codec, width, height, quality, bitrate,
                                round(score.mean, 4), round(score.p5, 4)))
    return points
