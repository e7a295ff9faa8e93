"""The ABR ladder: which renditions to encode from a source, from a preset or a YAML file."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packager.encoding.codecs import (
    CODECS,
    DEFAULT_CODECS,
    X264_PRESETS,
    CappedQuality,
    CappedVBR,
    RateControl,
    VideoCodec,
    video_codec,
)
from packager.encoding.per_title_spec import PerTitleSpec, check_targets
from packager.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from packager.encoding.media import MediaInfo
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
    #: Every rung is encoded in each of these (packager/encoding/codecs.py), h264 first.
    codecs: tuple[str, ...] = DEFAULT_CODECS
    #: Presets of the other codecs, as (codec, preset) pairs; the table's default otherwise.
    presets: tuple[tuple[str, str], ...] = ()

    #: A per-title ladder (`--ladder per-title`, a `per_title:` section): the rungs are
    #: placed on the title's measured rate-quality curves (encoding/per_title.py), not `rungs`.
    per_title: PerTitleSpec | None = None

    def preset(self, codec: VideoCodec) -> str:
        if codec.name == "h264":
            return self.x264_preset
        return dict(self.presets).get(codec.name, codec.preset)


@dataclass(frozen=True)
class Rendition:
    """One encoded output track; its id is its directory name in the release."""

    id: str
    kind: str  # "video", "audio" or "text"
    #: Video: h264, hevc or av1 (the row of packager/encoding/codecs.py; --copy: the source's);
    #: audio aac; text wvtt.
    codec: str
    bitrate: int
    width: int = 0
    height: int = 0
    frame_rate: Fraction = Fraction(0)
    profile: str = ""
    maxrate: int = 0
    bufsize: int = 0
    #: Video: the encoder preset, and a CRF for a capped-quality encode (0: capped VBR at
    #: `bitrate`); both with `maxrate` and `bufsize` as the VBV cap.
    preset: str = ""
    crf: float = 0.0
    #: Video: a measured quality of the delivered rendition (e.g. VMAF), written as HLS SCORE
    #: (RFC 8216bis §4.4.6.2); None when nothing was measured.
    score: float | None = None
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

    @property
    def rate_control(self) -> RateControl:
        """A video rendition's rate control, as packager/encoding/codecs.py takes it."""
        if self.crf:
            return CappedQuality(self.crf, self.maxrate, self.bufsize)
        return CappedVBR(self.bitrate, self.maxrate, self.bufsize)


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

H264_PROFILES = ("baseline", "main", "high")
#: Peak cap over the average: 1.5x keeps segment peaks honest while letting hard scenes breathe.
MAXRATE_FACTOR = Fraction(3, 2)
#: VBV buffer of two seconds at the average rate: the decoder model players actually have.
BUFSIZE_SECONDS = 2


#: `--ladder per-title`: the default per-title ladder (per_title_spec.PerTitleSpec's defaults).
PER_TITLE = "per-title"
#: x264's preset in a per-title ladder, unless its file names one: a per-title ladder is asked
#: for bytes, the fixed ones stay the speed anchor. Measured on the grainy bench scene (the
#: per-title rungs, VBR at the same bitrates; BENCHMARKS.md "Quality per byte"): `faster` needs
#: 15 % fewer bits than `veryfast` for the same VMAF at 1.45x its CPU; `fast` only 8 % at 1.77x
#: (its psy-rd spends bits on grain that VMAF does not reward).
PER_TITLE_X264_PRESET = "faster"


def load_ladder(choice: str) -> LadderSpec:
    """A preset name, `per-title`, or a path to a YAML ladder file."""
    if choice in PRESETS:
        return PRESETS[choice]
    if choice == PER_TITLE:
        return replace(PRESETS["default"], name=PER_TITLE, rungs=(), per_title=PerTitleSpec(),
                       x264_preset=PER_TITLE_X264_PRESET)
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
    r.unknown(doc, "", {"name", "codecs", "video", "audio", "per_title"})
    per_title = (_per_title(r, r.mapping(doc, "per_title", "per_title"))
                 if "per_title" in doc else None)
    video = r.mapping(doc, "video", "video", required=per_title is None)
    audio = r.mapping(doc, "audio", "audio", required=False)
    # A per-title ladder places its own rungs: only the encoder presets are the user's.
    r.unknown(video, "video", {"preset", "presets"} if per_title else
              {"preset", "presets", "rungs"})
    r.unknown(audio, "audio", {"bitrate", "channels", "sample_rate"})
    preset = r.choice(video, "preset", "video", X264_PRESETS,
                      PER_TITLE_X264_PRESET if per_title else "veryfast")
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
        codecs=_codecs(r, doc),
        presets=_presets(r, video),
        per_title=per_title,
    )


def _per_title(r: Reader, m: LineMapping) -> PerTitleSpec:
    """The `per_title:` section: codecs, VMAF targets, candidate heights, bitrate limits,
    rung count and the low-bandwidth floor (0 for none)."""
    name = "per_title"
    r.unknown(m, name, {"codecs", "targets", "resolutions", "min_bitrate", "max_bitrate",
                        "max_rungs", "floor_bitrate"})
    defaults = PerTitleSpec()
    codecs = _scalars(r, m, "codecs", name, str, defaults.codecs)
    for codec in codecs:
        if codec not in CODECS:
            raise r.fail(m, "codecs", f"{name}.codecs",
                         f"unknown codec {codec!r} (use {', '.join(CODECS)})")
    targets = tuple(float(t) for t in _scalars(r, m, "targets", name, float, defaults.targets))
    if (problem := check_targets(targets)) is not None:
        raise r.fail(m, "targets", f"{name}.targets", problem)
    heights = _scalars(r, m, "resolutions", name, int, ())
    if any(not 64 <= h <= 4320 for h in heights):
        raise r.fail(m, "resolutions", f"{name}.resolutions",
                     f"heights must be within 64-4320, got {list(heights)}")
    limits = {}
    for key in ("min_bitrate", "max_bitrate", "floor_bitrate"):
        value = m.get(key, getattr(defaults, key))
        try:
            limits[key] = 0 if key == "floor_bitrate" and value in (0, "0") else \
                parse_bitrate(value)
        except ValueError as exc:
            raise r.fail(m, key, f"{name}.{key}", str(exc)) from None
    if limits["min_bitrate"] > limits["max_bitrate"]:
        raise r.fail(m, "min_bitrate", f"{name}.min_bitrate", "is above max_bitrate")
    if limits["floor_bitrate"] and not (
            limits["min_bitrate"] <= limits["floor_bitrate"] <= limits["max_bitrate"]):
        raise r.fail(m, "floor_bitrate", f"{name}.floor_bitrate",
                     "must be within min_bitrate..max_bitrate (or 0: no floor rung)")
    return PerTitleSpec(
        codecs=tuple(dict.fromkeys(codecs)), targets=targets, resolutions=tuple(heights),
        max_rungs=int(r.number(m, "max_rungs", name, defaults.max_rungs, 1, 20, integer=True)),
        **limits)


def _scalars(r: Reader, m: LineMapping, key: str, name: str, kind: type,
             default: tuple[Any, ...]) -> tuple[Any, ...]:
    """A list of strings or numbers (a bare scalar is a list of one)."""
    if key not in m:
        return default
    value = m[key]
    items = value if isinstance(value, list) else [value]
    wanted = (int | float) if kind is float else kind
    if not items or any(isinstance(v, bool) or not isinstance(v, wanted) for v in items):
        what = {str: "names", int: "integers", float: "numbers"}[kind]
        raise r.fail(m, key, f"{name}.{key}", f"must be a non-empty list of {what}, got {value!r}")
    return tuple(items)


def _codecs(r: Reader, doc: LineMapping) -> tuple[str, ...]:
    """`codecs: [h264, av1]`: each a row of the codec table, once."""
    value = doc.get("codecs", list(DEFAULT_CODECS))
    if not isinstance(value, list) or not value:
        raise r.fail(doc, "codecs", "codecs", "must be a non-empty list like [h264, av1]")
    for name in value:
        if name not in CODECS:
            raise r.fail(doc, "codecs", "codecs",
                         f"unknown codec {name!r} (use {', '.join(CODECS)})")
    if len(set(value)) != len(value):
        raise r.fail(doc, "codecs", "codecs", "a codec is listed twice")
    return tuple(str(name) for name in value)


def _presets(r: Reader, video: LineMapping) -> tuple[tuple[str, str], ...]:
    """`video.presets: {hevc: fast, av1: 8}`: each codec's preset, from its own list."""
    presets = r.mapping(video, "presets", "video.presets", required=False)
    r.unknown(presets, "video.presets", set(CODECS) - {"h264"})
    out = []
    for name, value in presets.items():
        codec = CODECS[name]
        if isinstance(value, bool) or str(value) not in codec.presets:
            raise r.fail(presets, name, f"video.presets.{name}",
                         f"must be one of {', '.join(codec.presets)}, got {value!r}")
        out.append((name, str(value)))
    return tuple(out)


def _bitrate(r: Reader, m: LineMapping, name: str, default: str | None) -> int:
    try:
        return parse_bitrate(m.get("bitrate", default))
    except ValueError as exc:
        raise r.fail(m, "bitrate", f"{name}.bitrate", str(exc)) from None


def parse_bitrate(value: Any) -> int:
    """'3000k', '3M', or bits per second as an integer; ValueError says what is wrong."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", str(value))
    if not match:
        raise ValueError(f"{value!r} is not a bitrate like 3000k or 3M")
    scale = {"": 1, "k": 1000, "m": 1_000_000}[match.group(2).lower()]
    bits = int(float(match.group(1)) * scale)
    if not 16_000 <= bits <= 200_000_000:
        raise ValueError(f"{value!r} is outside 16k..200M")
    return bits


def plan_renditions(
    spec: LadderSpec, media: MediaInfo, audio: Sequence[TitleTrack] | None = None,
    codecs: Sequence[str] | None = None,
) -> list[Rendition]:
    """The renditions to encode: every rung in every codec (`codecs`, else the ladder's),
    never upscaled, at the display aspect, even dimensions; one audio rendition per audio
    track of the title (default: the source's own streams).

    A source smaller than every rung still gets one rendition at its own size, with the
    bitrate of the smallest rung scaled by pixel count. A rung's bitrate is H.264's; another
    codec's is scaled by its rate_factor (the bitrate it needs for H.264's quality).
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
        for codec in (video_codec(name) for name in codecs or spec.codecs):
            for rung in rungs:
                height = even_floor(rung.height)
                width = even_round(height * v.display_aspect)
                bitrate = int(rung.bitrate * codec.rate_factor)
                # Capped quality (AV1): the rung's bitrate is the cap itself, so the average
                # stays under it however easy or hard the title (a peak factor over a CRF
                # encode let it spend 1.5x the rung on a plain 240p clip, more than H.264's).
                quality = codec.fixed_rate == "quality"
                renditions.append(
                    Rendition(
                        id=f"video_{height}p" if codec.name == "h264"
                        else f"video_{codec.name}_{height}p",
                        kind="video",
                        codec=codec.name,
                        bitrate=bitrate,
                        width=width,
                        height=height,
                        frame_rate=v.frame_rate,
                        profile=rung.profile if codec.name == "h264" else codec.profiles[0],
                        maxrate=bitrate if quality else int(bitrate * MAXRATE_FACTOR),
                        bufsize=bitrate * BUFSIZE_SECONDS,
                        preset=spec.preset(codec),
                        crf=codec.fixed_crf if quality else 0.0,
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
