"""The ABR ladder: which renditions to encode from a source, from a preset or a YAML file."""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packager.encoding.rate_control import parse_bitrate
from packager.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from packager.encoding.media import MediaInfo
    from packager.encoding.per_title_spec import PerTitleSpec
    from packager.title.tracks import TitleTrack
    from packager.yamlfile import LineMapping, Reader


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
    #: A per-title ladder (`--ladder per-title`, a `per_title:` section): the rungs are
    #: placed on the title's measured rate-quality curves (encoding/per_title.py), not `rungs`.
    per_title: PerTitleSpec | None = None


@dataclass(frozen=True)
class Rendition:
    """One encoded output track; its id is its directory name in the release."""

    id: str
    kind: str  # "video", "audio" or "text"
    codec: str  # "h264", "aac" or "wvtt" (or the source codec in --copy mode)
    bitrate: int
    width: int = 0
    height: int = 0
    frame_rate: Fraction = Fraction(0)
    profile: str = ""
    maxrate: int = 0
    bufsize: int = 0
    #: Capped quality (per-title): the encoder's CRF, under the maxrate/bufsize cap; 0: the
    #: average `bitrate` is the target (capped VBR).
    crf: float = 0.0
    channels: int = 0
    sample_rate: int = 0
    language: str = "und"
    #: Audio and text: the title's role (packager/title/model.py), DEFAULT selection and the
    #: menu name; the file (None: the source) and stream index the track is read from.
    role: str = ""
    default: bool = False
    name: str = ""
    source: Path | None = None
    stream: int = -1

    @property
    def forced(self) -> bool:
        return self.role == "forced-subtitle"


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


#: `--ladder per-title`: the default per-title ladder (per_title.PerTitleSpec's defaults).
PER_TITLE = "per-title"


def load_ladder(choice: str) -> LadderSpec:
    """A preset name, `per-title`, or a path to a YAML ladder file."""
    if choice in PRESETS:
        return PRESETS[choice]
    if choice == PER_TITLE:
        from packager.encoding.per_title_spec import PerTitleSpec  # noqa: PLC0415
        return replace(PRESETS["default"], name=PER_TITLE, rungs=(), per_title=PerTitleSpec())
    path = Path(choice)
    if path.suffix.lower() not in (".yaml", ".yml") and not path.exists():
        names = ", ".join([*PRESETS, PER_TITLE])
        raise InputError(f"unknown ladder {choice!r}: use a preset ({names}) or a YAML file")
    return parse_ladder_file(path)


def parse_ladder_file(path: Path) -> LadderSpec:
    """A YAML ladder file; every mistake is an InputError naming file:line: field."""
    # Only ladder files need YAML: the CLI (which imports PRESETS) starts without it.
    from packager.yamlfile import Reader, load_yaml  # noqa: PLC0415
    doc = load_yaml(path, "ladder file")
    r = Reader(path)
    r.unknown(doc, "", {"name", "video", "audio", "per_title"})
    from packager.encoding.per_title_spec import parse_per_title  # noqa: PLC0415
    per_title = (parse_per_title(r, r.mapping(doc, "per_title", "per_title"))
                 if "per_title" in doc else None)
    video = r.mapping(doc, "video", "video", required=per_title is None)
    audio = r.mapping(doc, "audio", "audio", required=False)
    # A per-title ladder places its own rungs: only the encoder preset is the user's.
    r.unknown(video, "video", {"preset"} if per_title else {"preset", "rungs"})
    r.unknown(audio, "audio", {"bitrate", "channels", "sample_rate"})
    preset = r.choice(video, "preset", "video", X264_PRESETS, "veryfast")
    rungs = []
    for i, rung in enumerate([] if per_title else r.items(video, "rungs", "video.rungs")):
        field = f"video.rungs[{i}]"
        height = int(r.number(rung, "height", field, None, 64, 4320, integer=True))
        profile = r.choice(rung, "profile", field, H264_PROFILES,
                           "high" if height >= 720 else "main")
        rungs.append(VideoRung(height, _bitrate(r, rung, field, None), profile))
    heights = [r.height for r in rungs]
    if len(set(heights)) != len(heights):
        raise r.fail(video, "rungs", "video.rungs", "two rungs of the same height")
    return LadderSpec(
        name=str(doc.get("name", path.stem)),
        x264_preset=preset,
        rungs=tuple(sorted(rungs, key=lambda r: -r.height)),
        audio_bitrate=_bitrate(r, audio, "audio", "128k"),
        audio_channels=int(r.number(audio, "channels", "audio", 2, 1, 8, integer=True)),
        audio_sample_rate=int(
            r.number(audio, "sample_rate", "audio", 48000, 8000, 96000, integer=True)),
        per_title=per_title,
    )


def _bitrate(r: Reader, m: LineMapping, name: str, default: str | None) -> int:
    try:
        return parse_bitrate(m.get("bitrate", default))
    except ValueError as exc:
        raise r.fail(m, "bitrate", f"{name}.bitrate", str(exc)) from None


def plan_renditions(
    spec: LadderSpec, media: MediaInfo, audio: Sequence[TitleTrack] | None = None
) -> list[Rendition]:
    """The renditions to encode: never upscale, keep the display aspect, even dimensions;
    one audio rendition per audio track of the title (default: the source's own streams).

    A source smaller than every rung still gets one rendition at its own size, with the
    bitrate of the smallest rung scaled by pixel count.
    """
    renditions: list[Rendition] = []
    if media.video is not None and spec.per_title is None:  # per-title rungs: per_title.py
        v = media.video
        source_height = v.height
        rungs = [r for r in spec.rungs if r.height <= source_height]
        if not rungs:
            smallest = spec.rungs[-1]
            height = even_floor(source_height)
            scaled = max(100_000, smallest.bitrate * height // smallest.height)
            rungs = [VideoRung(height, scaled, smallest.profile)]
        for rung in rungs:
            height = even_floor(rung.height)
            width = even_round(height * v.display_aspect)
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
    for track in audio if audio is not None else audio_tracks(media):
        stream = track.audio
        assert stream is not None
        channels = min(spec.audio_channels, stream.channels or spec.audio_channels)
        renditions.append(
            track_rendition(
                track,
                id=f"{track.id}_aac_{spec.audio_bitrate // 1000}k",
                codec="aac",
                bitrate=spec.audio_bitrate,
                channels=channels,
                sample_rate=spec.audio_sample_rate,
            )
        )
    return renditions


def audio_tracks(media: MediaInfo) -> list[TitleTrack]:
    """The audio tracks of a source packaged with no title options."""
    from packager.title.model import Title  # noqa: PLC0415
    from packager.title.tracks import plan_tracks  # noqa: PLC0415
    return [t for t in plan_tracks(Title(), media) if t.kind == "audio"]


def track_rendition(track: TitleTrack, **encoding: Any) -> Rendition:
    """An audio or text track's rendition: its encoding, and the title's language, role,
    default and name, and the file and stream it is read from."""
    stream = track.audio.index if track.audio is not None else (
        track.subtitle.index if track.subtitle is not None else -1)
    return Rendition(
        kind=track.kind, language=track.language, role=track.role, default=track.default,
        name=track.name, source=track.file if track.side else None, stream=stream, **encoding,
    )


def even_floor(value: int) -> int:
    return max(2, value - value % 2)


def even_round(value: Fraction) -> int:
    return max(2, round(value / 2) * 2)
