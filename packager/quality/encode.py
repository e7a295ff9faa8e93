"""A video encode to be measured: one file, or a delivered CMAF track (its init segment and
media segments, in order), an encrypted one with its content key; and its frames and bytes,
as ffprobe lists its packets (no decoding)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from packager.errors import InputError
from packager.tools import find_tool, run_tool

#: Protocols the ffconcat script's entries may use: files joined by the concat protocol (an
#: init segment and its media segments read as one fragmented MP4); pipe for the script itself.
CONCAT_PROTOCOLS = "file,pipe,concat,crypto,data"


@dataclass(frozen=True)
class Encode:
    """What ffmpeg reads as one input. A single clear file is read directly; anything else
    through an ffconcat script on stdin (stdin_script), so that neither the key nor a list of
    thousands of segments has to fit on a command line."""

    files: tuple[Path, ...]
    #: cenc/cbcs content key (16 bytes); never in repr, logs or command lines.
    key: bytes | None = field(default=None, repr=False)

    @property
    def direct(self) -> bool:
        return len(self.files) == 1 and self.key is None

    def input_args(self) -> list[str]:
        """ffmpeg/ffprobe arguments that open this encode (the script, if any, on stdin)."""
        if self.direct:
            return ["-i", str(self.files[0])]
        return ["-f", "concat", "-safe", "0", "-protocol_whitelist", CONCAT_PROTOCOLS,
                "-i", "pipe:0"]

    def stdin_script(self) -> str | None:
        """The ffconcat script: one entry joining the files with the concat protocol, the
        mov demuxer's decryption_key option for an encrypted track."""
        if self.direct:
            return None
        for path in self.files:
            if "|" in str(path) or "\n" in str(path):
                raise InputError(f"{path}: a path with '|' or a newline cannot be measured")
        joined = "|".join(f"file:{path.absolute()}" for path in self.files)
        lines = ["ffconcat version 1.0", "file " + _quote(f"concat:{joined}")]
        if self.key is not None:
            lines.append(f"option decryption_key {self.key.hex()}")
        return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    """ffconcat quoting: single quotes, a quote inside written as '\\''."""
    return "'" + text.replace("'", "'\\''") + "'"


@dataclass(frozen=True)
class Packets:
    """A video stream's frames, bytes and duration, from its packets."""

    frames: int
    bytes: int
    duration: float  # seconds: the last packet's end less the first packet's start

    @property
    def bitrate(self) -> int:
        return round(self.bytes * 8 / self.duration) if self.duration > 0 else 0


def video_packets(encode: Encode) -> Packets:
    """Count the first video stream's packets (one per frame) and their bytes. Encrypted
    samples keep their sizes (ISO/IEC 23001-7 encrypts in place), so no key is needed."""
    ffprobe = find_tool("ffprobe")
    args = [str(ffprobe.path), "-v", "error", "-hide_banner", *encode.input_args(),
            "-select_streams", "v:0", "-show_entries", "packet=pts_time,duration_time,size",
            "-of", "json"]
    result = run_tool(args, stdin_text=_script_without_key(encode))
    if result.returncode != 0:
        raise InputError(f"{encode.files[0]}: not readable video "
                         f"({'; '.join(result.stderr_tail[-2:]) or result.returncode})")
    packets = json.loads(result.stdout or "{}").get("packets", [])
    if not packets:
        raise InputError(f"{encode.files[0]}: has no video frames")
    starts = [float(p.get("pts_time", 0.0)) for p in packets]
    ends = [s + float(p.get("duration_time", 0.0)) for s, p in zip(starts, packets, strict=True)]
    return Packets(len(packets), sum(int(p.get("size", 0)) for p in packets),
                   max(ends) - min(starts))


def _script_without_key(encode: Encode) -> str | None:
    """Sizes need no key: ffprobe is never handed one."""
    if encode.direct:
        return None
    return Encode(encode.files).stdin_script()
