"""How an encoder spends its bits, as data, and the ffmpeg output options that say it.

Two ways, both capped by a VBV (the decoder model a player has): capped VBR (an average
bitrate, at most `maxrate` over `bufsize`) and capped quality (a constant rate factor, CRF,
under the same cap: what per-title ladders encode with, see docs/per-title.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from packager.errors import InputError


@dataclass(frozen=True)
class RateControl:
    """bitrate > 0: capped VBR; crf > 0: capped quality. maxrate/bufsize 0: no cap."""

    bitrate: int = 0
    crf: float = 0.0
    maxrate: int = 0
    bufsize: int = 0

    def __post_init__(self) -> None:
        if (self.bitrate > 0) == (self.crf > 0):
            raise ValueError("a rate control is a bitrate or a CRF, not both")


#: The ffmpeg encoder of each codec, and its quality scale (CRF range).
ENCODERS = {"h264": "libx264"}
CRF_RANGE = {"h264": (0.0, 51.0)}


def encoder_options(codec: str, preset: str, control: RateControl, threads: int = 0,
                    profile: str = "") -> dict[str, Any]:
    """The ffmpeg output options that encode with `codec` under `control`. `threads` 1 pins
    the encoder to one thread: x264's output then depends on nothing but its input (a trial
    encode must give the same bits on every machine)."""
    if codec not in ENCODERS:
        raise InputError(f"unknown codec {codec!r}: use {', '.join(ENCODERS)}")
    options: dict[str, Any] = {"c:v": ENCODERS[codec], "preset": preset}
    if profile:
        options["profile:v"] = profile
    if control.crf > 0:
        options["crf"] = f"{control.crf:g}"
    else:
        options["b:v"] = control.bitrate
    if control.maxrate:
        options["maxrate"] = control.maxrate
        options["bufsize"] = control.bufsize
    if threads:
        options["threads"] = threads
    return options


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
