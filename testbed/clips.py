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
    #: Frames from one key frame to the next (-g); 0 leaves x264's default (250).
    keyframe_interval: int = 0


def make_clip(path: Path, spec: ClipSpec = ClipSpec()) -> Path:
    """Write a clip with a moving test picture and a tone (beeping once a second)."""
    ffmpeg = find_tool("ffmpeg")
    args = [str(ffmpeg.path), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    if spec.video:
        args += [
            "-f", "lavfi",
            "-i", f"testsrc2=size={spec.width}x{spec.height}:rate={spec.frame_rate}",
        ]
    if spec.audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:beep_factor=4:sample_rate=48000"]
    args += ["-t", str(spec.duration)]
    if spec.video:
        if spec.variable_frame_rate:
            args += ["-vf", "select='gt(random(0),0.3)'", "-fps_mode", "vfr"]
        args += ["-c:v", spec.video_codec, "-pix_fmt", spec.pix_fmt, "-preset", "ultrafast"]
        if spec.keyframe_interval:
            args += ["-g", str(spec.keyframe_interval)]
        if spec.video_codec == "libx265":
            args += ["-tag:v", "hvc1", "-x265-params", "log-level=error"]
    if spec.audio:
        args += ["-c:a", spec.audio_codec, "-ac", "2"]
        if spec.audio_codec == "aac":
            args += ["-b:a", "128k"]
    if spec.movflags:
        args += ["-movflags", spec.movflags]
    args.append(str(path))
    result = run_tool(args)
    if result.returncode != 0:
        raise TranscodeError(f"could not generate {path}: {'; '.join(result.stderr_tail[-2:])}")
    return path
