"""The one table of video codecs: encoder, ffmpeg build, preset, sample entry, and the ffmpeg
options of one rung under a rate control given as data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from packager.encoding.segments import force_key_frames
from packager.errors import InputError, ToolError
from packager.tools import Tool, ffmpeg_decoders, ffmpeg_encoders, find_tool


@dataclass(frozen=True)
class VideoCodec:
    """What cdnpack knows of one video codec, from `--codec NAME` to the CODECS string."""

    name: str  # Rendition.codec and --codec: h264, hevc, av1
    label: str  # for people: H.264, HEVC, AV1
    encoder: str  # the ffmpeg encoder
    #: The ffmpeg build that encodes it (packager.tools.find_tool name). Both builds have
    #: libx264, libx265 and libsvtav1; measured (BENCHMARKS.md "Codecs"): equal speed within
    #: noise, x265 bit-identical, SVT-AV1 4.1 vs 4.2 under 1 VMAF point apart at one cap. The
    #: streamer build is a release (8.1) and the one Shaka Streamer ships; ffmpeg-full is a
    #: 9.0 development snapshot, so it decodes what only it can (AV1: `decoder`) and measures.
    tool: str
    #: The ffmpeg decoder reading this codec back needs, and the build that has it: the
    #: streamer ffmpeg's native AV1 decoder only drives hardware (no dav1d), so AV1 sources,
    #: AV1 thumbnails and AV1 trick play decode in ffmpeg-full.
    decoder: str
    decoder_tool: str
    sample_entry: str  # the CMAF sample entry: avc1, hvc1, av01
    config_box: str  # its decoder configuration record: avcC, hvcC, av1C
    preset: str  # the default speed/quality preset (why: BENCHMARKS.md "Codecs")
    presets: tuple[str, ...]  # the presets a ladder file may name
    profiles: tuple[str, ...]  # the profiles a rung may ask for (8-bit 4:2:0 only)
    #: A fixed ladder's rung bitrate relative to H.264's at the same height: what it takes
    #: this codec, at its default preset, to match H.264's quality (measured, BENCHMARKS.md).
    rate_factor: Fraction
    #: Its quality scale for capped-quality encodes (CRF): lower is better, (best, worst);
    #: SVT-AV1 takes whole numbers only.
    crf_range: tuple[int, int]
    crf_integer: bool
    #: Whether a capped VBR encode honours maxrate. SVT-AV1 refuses a maximum bitrate outside
    #: CRF mode ("Max Bitrate only supported with CRF mode"), so its VBR is capped only by its
    #: VBV buffer; measured peaks reach 2.6x the target on 2 s segments, which is why a fixed
    #: AV1 ladder encodes capped quality (`fixed_rate`).
    caps_vbr: bool
    #: The rate control of a fixed ladder's rung: "vbr" (CappedVBR at the rung's bitrate, peak
    #: 1.5x) or "quality" (CappedQuality at `fixed_crf` capped at the rung's bitrate, like
    #: MediaConvert's QVBR: easy titles come in under it).
    fixed_rate: str
    fixed_crf: int


@dataclass(frozen=True)
class CappedVBR:
    """An average bitrate, with the VBV peak rate and buffer (bits per second, bits)."""

    bitrate: int
    maxrate: int
    bufsize: int


@dataclass(frozen=True)
class CappedQuality:
    """A constant quality (CRF, on the codec's own scale), capped by a VBV peak rate and
    buffer: rates fall where the picture is easy and never pass the cap where it is hard."""

    crf: float
    maxrate: int
    bufsize: int


RateControl = CappedVBR | CappedQuality


@dataclass(frozen=True)
class KeyFramePlan:
    """Where key frames go: exactly at the shared segment plan's starts (segments.py), and
    nowhere else (closed GOP, no scene-cut key frames; `interval` frames at most between two,
    a cap above the longest planned segment so it never adds one of its own)."""

    starts: tuple[float, ...]
    interval: int


X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
)
#: SVT-AV1's presets are numbers, 0 slowest (best) to 13 fastest.
SVTAV1_PRESETS = tuple(str(p) for p in range(14))

CODECS: dict[str, VideoCodec] = {
    "h264": VideoCodec(
        name="h264", label="H.264", encoder="libx264", tool="ffmpeg",
        decoder="h264", decoder_tool="ffmpeg", sample_entry="avc1", config_box="avcC",
        preset="veryfast", presets=X264_PRESETS, profiles=("baseline", "main", "high"),
        rate_factor=Fraction(1), crf_range=(0, 51), crf_integer=False, caps_vbr=True,
        fixed_rate="vbr", fixed_crf=23,
    ),
    "hevc": VideoCodec(
        name="hevc", label="HEVC", encoder="libx265", tool="ffmpeg",
        decoder="hevc", decoder_tool="ffmpeg", sample_entry="hvc1", config_box="hvcC",
        preset="fast", presets=X264_PRESETS, profiles=("main",),
        rate_factor=Fraction(7, 10), crf_range=(0, 51), crf_integer=False,
        caps_vbr=True, fixed_rate="vbr",
        fixed_crf=28,
    ),
    "av1": VideoCodec(
        name="av1", label="AV1", encoder="libsvtav1", tool="ffmpeg",
        decoder="libdav1d", decoder_tool="ffmpeg-full", sample_entry="av01",
        config_box="av1C", preset="8", presets=SVTAV1_PRESETS, profiles=("main",),
        rate_factor=Fraction(6, 10), crf_range=(1, 63), crf_integer=True, caps_vbr=False,
        fixed_rate="quality", fixed_crf=35,
    ),
}
DEFAULT_CODECS = ("h264",)


def video_codec(name: str) -> VideoCodec:
    """The table's row for `--codec NAME`; an unknown name is bad input (exit 2)."""
    try:
        return CODECS[name]
    except KeyError:
        raise InputError(
            f"unknown codec {name!r}: use {', '.join(CODECS)}"
        ) from None


def efficiency(name: str) -> Fraction:
    """How many bits a codec needs for H.264's quality (its rate_factor): the order in which
    manifests offer codecs, most efficient first. A codec outside the table counts as H.264."""
    row = CODECS.get(name)
    return row.rate_factor if row is not None else Fraction(1)


def codec_names(names: Sequence[str]) -> tuple[str, ...]:
    """`--codec` values checked: each a row of the table, each once (InputError, exit 2)."""
    for name in names:
        video_codec(name)
    if len(set(names)) != len(names):
        raise InputError(f"--codec: a codec is given twice ({', '.join(names)})")
    return tuple(names)


def encoder_options(
    codec: VideoCodec, rate: RateControl, key_frames: KeyFramePlan, *,
    preset: str | None = None, profile: str = "",
) -> dict[str, Any]:
    """The ffmpeg output options of one rung (ffmpeg-python keyword form: option name without
    its dash), for `codec` under `rate`, with key frames at exactly the planned starts."""
    chosen = preset if preset is not None else codec.preset
    if chosen not in codec.presets:
        raise InputError(f"{codec.label} has no preset {chosen!r}: use one of "
                         f"{', '.join(codec.presets)}")
    low, high = codec.crf_range
    if isinstance(rate, CappedQuality) and (
        not low <= rate.crf <= high or (codec.crf_integer and rate.crf != int(rate.crf))
    ):
        whole = " (whole numbers)" if codec.crf_integer else ""
        raise InputError(f"{codec.label} CRF {rate.crf:g} is outside {low}..{high}{whole}")
    options: dict[str, Any] = {"c:v": codec.encoder, "preset": chosen}
    if profile:
        options["profile:v"] = profile
    options.update(_rate_options(codec, rate))
    # force_key_frames marks the planned frames as key frames for the encoder; -g caps the
    # distance between two; +cgop closes every GOP (x264, x265 open-gop=0, SVT-AV1
    # intra_refresh_type 2: a key frame, not a forward key frame).
    options.update({
        "g": key_frames.interval,
        "flags": "+cgop",
        "force_key_frames": force_key_frames(list(key_frames.starts)),
    })
    if codec.encoder == "libx264":
        options["sc_threshold"] = 0
    elif codec.encoder == "libx265":
        # forced-idr: a forced key frame is an IDR (a sync sample), not a mere I slice.
        options["forced-idr"] = 1
        options["x265-params"] = "scenecut=0:open-gop=0:log-level=error"
        options["tag:v"] = codec.sample_entry  # hvc1: parameter sets in hvcC only
    elif codec.encoder == "libsvtav1":
        # scd=0: no key frame of its own at a scene change; the planned ones are forced.
        options["svtav1-params"] = "scd=0"
    return options


def _rate_options(codec: VideoCodec, rate: RateControl) -> dict[str, Any]:
    if isinstance(rate, CappedQuality):
        return {"crf": _number(rate.crf), "maxrate": rate.maxrate, "bufsize": rate.bufsize}
    if codec.caps_vbr:
        return {"b:v": rate.bitrate, "maxrate": rate.maxrate, "bufsize": rate.bufsize}
    # SVT-AV1: VBR at the average with its VBV buffer; it refuses a maxrate here.
    return {"b:v": rate.bitrate, "bufsize": rate.bufsize}


def _number(value: float) -> str:
    """A CRF as ffmpeg reads it: SVT-AV1's is an integer option, x264/x265's a float."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def fixed_rate(codec: VideoCodec, bitrate: int, maxrate: int, bufsize: int) -> RateControl:
    """A fixed ladder rung's rate control for `codec` (see VideoCodec.fixed_rate)."""
    if codec.fixed_rate == "quality":
        return CappedQuality(codec.fixed_crf, maxrate, bufsize)
    return CappedVBR(bitrate, maxrate, bufsize)


def source_decoder_tool(source_codec: str) -> str:
    """The build that decodes a source of this ffprobe codec name (the table's codecs; any
    other codec the streamer ffmpeg decodes natively)."""
    row = CODECS.get(source_codec)
    return row.decoder_tool if row is not None else "ffmpeg"


def transcode_tool(codecs: Sequence[VideoCodec], source_codec: str | None) -> str:
    """The one build the ladder's single ffmpeg process runs in: the streamer ffmpeg unless
    the job needs what only ffmpeg-full has (a dav1d decode of an AV1 source)."""
    needs = {c.tool for c in codecs}
    if source_codec is not None:
        needs.add(source_decoder_tool(source_codec))
    return "ffmpeg-full" if "ffmpeg-full" in needs else "ffmpeg"


def check_build(
    tool: str, codecs: Sequence[VideoCodec], source_codec: str | None = None
) -> Tool:
    """The build, found, having every encoder of `codecs` (and the source's decoder when it
    is one of the table's); ToolError (exit 3) naming the tool and what it lacks."""
    found = find_tool(tool)
    encoders = ffmpeg_encoders(found)
    missing = list(dict.fromkeys(f"encoder {c.encoder} ({c.label})" for c in codecs
                                 if c.encoder not in encoders))
    row = CODECS.get(source_codec or "")
    if row is not None and row.decoder_tool == tool and row.decoder not in ffmpeg_decoders(found):
        missing.append(f"decoder {row.decoder} (the {row.label} source)")
    if missing:
        raise ToolError(f"{tool} ({found.path}) lacks {', '.join(missing)}")
    return found
