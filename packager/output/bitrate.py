"""Measured bitrates of a CMAF track: what BANDWIDTH and @bandwidth must honestly say."""

from __future__ import annotations

from dataclasses import dataclass

from packager.output.segmenter import CmafTrack


@dataclass(frozen=True)
class Bitrates:
    peak: int  # highest segment bitrate, bits/s (RFC 8216 §4.3.4.2 "peak segment bit rate")
    average: int  # all segment bytes over the whole duration, bits/s


def measure(track: CmafTrack) -> Bitrates:
    timescale = track.info.timescale
    peak = max(
        (s.size * 8 * timescale / s.duration for s in track.segments if s.duration > 0), default=0.0
    )
    total_ticks = sum(s.duration for s in track.segments)
    total_bits = sum(s.size for s in track.segments) * 8
    average = total_bits * timescale / total_ticks if total_ticks else 0.0
    return Bitrates(peak=round(peak), average=round(average))
