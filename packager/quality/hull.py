"""Rate-quality points of a title's encodes, and their convex hull.

A ladder should only offer encodes that no other choice beats: for any bitrate, the best
quality any resolution reaches. Netflix's per-title encoding calls that frontier the convex
hull: the Pareto front of (bitrate, quality) points, less the points under the chord of their
neighbours, since a player switching between the two neighbours would get more quality for
the same bits on average (both coordinates mix linearly in time).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class RatePoint:
    """One encode (of the whole title or of its sample) and how good it is."""

    codec: str  # h264, hevc, av1
    width: int
    height: int
    #: The encoder's quality setting (x264/x265 CRF, SVT-AV1 CRF); 0 for a bitrate-driven encode.
    quality: float
    bitrate: int  # bits per second, of the video bitstream
    vmaf: float  # mean frame score
    vmaf_p5: float  # 5th-percentile frame score: how bad the worst moments get


def convex_hull(points: Iterable[RatePoint]) -> list[RatePoint]:
    """The points on the upper-left convex hull, cheapest first (a monotone chain on the
    Pareto front; a point on a chord is dropped: it adds nothing a switch would not give)."""
    front: list[RatePoint] = []
    for p in sorted(points, key=lambda p: (p.bitrate, -p.vmaf)):
        if front and p.vmaf <= front[-1].vmaf:
            continue  # costs at least as much as a point that is at least as good
        front.append(p)
    hull: list[RatePoint] = []
    for p in front:
        while len(hull) >= 2 and _not_above(hull[-2], hull[-1], p):
            hull.pop()
        hull.append(p)
    return hull


def _not_above(a: RatePoint, b: RatePoint, c: RatePoint) -> bool:
    """Whether b lies on or under the chord from a to c (rates rising a → b → c)."""
    cross = ((b.bitrate - a.bitrate) * (c.vmaf - a.vmaf)
             - (b.vmaf - a.vmaf) * (c.bitrate - a.bitrate))
    return cross >= 0
