"""Bjøntegaard delta rate (BD-rate): the average bitrate difference of two rate-quality
curves at equal quality, in percent (negative: the test curve needs fewer bits).

The standard computation (VCEG-M33; piecewise cubic since JCTVC-L1100, validated against the
JCTVC-E137 spreadsheet by Netflix's BDrateCalculator): log10 of the rate as a PCHIP function
of quality for each curve, both integrated exactly over the quality interval the two curves
share; the mean difference of the logs is turned back into a rate ratio.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from packager.quality.pchip import Pchip

#: A rate-quality point: (bits per second, quality score, e.g. VMAF).
Point = tuple[float, float]


class BdRateError(ValueError):
    """The curves cannot be compared: too few points, not monotone, or no common quality."""


def bd_rate(anchor: Sequence[Point], test: Sequence[Point]) -> float:
    """Percent more (positive) or fewer (negative) bits the test curve needs than the anchor
    for the same quality, averaged over the quality range both curves cover."""
    a = _curve(anchor, "anchor")
    t = _curve(test, "test")
    lo = max(a.xs[0], t.xs[0])
    hi = min(a.xs[-1], t.xs[-1])
    if hi <= lo:
        raise BdRateError(f"the curves share no quality range (anchor {a.xs[0]:.2f}.."
                          f"{a.xs[-1]:.2f}, test {t.xs[0]:.2f}..{t.xs[-1]:.2f})")
    mean_log_ratio = (t.integral(lo, hi) - a.integral(lo, hi)) / (hi - lo)
    return (10**mean_log_ratio - 1) * 100


def _curve(points: Sequence[Point], name: str) -> Pchip:
    """log10(rate) as a function of quality; the points must rise together."""
    ordered = sorted(points, key=lambda p: p[1])
    if len(ordered) < 2:
        raise BdRateError(f"{name}: a curve needs at least two points")
    for (r0, q0), (r1, q1) in itertools.pairwise(ordered):
        if not (r1 > r0 and q1 > q0):
            raise BdRateError(f"{name}: rate and quality must rise together "
                              f"({r0:.0f} b/s {q0:.2f} → {r1:.0f} b/s {q1:.2f})")
    if ordered[0][0] <= 0:
        raise BdRateError(f"{name}: rates must be positive")
    return Pchip([q for _, q in ordered], [math.log10(r) for r, _ in ordered])
