"""Generated test media (ffmpeg lavfi sources): the demo's embedded source, test and bench clips."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from packager.errors import TranscodeError
from packager.tools import find_tool, run_tool


@dataclass(frozen=True)
class ClipSpec:
    duration: float = 20.0
    width: int = 1280
    height: int = 720
    frame_rate: str = "25"
    video: bool = True
    audio: bool = True
    video_codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    audio_codec: str = "aac"
    #: Drop frames at random (VFR source): a select filter keeps frames by a seeded hash.
    variable_frame_rate: bool = False
    #: ffmpeg -movflags (e.g. +faststart puts moov first, as web uploads usually have).
    movflags: str = ""
    #: Extra audio streams after the first: (language tag, tone Hz) each, a distinct tone per
    #: language so that a test can tell which one plays. The first stream's tag is
    #: `language` ("" leaves it untagged).
    language: str = ""
    tone: int = 440  # Hz, the first audio stream's
    more_audio: tuple[tuple[str, int], ...] = ()
    #: Text subtitle streams muxed in (mov_text in MP4): (language tag, SRT file) each.
    subtitles: tuple[tuple[str, Path], ...] = ()
    #: Frames from one key frame to the next (-g); 0 leaves x264's default (250).
    keyframe_interval: int = 0
    #: More options for the video encoder (e.g. SVT-AV1 tiles), and the ffmpeg build that
    #: runs (ffmpeg-full has encoders the streamer build lacks: libaom-av1, librav1e).
    video_options: tuple[str, ...] = ()
    tool: str = "ffmpeg"


#: The fastest setting of encoders without x264's preset names.
_FASTEST = {"libsvtav1": ("-preset", "12"), "libaom-av1": ("-cpu-used", "8", "-row-mt", "1"),
            "librav1e": ("-speed", "10")}


def make_clip(path: Path, spec: ClipSpec = ClipSpec()) -> Path:
    """Write a clip with a moving test picture and a tone (beeping once a second), and the
    extra audio languages and subtitle streams the spec asks for."""
    ffmpeg = find_tool(spec.tool)
    args = [str(ffmpeg.path), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    if spec.video:
        args += [
            "-f", "lavfi",
            "-i", f"testsrc2=size={spec.width}x{spec.height}:rate={spec.frame_rate}",
        ]
    if spec.audio:
        for tone in (spec.tone, *(tone for _, tone in spec.more_audio)):
            args += ["-f", "lavfi", "-i", f"sine=frequency={tone}:beep_factor=4:sample_rate=48000"]
    for _, srt in spec.subtitles:
        args += ["-i", str(srt)]
    streams = int(spec.video) + (1 + len(spec.more_audio) if spec.audio else 0)
    args += [arg for i in range(streams + len(spec.subtitles)) for arg in ("-map", str(i))]
    args += ["-t", str(spec.duration)]
    if spec.video:
        if spec.variable_frame_rate:
            args += ["-vf", "select='gt(random(0),0.3)'", "-fps_mode", "vfr"]
        args += ["-c:v", spec.video_codec, "-pix_fmt", spec.pix_fmt,
                 *_FASTEST.get(spec.video_codec, ("-preset", "ultrafast")), *spec.video_options]
        if spec.keyframe_interval:
            args += ["-g", str(spec.keyframe_interval)]
        if spec.video_codec == "libx265":
            args += ["-tag:v", "hvc1", "-x265-params", "log-level=error"]
    if spec.audio:
        args += ["-c:a", spec.audio_codec, "-ac", "2"]
        if spec.audio_codec == "aac":
            args += ["-b:a", "128k"]
        tags = [spec.language, *(language for language, _ in spec.more_audio)]
        args += [arg for i, tag in enumerate(tags) if tag
                 for arg in (f"-metadata:s:a:{i}", f"language={tag}")]
    if spec.subtitles:
        args += ["-c:s", "mov_text"]
        args += [arg for i, (tag, _) in enumerate(spec.subtitles)
                 for arg in (f"-metadata:s:s:{i}", f"language={tag}")]
    if spec.movflags:
        args += ["-movflags", spec.movflags]
    args.append(str(path))
    result = run_tool(args)
    if result.returncode != 0:
        raise TranscodeError(f"could not generate {path}: {'; '.join(result.stderr_tail[-2:])}")
    return path



def make_dub(path: Path, duration: float, tone: int) -> Path:
    """An audio-only dub (AAC in MP4) with a tone of its own, beeping once a second like the
    source's, so that segments of different languages can be told apart by their pitch."""
    return make_clip(path, ClipSpec(duration=duration, video=False, tone=tone))
