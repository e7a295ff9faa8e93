"""Piecewise cubic Hermite interpolation (PCHIP): a monotone curve through measured points.

Rate-quality points are sparse and a cubic polynomial through them overshoots; PCHIP keeps the
curve monotone between points and never invents an extremum, which is why the JCT-VC common
test conditions (JCTVC-L1100) moved BD-rate to it. The slopes are Fritsch and Carlson's, in the
form of Moler, "Numerical Computing with MATLAB" §3.4 (pchipslopes, pchipend): the same as
MATLAB's pchip and SciPy's PchipInterpolator.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence


class Pchip:
    """The interpolant through (x, y) points, x strictly increasing."""

    def __init__(self, xs: Sequence[float], ys: Sequence[float]) -> None:
        if len(xs) != len(ys) or len(xs) < 2:
            raise ValueError("PCHIP needs at least two points, as many x as y")
        if any(b <= a for a, b in itertools.pairwise(xs)):
            raise ValueError("PCHIP needs strictly increasing x")
        self.xs = [float(x) for x in xs]
        self.ys = [float(y) for y in ys]
        h = [b - a for a, b in itertools.pairwise(self.xs)]
        delta = [(y1 - y0) / step for y0, y1, step
                 in zip(self.ys, self.ys[1:], h, strict=False)]
        self.d = _slopes(h, delta)
        # p(s) = y[k] + s d[k] + s² c[k] + s³ b[k] on [x[k], x[k+1]], s = x - x[k]
        self.c = [(3 * dl - 2 * d0 - d1) / step
                  for dl, d0, d1, step in zip(delta, self.d, self.d[1:], h, strict=False)]
        self.b = [(d0 - 2 * dl + d1) / step**2
                  for dl, d0, d1, step in zip(delta, self.d, self.d[1:], h, strict=False)]

    def _segment(self, x: float) -> int:
        return min(max(bisect.bisect_right(self.xs, x) - 1, 0), len(self.xs) - 2)

    def __call__(self, x: float) -> float:
        """The curve at x; outside the points it continues the end segments' cubics."""
        k = self._segment(x)
        s = x - self.xs[k]
        return self.ys[k] + s * (self.d[k] + s * (self.c[k] + s * self.b[k]))

    def integral(self, lo: float, hi: float) -> float:
        """∫ from lo to hi, exactly (each segment's cubic integrated in closed form);
        lo and hi must lie within the points."""
        if not self.xs[0] <= lo <= hi <= self.xs[-1]:
            raise ValueError("integration bounds outside the interpolated points")
        total = 0.0
        for k in range(len(self.xs) - 1):
            s0 = min(max(lo, self.xs[k]), self.xs[k + 1]) - self.xs[k]
            s1 = min(max(hi, self.xs[k]), self.xs[k + 1]) - self.xs[k]
            if s1 > s0:
                total += (self._primitive(k, s1) - self._primitive(k, s0))
        return total

    def _primitive(self, k: int, s: float) -> float:
        return s * (self.ys[k] + s * (self.d[k] / 2 + s * (self.c[k] / 3 + s * self.b[k] / 4)))


def _slopes(h: list[float], delta: list[float]) -> list[float]:
    """Derivatives at the points: a weighted harmonic mean of the neighbouring secant slopes
    inside (zero at a local extremum of the data), a shape-preserving three-point formula at
    the ends."""
    n = len(h) + 1
    if n == 2:
        return [delta[0], delta[0]]
    d = [0.0] * n
    for k in range(1, n - 1):
        if delta[k - 1] * delta[k] > 0:
            w1 = 2 * h[k] + h[k - 1]
            w2 = h[k] + 2 * h[k - 1]
            d[k] = (w1 + w2) / (w1 / delta[k - 1] + w2 / delta[k])
    d[0] = _end_slope(h[0], h[1], delta[0], delta[1])
    d[-1] = _end_slope(h[-1], h[-2], delta[-1], delta[-2])
    return d


def _end_slope(h1: float, h2: float, del1: float, del2: float) -> float:
    d = ((2 * h1 + h2) * del1 - h1 * del2) / (h1 + h2)
    if d * del1 <= 0:
        return 0.0
    if del1 * del2 < 0 and abs(d) > abs(3 * del1):
        return 3 * del1
    return d
