"""Encoding the whole ladder in ONE ffmpeg process: decode once, split, scale, encode each rung."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.encoding.codecs import (
    KeyFramePlan,
    encoder_options,
    source_decoder_tool,
    transcode_tool,
    video_codec,
)
from packager.encoding.ladder import Rendition
from packager.encoding.media import MediaInfo
from packager.encoding.segments import segment_starts
from packager.encoding.thumbnails import (
    SEEK_BATCH,
    ThumbnailPlan,
    scaled,
    seek_input,
    sheets_output,
    thumbnail_output,
    thumbnail_times,
)
from packager.errors import InputError, TranscodeError
from packager.lazy import lazy_module
from packager.tools import find_tool, run_tool

#: ffmpeg-python builds the ffmpeg graphs; loaded when the first graph is (not for --copy).
ffmpeg = lazy_module("ffmpeg")

#: Called with seconds of output written so far (from ffmpeg's -progress out_time_us).
ProgressCallback = Callable[[float], None]

#: Video track timescale: 90 kHz is exact for 23.976/24/25/29.97/30/50/59.94/60 fps.
VIDEO_TIMESCALE = 90_000

# Fragmented MP4 written by ffmpeg, cut into segments by packager/mp4/isobmff.py afterwards.
#  empty_moov: the init segment carries no samples (CMAF header, ISO/IEC 23000-19 §7.3.1).
#  default_base_moof: data offsets relative to moof, so a fragment stands alone in a segment.
#  negative_cts_offsets: trun v1 with signed composition offsets, so with B-frames the first
#    presented frame is at time 0 without an edit list (CMAF §7.5.13 prefers no edit list).
_VIDEO_MOVFLAGS = "+frag_keyframe+empty_moov+default_base_moof+negative_cts_offsets"
#  Audio has no keyframes: fragment at every frame and let isobmff regroup the frames at the
#  video's segment boundaries, so audio and video segments line up to one AAC frame.
_AUDIO_MOVFLAGS = "+frag_every_frame+empty_moov+default_base_moof"


@dataclass(frozen=True)
class EncodedTrack:
    """A clear fragmented-MP4 track written by ffmpeg, ready to be cut into segments."""

    rendition: Rendition
    path: Path


def build_ladder_command(
    media: MediaInfo,
    renditions: list[Rendition],
    segment_duration: float,
    workdir: Path,
    starts: list[float] | None = None,
    thumbnails: ThumbnailPlan | None = None,
) -> tuple[list[str], list[EncodedTrack]]:
    """The ffmpeg argument list for the whole ladder (every rung in every codec, each through
    the codec table, packager/encoding/codecs.py), and the track each output will hold. Key
    frames are forced at the segment plan's starts (packager/encoding/segments.py), planned
    from the source's duration when not given. `thumbnails`: one more branch of the same decode
    draws the tile sheets (encoding/thumbnails.py), so they cost no second decode. It runs in
    the build `ladder_tool` names."""
    inputs = Inputs(media)
    source = inputs.source
    outputs: list[Any] = []
    tracks: list[EncodedTrack] = []
    videos = [r for r in renditions if r.kind == "video"]
    if videos and media.video is not None:
        rate = videos[0].frame_rate
        # fps makes variable-rate sources constant-rate (every rendition shares one timeline);
        # format forces 8-bit 4:2:0, the only thing H.264 High/Main decoders everywhere accept.
        decoded = (
            source[str(media.video.index)]
            .filter("fps", fps=f"{rate.numerator}/{rate.denominator}")
            .filter("format", "yuv420p")
        )
        if thumbnails is not None:
            branches = decoded.filter_multi_output("split", 2)
            decoded = branches.stream(0)
            outputs.append(thumbnail_output(branches.stream(1), thumbnails))
        # A keyframe exactly at each planned segment start, plus a GOP cap twice the segment
        # length so the encoder never inserts one of its own in between (scenecut off, closed
        # GOP; a folded last segment is at most 1.5 segments long).
        gop = math.ceil(rate * segment_duration)
        plan = starts if starts is not None else segment_starts(
            media.duration, segment_duration, rate)
        key_frames = KeyFramePlan(tuple(plan), 2 * gop)
        for rendition, scaled in zip(videos, _scaled_branches(decoded, videos), strict=True):
            path = workdir / f"{rendition.id}.mp4"
            encoding = encoder_options(
                video_codec(rendition.codec), rendition.rate_control, key_frames,
                preset=rendition.preset or None, profile=rendition.profile,
            )
            outputs.append(
                ffmpeg.output(
                    scaled,
                    str(path),
                    **encoding,
                    movflags=_VIDEO_MOVFLAGS,
                    video_track_timescale=VIDEO_TIMESCALE,
                    map_metadata=-1,
                    map_chapters=-1,
                    f="mp4",
                )
            )
            tracks.append(EncodedTrack(rendition, path))
    for rendition in (r for r in renditions if r.kind == "audio"):
        path = workdir / f"{rendition.id}.mp4"
        options: dict[str, Any] = {
            "c:a": "aac",
            "b:a": rendition.bitrate,
            "ac": rendition.channels,
            "ar": rendition.sample_rate,
            "movflags": _AUDIO_MOVFLAGS,
            "map_metadata": -1,
            "map_chapters": -1,
            "f": "mp4",
        }
        if rendition.source is not None:
            # A dub runs a little longer or shorter than the picture (checked: within one
            # segment); it is cut at the video's end so that its last segment is the video's.
            options["t"] = f"{media.duration:.6f}"
        outputs.append(ffmpeg.output(inputs.stream(rendition), str(path), **options))
        tracks.append(EncodedTrack(rendition, path))
    text_outputs(inputs, renditions, workdir, outputs, tracks)
    return _finish(ffmpeg.merge_outputs(*outputs), ladder_tool(media, renditions)), tracks


def ladder_tool(media: MediaInfo, renditions: list[Rendition]) -> str:
    """The ffmpeg build a transcode runs in (codecs.transcode_tool): what the ladder's
    encoders and the source's decoder need."""
    codecs = [video_codec(r.codec) for r in renditions if r.kind == "video"]
    return transcode_tool(codecs, media.video.codec if media.video is not None else None)


def _scaled_branches(decoded: Any, videos: list[Rendition]) -> list[Any]:
    """One scaled stream per rendition, each scaled from the next larger rung (cascade).

    Measured (bench/ladder.py, BENCHMARKS.md): cascading is faster than scaling every rung
    from the source, and costs nothing visible: a 360p picture made 1080→720→480→360 differs
    from one scaled 1080→360 directly by SSIM 0.9997 (Y PSNR 56 dB), far below what x264 loses.
    Renditions arrive tallest first, so each scale is a downscale.
    """
    branches = []
    current = decoded
    for i, rendition in enumerate(videos):
        scaled = current.filter("scale", rendition.width, rendition.height).filter("setsar", "1")
        if i == len(videos) - 1:
            branches.append(scaled)
        else:
            split = scaled.filter_multi_output("split", 2)
            branches.append(split.stream(0))
            current = split.stream(1)
    return branches


def build_copy_command(
    media: MediaInfo, renditions: list[Rendition], workdir: Path
) -> tuple[list[str], list[EncodedTrack]]:
    """Re-package already-encoded streams: one fragmented MP4 per stream, no decoding."""
    inputs = Inputs(media)
    outputs: list[Any] = []
    tracks: list[EncodedTrack] = []
    for rendition in renditions:
        path = workdir / f"{rendition.id}.mp4"
        if rendition.kind == "video":
            assert media.video is not None
            stream, movflags = inputs.source[str(media.video.index)], _VIDEO_MOVFLAGS
            # hvc1: parameter sets in the sample entry only, as Apple's HLS spec requires.
            extra = {"tag:v": "hvc1"} if rendition.codec == "hevc" else {}
            extra["video_track_timescale"] = str(VIDEO_TIMESCALE)
        elif rendition.kind == "audio":
            stream, movflags, extra = inputs.stream(rendition), _AUDIO_MOVFLAGS, {}
        else:
            continue
        outputs.append(
            ffmpeg.output(
                stream, str(path), c="copy", movflags=movflags, map_metadata=-1,
                map_chapters=-1, f="mp4", **extra,
            )
        )
        tracks.append(EncodedTrack(rendition, path))
    text_outputs(inputs, renditions, workdir, outputs, tracks)
    return _finish(ffmpeg.merge_outputs(*outputs)), tracks


def build_text_command(
    media: MediaInfo, renditions: list[Rendition], workdir: Path
) -> tuple[list[str], list[EncodedTrack]] | None:
    """The source's text streams as WebVTT, when nothing else runs ffmpeg (a --copy our
    demuxer reads); None when the source has no text stream to convert."""
    if not any(_source_text(r) for r in renditions):
        return None
    outputs: list[Any] = []
    tracks: list[EncodedTrack] = []
    text_outputs(Inputs(media), renditions, workdir, outputs, tracks)
    return (_finish(ffmpeg.merge_outputs(*outputs)), tracks) if outputs else None


class Inputs:
    """ffmpeg's inputs: the source first, then each side file a rendition is read from."""

    def __init__(self, media: MediaInfo) -> None:
        self.source: Any = ffmpeg.input(str(media.path))
        self._side: dict[Path, Any] = {}

    def stream(self, rendition: Rendition) -> Any:
        if rendition.source is None:
            return self.source[str(rendition.stream)]
        if rendition.source not in self._side:
            self._side[rendition.source] = ffmpeg.input(str(rendition.source))
        return self._side[rendition.source][str(rendition.stream)]


def text_outputs(inputs: Inputs, renditions: list[Rendition], workdir: Path,
                 outputs: list[Any], tracks: list[EncodedTrack]) -> None:
    """The source's own text streams (mov_text, subrip, webvtt, ass) converted to WebVTT by
    ffmpeg's webvtt encoder in the same process, for packager/text to read like a side file."""
    for rendition in filter(_source_text, renditions):
        path = workdir / f"{rendition.id}.vtt"
        outputs.append(ffmpeg.output(inputs.stream(rendition), str(path),
                                     **{"c:s": "webvtt", "f": "webvtt"}))
        tracks.append(EncodedTrack(rendition, path))


def _source_text(rendition: Rendition) -> bool:
    """A text stream of the source itself (not a side file)."""
    return rendition.kind == "text" and rendition.source is None and rendition.stream >= 0


def draw_thumbnails(media: MediaInfo, plan: ThumbnailPlan, workdir: Path) -> None:
    """`--copy` has no decode to branch the thumbnails from, and decoding the whole video for
    one picture in every INTERVAL seconds would cost more than the copy itself. Instead each
    thumbnail is a seek: ffmpeg decodes from the key frame before its time to it, so about half
    a GOP per thumbnail (a tenth of the pictures for a 2 s GOP and 10 s thumbnails). Batches of
    SEEK_BATCH seeks (one ffmpeg each, bounded memory) write the scaled pictures raw to NUT
    files; one last ffmpeg tiles them into the sheets. Figures in BENCHMARKS.md."""
    assert media.video is not None  # plan_thumbnails refuses a source without video
    decoder = source_decoder_tool(media.video.codec)  # an AV1 source: dav1d, in ffmpeg-full
    times = thumbnail_times(media, plan.spec)
    batches: list[Path] = []
    for start in range(0, len(times), SEEK_BATCH):
        pictures = [seek_input(media.path, media.video.index, t)
                    for t in times[start : start + SEEK_BATCH]]
        batch = workdir / f"thumbnails_{len(batches):05d}.nut"
        joined = scaled(ffmpeg.concat(*pictures, v=1, a=0), plan)
        run_ffmpeg(_finish(ffmpeg.output(joined, str(batch), **{
            "c:v": "rawvideo", "f": "nut", "fps_mode": "passthrough"}), decoder), 0.0, None)
        batches.append(batch)
    listing = workdir / "thumbnails.txt"
    listing.write_text("".join(f"file '{b.name}'\n" for b in batches))
    run_ffmpeg(_finish(sheets_output(ffmpeg.input(str(listing), f="concat", safe=0), plan)),
               0.0, None)


def _finish(graph: Any, tool: str = "ffmpeg") -> list[str]:
    ffmpeg_tool = find_tool(tool)
    graph = graph.global_args(
        "-hide_banner", "-nostdin", "-nostats",
        # level+error: every diagnostic we keep is tagged, so decode errors can be told apart.
        "-loglevel", "level+error",
        "-progress", "pipe:1",
    ).overwrite_output()
    args: list[str] = graph.compile(cmd=str(ffmpeg_tool.path))
    return args


_ERROR_TAG = re.compile(r"\[(error|fatal)\]")


def run_ffmpeg(args: list[str], duration: float, progress: ProgressCallback | None) -> None:
    """Run the ladder command; corrupt input and ffmpeg failures become one-line errors.

    ffmpeg exits 0 on a truncated or corrupt source after logging decode errors, so those
    errors (and a short decoded duration) are treated as bad input, not as a good release.
    """
    written = 0.0

    def on_line(line: str) -> None:
        nonlocal written
        key, _, value = line.partition("=")
        if key == "out_time_us" and value.strip().lstrip("-").isdigit():
            written = max(written, int(value) / 1e6)
            if progress is not None:
                progress(min(written, duration))

    # SVT-AV1 writes a banner of a dozen info lines per encoder straight to stderr, around
    # ffmpeg's -loglevel; SVT_LOG=1 keeps its errors ("Svt[error]: ...") only, so the tail
    # kept for a failure holds the lines that say why. A SVT_LOG the user set wins.
    env = {"SVT_LOG": "1", **os.environ}
    result = run_tool(args, on_stdout_line=on_line, tail_lines=40, env=env)
    errors = [line for line in result.stderr_tail if _ERROR_TAG.search(line)]
    if result.returncode != 0:
        last = "; ".join(_strip(line) for line in (errors or result.stderr_tail)[-3:])
        raise TranscodeError(f"ffmpeg failed (exit {result.returncode}): {last}")
    if errors:
        raise InputError(f"source is corrupt or truncated: {_strip(errors[0])}")
    if progress is not None:
        progress(duration)


def _strip(line: str) -> str:
    """Drop ffmpeg's '[mov @ 0x55..] [error]' prefixes, keep the message."""
    return re.sub(r"^(\[[^\]]*\]\s*)+", "", line).strip()


def build_ts_segment_command(
    video: Path | None,
    audio: Path | None,
    directory: Path,
    segment_times: list[float],
    segment_list: Path,
) -> list[str]:
    """Remux one rendition (video with the audio muxed in, as legacy HLS players expect) into
    MPEG-TS segments cut at the first keyframe at or after each of `segment_times`.

    No decoding: the segment muxer writes seg_00001.ts ... and a CSV list of (file, start,
    end) from which the playlist's EXTINF durations are measured, never assumed.
    """
    args = [str(find_tool("ffmpeg").path), "-hide_banner", "-nostdin", "-nostats",
            "-loglevel", "level+error"]
    inputs = [p for p in (video, audio) if p is not None]
    for path in inputs:
        args += ["-i", str(path)]
    for index in range(len(inputs)):
        args += ["-map", f"{index}"]
    args += [
        "-c", "copy",
        "-f", "segment",
        "-segment_format", "mpegts",
        "-segment_start_number", "1",
        "-segment_list", str(segment_list),
        "-segment_list_type", "csv",
        # Keep the source timeline across segments (players join them back to back).
        "-reset_timestamps", "0",
    ]
    if segment_times:
        args += ["-segment_times", ",".join(f"{t:.6f}" for t in segment_times)]
    else:
        args += ["-segment_time", "86400"]
    args.append(str(directory / "seg_%05d.ts"))
    return args
