"""VMAF of encodes against their source: libvmaf (model vmaf_v0.6.1) in ffmpeg-full, every
frame scored and the per-frame log read back.

How the two sides are lined up, as a viewer sees them:
- both are brought to the output frame rate (fps, as the transcode does) and start at time 0
  (setpts=PTS-STARTPTS), so frame k of the encode meets frame k of the source;
- both are scaled (bicubic, the scaler a player's upscale is closest to) to the viewing size,
  the top of the ladder: a 360p rung is judged on the screen the 720p rung fills;
- the encode leads: libvmaf scores each of its frames against the source frame of the same
  time and stops when the encode ends, and the frames it scored are checked against the frames
  the encode holds (a source shorter than its encode is refused before: check.py). Not
  `shortest`/`eof_action=endall`: when the source side reaches its end first (it is decoded
  faster than an encode decoded back), the encode's last frame could be dropped or kept by
  timing alone, and with it the motion feature of the frame before (measured: one run in
  three scored the last frame differently).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path

from packager.errors import InputError, ToolError, TranscodeError
from packager.quality.encode import Encode
from packager.tools import ffmpeg_filters, find_tool, run_tool

#: The model every score is given in (libvmaf's default, trained for 1080p TV viewing).
VMAF_MODEL = "vmaf_v0.6.1"
#: The share of frames at or under which the low score lies: the 5th percentile frame.
LOW_PERCENTILE = 5.0


@dataclass(frozen=True)
class VmafScore:
    mean: float
    p5: float  # 5th percentile of the frame scores (linear interpolation between ranks)
    frames: int  # frames scored
    model: str = VMAF_MODEL

    @classmethod
    def of_frames(cls, scores: Sequence[float]) -> VmafScore:
        if not scores:
            raise ValueError("no frame scores")
        return cls(sum(scores) / len(scores), percentile(scores, LOW_PERCENTILE), len(scores))


def percentile(values: Sequence[float], pct: float) -> float:
    """The pct-th percentile, linearly interpolated between order statistics (NumPy's default
    'linear' method): rank pct/100 x (n - 1)."""
    ordered = sorted(values)
    rank = pct / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


@dataclass(frozen=True)
class Viewing:
    """The picture both sides are compared as: a size (the ladder's top) and a frame rate."""

    width: int
    height: int
    frame_rate: Fraction


@dataclass(frozen=True)
class Excerpt:
    """A stretch of the source (seconds); trial encodes and their scores use the same one."""

    start: float
    duration: float


def source_input(source: Path, excerpt: Excerpt | None) -> list[str]:
    """ffmpeg arguments that read the source, or an excerpt of it: -ss before -i decodes from
    the key frame before `start` and drops what precedes it, so every reader of the same
    excerpt gets the same frames."""
    if excerpt is None:
        return ["-i", str(source)]
    return ["-ss", f"{excerpt.start:.6f}", "-t", f"{excerpt.duration:.6f}", "-i", str(source)]


def aligned(stream: str, viewing: Viewing, source_side: bool) -> str:
    """The filter chain that brings one side to the viewing picture. The source is made
    constant-rate first (as the transcode did, so the same frames are kept), the encode is
    already at the output rate; both then start at 0."""
    rate = f"{viewing.frame_rate.numerator}/{viewing.frame_rate.denominator}"
    timing = (f"fps={rate},setpts=PTS-STARTPTS" if source_side
              else f"setpts=PTS-STARTPTS,fps={rate}")
    return (f"{stream}{timing},scale={viewing.width}:{viewing.height}:flags=bicubic,"
            "format=yuv420p,setsar=1")


@cache
def vmaf_tool() -> str:
    """ffmpeg-full's path, checked once for the libvmaf filter (exit 3 when it lacks it)."""
    tool = find_tool("ffmpeg-full")
    if "libvmaf" not in ffmpeg_filters(tool):
        raise ToolError(f"ffmpeg-full ({tool.path}) lacks the libvmaf filter: VMAF cannot be "
                        "measured; install imageio-ffmpeg or set CDNPACK_FFMPEG_FULL")
    return str(tool.path)


def measure(
    source: Path,
    encodes: Sequence[Encode],
    frames: Sequence[int],
    viewing: Viewing,
    *,
    excerpt: Excerpt | None = None,
    subsample: int = 1,
    threads: int = 0,
) -> list[VmafScore]:
    """Score each encode against the source (or an excerpt of it) in one ffmpeg: the source is
    decoded once and split. `frames`: how many frames each encode holds; the scores must
    cover exactly those (every `subsample`-th of them). `threads` 0: every core.

    At most one encode may need stdin (a delivered track or an encrypted one)."""
    if len([e for e in encodes if not e.direct]) > 1:
        raise ValueError("one ffmpeg reads at most one encode through stdin")
    workers = threads or os.cpu_count() or 1
    with log_directory() as tmp:
        logs = [tmp / f"vmaf_{i}.json" for i in range(len(encodes))]
        args = [vmaf_tool(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+error"]
        decode_threads = ["-threads", str(threads)] if threads else []
        for encode in encodes:
            args += [*decode_threads, *encode.input_args()]
        args += [*decode_threads, *source_input(source, excerpt)]
        n = len(encodes)
        graph = [aligned(f"[{n}:v:0]", viewing, True) + f",split={n}"
                 + "".join(f"[r{i}]" for i in range(n))]
        for i, log in enumerate(logs):
            graph.append(aligned(f"[{i}:v:0]", viewing, False) + f"[d{i}]")
            graph.append(
                f"[d{i}][r{i}]libvmaf=model=version={VMAF_MODEL}:log_fmt=json:"
                f"log_path={log}:n_threads={workers}:n_subsample={subsample}[o{i}]")
        args += ["-filter_complex", ";".join(graph)]
        if threads:
            args += ["-filter_threads", str(threads)]
        for i in range(n):
            args += ["-map", f"[o{i}]"]
        args += ["-f", "null", "-"]
        script = next((s for e in encodes if (s := e.stdin_script()) is not None), None)
        run_measurement(args, "VMAF run", script, keyed=any(e.key for e in encodes))
        return [_read_log(log, expected, subsample, encode)
                for log, expected, encode in zip(logs, frames, encodes, strict=True)]


def _read_log(log: Path, expected: int, subsample: int, encode: Encode) -> VmafScore:
    doc = json.loads(log.read_text())
    scores = [float(f["metrics"]["vmaf"]) for f in doc.get("frames", [])]
    want = math.ceil(expected / subsample)
    if len(scores) != want:
        raise InputError(
            f"{encode.files[-1].parent if len(encode.files) > 1 else encode.files[0]}: VMAF "
            f"scored {len(scores) * subsample if subsample > 1 else len(scores)} frames of the "
            f"{expected} it holds: the source and the encode do not line up")
    return VmafScore.of_frames(scores)


@contextmanager
def log_directory() -> Iterator[Path]:
    """A private temporary directory for libvmaf's logs. Their paths go into a filter graph,
    whose escaping rules (two levels: option values, then the graph) a plain path needs none
    of; a release's own directory may hold any character."""
    with tempfile.TemporaryDirectory(prefix="cdnpack-vmaf-") as tmp:
        if not re.fullmatch(r"[\w./-]+", tmp):
            raise InputError(f"temporary directory {tmp!r}: set TMPDIR to a plain path")
        yield Path(tmp)


def run_measurement(args: list[str], what: str, stdin_text: str | None = None,
                    keyed: bool = False) -> None:
    """Run ffmpeg-full to the end; a failure, or a decode error it logs but exits 0 on, is
    one line (with a key in play, decode errors mean the key does not decrypt the track)."""
    # SVT-AV1 prints a banner per encoder around -loglevel; SVT_LOG=1 keeps its errors only.
    result = run_tool(args, stdin_text=stdin_text, tail_lines=40,
                      env={"SVT_LOG": "1", **os.environ})
    errors = [line for line in result.stderr_tail if re.search(r"\[(error|fatal)\]", line)]
    if result.returncode == 0 and not errors:
        return
    last = "; ".join(_strip(x) for x in (errors or result.stderr_tail)[-3:])
    if keyed and errors:
        raise InputError(f"{what}: an encrypted track does not decode with its key ({last})")
    raise TranscodeError(f"{what} failed (exit {result.returncode}): {last}")


def _strip(line: str) -> str:
    return re.sub(r"^(\[[^\]]*\]\s*)+", "", line).strip()
