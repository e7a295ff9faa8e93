"""Probing a source with ffprobe into a MediaInfo, and rejecting input that cannot be packaged."""

from __future__ import annotations

import atexit
import json
import re
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from packager.errors import InputError
from packager.title.languages import container_language
from packager.tools import ToolRun, find_tool, run_tool


@dataclass(frozen=True)
class VideoStream:
    index: int
    codec: str  # ffprobe codec_name: h264, hevc, ...
    profile: str
    level: int
    width: int
    height: int
    sar: Fraction  # sample (pixel) aspect ratio
    frame_rate: Fraction  # the rate the output will have (constant)
    variable_frame_rate: bool
    pix_fmt: str
    bit_depth: int

    @property
    def display_aspect(self) -> Fraction:
        """What the viewer sees: anamorphic sources are stretched by their SAR."""
        return Fraction(self.width, self.height) * self.sar


@dataclass(frozen=True)
class AudioStream:
    index: int
    codec: str
    profile: str
    channels: int
    sample_rate: int
    language: str  # normalised BCP 47 ('und' when the container says nothing usable)
    #: Container dispositions (ffprobe): an audio description for the blind, a commentary.
    visual_impaired: bool = False
    comment: bool = False


@dataclass(frozen=True)
class SubtitleStream:
    """A text subtitle stream of the source (bitmap subtitles are not carried)."""

    index: int
    codec: str  # mov_text, subrip, webvtt, ass, ssa, text
    language: str
    forced: bool = False
    hearing_impaired: bool = False


#: Subtitle codecs that are text (ffmpeg converts them to WebVTT); DVD/PGS bitmaps are not.
TEXT_SUBTITLE_CODECS = frozenset({"mov_text", "subrip", "srt", "webvtt", "ass", "ssa", "text"})


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    format_name: str
    duration: float
    size: int
    video: VideoStream | None
    #: Every audio stream, in stream order (the first is the source's own language).
    audio: tuple[AudioStream, ...] = ()
    #: Every text subtitle stream, in stream order.
    subtitles: tuple[SubtitleStream, ...] = ()


#: ABR players and TVs top out at 60 fps.
MAX_FRAME_RATE = Fraction(60)
STANDARD_FRAME_RATES = tuple(
    Fraction(r)
    for r in ("12", "12.5", "15", "24000/1001", "24", "25", "30000/1001", "30", "48", "50",
              "60000/1001", "60")
)


class _EarlyProbe:
    """ffprobe of one file, started on a thread before its answer is needed."""

    def __init__(self, path: Path) -> None:
        self.path, self.identity = path, _identity(path)
        self.result: ToolRun | BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        # An early exit (a bad option, Ctrl-C) waits for ffprobe rather than leave it behind.
        atexit.register(self.thread.join)

    def _run(self) -> None:
        try:
            self.result = _run_ffprobe(self.path)
        except BaseException as e:  # handed to probe(), which raises it in its own thread
            self.result = e


#: Probes started early, by absolute path; `probe` takes (and removes) its file's.
_EARLY: dict[str, _EarlyProbe] = {}


def probe_early(path: Path) -> None:
    """Start probing a source now, on a thread, so that ffprobe runs on another core while
    this process goes on loading the packager; `probe` of the same file (unchanged since)
    takes its answer. A path that is no regular, non-empty file is left to `probe`."""
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return
    except OSError:
        return
    _EARLY[str(path.absolute())] = _EarlyProbe(path)


def _identity(path: Path) -> tuple[str, int, int, int]:
    stat = path.stat()
    return str(path.absolute()), stat.st_ino, stat.st_size, stat.st_mtime_ns


def _run_ffprobe(path: Path) -> ToolRun:
    ffprobe = find_tool("ffprobe")
    return run_tool(
        [
            str(ffprobe.path), "-v", "error", "-hide_banner",
            "-show_format", "-show_streams", "-of", "json", str(path),
        ]
    )


def _probe_result(path: Path) -> ToolRun:
    """ffprobe's answer for `path`: the early one if it was started for this very file."""
    early = _EARLY.pop(str(path.absolute()), None)
    if early is not None:
        early.thread.join()
        atexit.unregister(early.thread.join)
        if early.identity == _identity(path):
            if isinstance(early.result, BaseException):
                raise early.result
            assert early.result is not None
            return early.result
    return _run_ffprobe(path)


def probe(path: Path) -> MediaInfo:
    """Describe a source, or raise InputError with one line that says what is wrong with it."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a media file")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path}: file is empty (0 bytes)")
    result = _probe_result(path)
    if result.returncode != 0:
        reason = _last_meaningful(result.stderr_tail, path) or f"ffprobe exited {result.returncode}"
        raise InputError(f"{path}: not readable media ({reason})")
    data: dict[str, Any] = json.loads(result.stdout or "{}")
    streams: list[dict[str, Any]] = data.get("streams", [])
    fmt: dict[str, Any] = data.get("format", {})
    video = next((_video(s) for s in streams if _is_video(s)), None)
    audio = tuple(_audio(s) for s in streams if s.get("codec_type") == "audio")
    subtitles = tuple(
        _subtitle(s) for s in streams
        if s.get("codec_type") == "subtitle" and s.get("codec_name") in TEXT_SUBTITLE_CODECS
    )
    if video is None and not audio:
        raise InputError(f"{path}: has no audio or video stream")
    duration = _float(fmt.get("duration"))
    if duration <= 0:
        raise InputError(f"{path}: duration unknown or zero; the file is not usable media")
    return MediaInfo(
        path=path,
        format_name=str(fmt.get("format_name", "")),
        duration=duration,
        size=size,
        video=video,
        audio=audio,
        subtitles=subtitles,
    )


def _is_video(stream: dict[str, Any]) -> bool:
    # Cover art in MP3/M4A shows up as a one-frame video stream; it is not a picture track.
    disposition = stream.get("disposition", {})
    return stream.get("codec_type") == "video" and not disposition.get("attached_pic")


def output_frame_rate(base: Fraction | None, average: Fraction | None) -> Fraction:
    """The constant rate every rendition gets.

    A phone's variable-rate clip has a standard base rate (r_frame_rate, e.g. 30) and an odd
    average (29.2): the base rate, duplicating the odd missing frame, plays smoothly; an odd
    average would give a rate no TV expects. Without a standard rate, the average is kept.
    """
    for candidate in (base, average):
        if candidate:
            for rate in STANDARD_FRAME_RATES:
                # 1/4000: half the gap between 30 and 29.97, so neither is taken for the other
                if abs(candidate - rate) / rate < Fraction(1, 4000):
                    return rate
    return min(average or base or Fraction(25), MAX_FRAME_RATE)


def _video(s: dict[str, Any]) -> VideoStream:
    rate = _fraction(s.get("r_frame_rate"))
    avg = _fraction(s.get("avg_frame_rate"))
    variable = bool(rate and avg and rate != avg)
    chosen = output_frame_rate(rate, avg)
    bit_depth = int(s.get("bits_per_raw_sample") or 0) or (
        10 if "10" in str(s.get("pix_fmt", "")) else 8
    )
    return VideoStream(
        index=int(s["index"]),
        codec=str(s.get("codec_name", "")),
        profile=str(s.get("profile", "")),
        level=int(s.get("level") or 0),
        width=int(s.get("width") or 0),
        height=int(s.get("height") or 0),
        sar=_fraction(s.get("sample_aspect_ratio")) or Fraction(1),
        frame_rate=chosen,
        variable_frame_rate=variable,
        pix_fmt=str(s.get("pix_fmt", "")),
        bit_depth=bit_depth,
    )


def _audio(s: dict[str, Any]) -> AudioStream:
    disposition = s.get("disposition", {})
    return AudioStream(
        index=int(s["index"]),
        codec=str(s.get("codec_name", "")),
        profile=str(s.get("profile", "")),
        channels=int(s.get("channels") or 0),
        sample_rate=int(s.get("sample_rate") or 0),
        language=container_language(str(s.get("tags", {}).get("language", ""))),
        visual_impaired=bool(disposition.get("visual_impaired")),
        comment=bool(disposition.get("comment")),
    )


def _subtitle(s: dict[str, Any]) -> SubtitleStream:
    disposition = s.get("disposition", {})
    return SubtitleStream(
        index=int(s["index"]),
        codec=str(s.get("codec_name", "")),
        language=container_language(str(s.get("tags", {}).get("language", ""))),
        forced=bool(disposition.get("forced")),
        hearing_impaired=bool(disposition.get("hearing_impaired")),
    )


def _fraction(value: Any) -> Fraction | None:
    try:
        num, _, den = str(value).partition("/")
        result = Fraction(int(num), int(den or 1))
    except (ValueError, ZeroDivisionError):
        return None
    return result if result > 0 else None


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


#: ffprobe's closing line when it cannot open a file; the lines before it say why.
_GENERIC = "Invalid data found when processing input"


def _last_meaningful(lines: list[str], path: Path) -> str:
    """The most specific thing ffprobe said ('moov atom not found' beats its generic closing
    line), without the '[mov @ 0x..]' and file-name prefixes, so it reads as one sentence."""
    texts = [
        re.sub(r"^(\[[^\]]*\]\s*)+", "", line.strip()).removeprefix(f"{path}: ")
        for line in lines
    ]
    specific = [t for t in texts if t and t != _GENERIC]
    return specific[0] if specific else next((t for t in reversed(texts) if t), "")
