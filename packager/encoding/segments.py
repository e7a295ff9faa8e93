"""The segment plan: where every track is cut, decided before encoding.

Key frames are forced at exactly these instants and every track is cut at them, so a segment
never holds a second key frame (a 13 s source with 4 s segments is cut 0 / 4 / 8 and ends on
one 5 s segment: no key frame at 12 s that the segmenter would then have to fold away).
A last segment under half the target joins the one before it: a release must not end on a
sliver that players fetch for almost nothing (the rule `segmenter._fold_short_tail` applies to
tracks that run a frame or two past the plan, such as audio with encoder padding).
"""

from __future__ import annotations

import math
from fractions import Fraction


def segment_starts(
    duration: float, segment_duration: float, frame_rate: Fraction | None = None
) -> list[float]:
    """Segment start times in seconds, 0 first. With a frame rate each start is moved to the
    first frame at or after it, so the forced key frame and the audio cut are the same instant
    (a 29.97 fps video's frame nearest 4 s is at 4.004 s)."""
    if duration <= 0 or segment_duration <= 0:
        return [0.0]
    starts = [0.0]
    k = 1
    while k * segment_duration <= duration - segment_duration / 2:  # a tail of half is kept
        starts.append(_on_frame(k * segment_duration, frame_rate))
        k += 1
    return starts


def _on_frame(t: float, frame_rate: Fraction | None) -> float:
    if frame_rate is None:
        return t
    frame = math.ceil(Fraction(t) * frame_rate - Fraction(1, 1000))  # float noise, not a frame
    return float(frame / frame_rate)


def force_key_frames(starts: list[float]) -> str:
    """ffmpeg's -force_key_frames list: a key frame at the first frame at or after each time."""
    return ",".join(f"{t:.6f}" for t in starts)
