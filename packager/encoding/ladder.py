"""The ABR ladder: which renditions to encode from a source, from a preset or a YAML file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packager.errors import InputError
from packager.files import read_text

if TYPE_CHECKING:
    from packager.encoding.media import MediaInfo


@dataclass(frozen=True)
class VideoRung:
    """One line of a ladder as the user wrote it: a target height and bitrate."""

    height: int
    bitrate: int  # bits per second, the average target
    profile: str  # H.264 profile: high or main


@dataclass(frozen=True)
class LadderSpec:
    name: str
    x264_preset: str
    rungs: tuple[VideoRung, ...]
    audio_bitrate: int
    audio_channels: int
    audio_sample_rate: int


@dataclass(frozen=True)
class Rendition:
    """One encoded output track; its id is its directory name in the release."""

    id: str
    kind: str  # "video" or "audio"
    codec: str  # "h264" or "aac" (or the source codec in --copy mode)
    bitrate: int
    width: int = 0
    height: int = 0
    frame_rate: Fraction = Fraction(0)
    profile: str = ""
    maxrate: int = 0
    bufsize: int = 0
    channels: int = 0
    sample_rate: int = 0
    language: str = "und"


# Bitrates follow the shape of Apple's HLS authoring ladder (16:9, H.264), trimmed to six rungs.
PRESETS: dict[str, LadderSpec] = {
    "default": LadderSpec(
        name="default",
        x264_preset="veryfast",
        rungs=(
            VideoRung(1080, 5_000_000, "high"),
            VideoRung(720, 3_000_000, "high"),
            VideoRung(540, 2_000_000, "main"),
            VideoRung(480, 1_400_000, "main"),
            VideoRung(360, 800_000, "main"),
            VideoRung(240, 400_000, "main"),
        ),
        audio_bitrate=128_000,
        audio_channels=2,
        audio_sample_rate=48_000,
    ),
    # Three rungs for small sources, previews and tests.
    "compact": LadderSpec(
        name="compact",
        x264_preset="veryfast",
        rungs=(
            VideoRung(720, 2_500_000, "high"),
            VideoRung(360, 700_000, "main"),
            VideoRung(240, 300_000, "main"),
        ),
        audio_bitrate=96_000,
        audio_channels=2,
        audio_sample_rate=48_000,
    ),
}

X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
)
H264_PROFILES = ("baseline", "main", "high")
#: Peak cap over the average: 1.5x keeps segment peaks honest while letting hard scenes breathe.
MAXRATE_FACTOR = Fraction(3, 2)
#: VBV buffer of two seconds at the average rate: the decoder model players actually have.
BUFSIZE_SECONDS = 2


def load_ladder(choice: str) -> LadderSpec:
    """A preset name, or a path to a YAML ladder file."""
    if choice in PRESETS:
        return PRESETS[choice]
    path = Path(choice)
    if path.suffix.lower() not in (".yaml", ".yml") and not path.exists():
        names = ", ".join(PRESETS)
        raise InputError(f"unknown ladder {choice!r}: use a preset ({names}) or a YAML file")
    return parse_ladder_file(path)


def parse_ladder_file(path: Path) -> LadderSpec:
    import yaml  # noqa: PLC0415 (only ladder files need it; the CLI starts without it)
    text = read_text(path, "ladder file")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(doc, dict):
        raise InputError(f"{path}: a ladder file is a mapping with 'video' and 'audio'")
    video = _mapping(doc.get("video", {}), path, "video")
    audio = _mapping(doc.get("audio", {}), path, "audio")
    preset = str(video.get("preset", "veryfast"))
    if preset not in X264_PRESETS:
        raise InputError(f"{path}: video.preset {preset!r} is not an x264 preset")
    rungs_doc = video.get("rungs")
    if not isinstance(rungs_doc, list) or not rungs_doc:
        raise InputError(f"{path}: video.rungs must be a non-empty list")
    rungs = []
    for i, item in enumerate(rungs_doc):
        field = f"video.rungs[{i}]"
        rung = _mapping(item, path, field)
        height = rung.get("height")
        if not isinstance(height, int) or not 64 <= height <= 4320:
            raise InputError(f"{path}: {field}.height must be an integer from 64 to 4320")
        profile = str(rung.get("profile", "high" if height >= 720 else "main"))
        if profile not in H264_PROFILES:
            raise InputError(f"{path}: {field}.profile must be one of {', '.join(H264_PROFILES)}")
        rungs.append(VideoRung(height, parse_bitrate(rung.get("bitrate"), path, field), profile))
    heights = [r.height for r in rungs]
    if len(set(heights)) != len(heights):
        raise InputError(f"{path}: video.rungs has two rungs of the same height")
    return LadderSpec(
        name=str(doc.get("name", path.stem)),
        x264_preset=preset,
        rungs=tuple(sorted(rungs, key=lambda r: -r.height)),
        audio_bitrate=parse_bitrate(audio.get("bitrate", "128k"), path, "audio"),
        audio_channels=_int_in(audio.get("channels", 2), 1, 8, path, "audio.channels"),
        audio_sample_rate=_int_in(
            audio.get("sample_rate", 48000), 8000, 96000, path, "audio.sample_rate"
        ),
    )


def parse_bitrate(value: Any, path: Path, field: str) -> int:
    """'3000k', '3M', or bits per second as an integer."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", str(value))
    if not match:
        raise InputError(f"{path}: {field}.bitrate {value!r} is not a bitrate like 3000k or 3M")
    scale = {"": 1, "k": 1000, "m": 1_000_000}[match.group(2).lower()]
    bits = int(float(match.group(1)) * scale)
    if not 16_000 <= bits <= 200_000_000:
        raise InputError(f"{path}: {field}.bitrate {value!r} is outside 16k..200M")
    return bits


def plan_renditions(spec: LadderSpec, media: MediaInfo) -> list[Rendition]:
    """The renditions to encode: never upscale, keep the display aspect, even dimensions.

    A source smaller than every rung still gets one rendition at its own size, with the
    bitrate of the smallest rung scaled by pixel count.
    """
    renditions: list[Rendition] = []
    if media.video is not None:
        v = media.video
        source_height = v.height
        rungs = [r for r in spec.rungs if r.height <= source_height]
        if not rungs:
            smallest = spec.rungs[-1]
            height = _even_floor(source_height)
            scaled = max(100_000, smallest.bitrate * height // smallest.height)
            rungs = [VideoRung(height, scaled, smallest.profile)]
        for rung in rungs:
            height = _even_floor(rung.height)
            width = _even_round(height * v.display_aspect)
            renditions.append(
                Rendition(
                    id=f"video_{height}p",
                    kind="video",
                    codec="h264",
                    bitrate=rung.bitrate,
                    width=width,
                    height=height,
                    frame_rate=v.frame_rate,
                    profile=rung.profile,
                    maxrate=int(rung.bitrate * MAXRATE_FACTOR),
                    bufsize=rung.bitrate * BUFSIZE_SECONDS,
                )
            )
    if media.audio is not None:
        a = media.audio
        channels = min(spec.audio_channels, a.channels or spec.audio_channels)
        renditions.append(
            Rendition(
                id=f"audio_aac_{spec.audio_bitrate // 1000}k",
                kind="audio",
                codec="aac",
                bitrate=spec.audio_bitrate,
                channels=channels,
                sample_rate=spec.audio_sample_rate,
                language=a.language,
            )
        )
    return renditions


def _even_floor(value: int) -> int:
    return max(2, value - value % 2)


def _even_round(value: Fraction) -> int:
    return max(2, round(value / 2) * 2)


def _mapping(value: Any, path: Path, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"{path}: {field} must be a mapping")
    return value


def _int_in(value: Any, low: int, high: int, path: Path, field: str) -> int:
    if not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{path}: {field} must be an integer from {low} to {high}")
    return value
