"""Placing a per-title ladder's rungs on the measured rate-quality curves of one codec.

Each trial size gives a curve: bitrate and VMAF as functions of the encoder's quality setting
(CRF), PCHIP through the measured points (packager/quality/pchip.py: monotone, no invented
wiggles). A VMAF target is met by the size that reaches it for the fewest bits, at the CRF
found on that size's curve; the cheapest point reaching the target therefore lies on the lower
envelope of the curves, the continuous form of the convex hull the points span. Nothing is
extrapolated: a size is a candidate only within the CRFs it was measured at.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from packager.quality.hull import RatePoint
from packager.quality.pchip import Pchip

#: Aim this many VMAF points above each target: the sample predicts the title, not exactly.
TARGET_MARGIN = 0.5
#: Two rungs closer than this bitrate ratio are one rung (the better one is kept).
MIN_RUNG_RATIO = 1.1
#: Adjacent rungs further apart than this get rungs between them while max_rungs allows (HLS
#: authoring asks adjacent variants to be 1.5-2x apart): a player on a link between two rungs
#: otherwise drops to the lower one, and a title whose targets sit above its cap keeps a ladder.
MAX_RUNG_RATIO = 2.0

#: Why a rung is in the ladder.
TARGET, FLOOR, CAPPED, FILL = "target", "floor", "capped", "fill"


@dataclass(frozen=True)
class Rung:
    """One planned rendition: its size and CRF, and what the sample predicts it costs and
    scores."""

    codec: str
    width: int
    height: int
    crf: float
    bitrate: int  # predicted average, bits/s
    vmaf: float  # predicted mean VMAF
    #: TARGET, FLOOR (the low-bandwidth rung), CAPPED (a bitrate cap decided it) or FILL (placed
    #: by bitrate in a gap wider than MAX_RUNG_RATIO)
    role: str
    target: float | None = None  # the VMAF it was placed for (TARGET rungs)


@dataclass(frozen=True)
class Limits:
    min_bitrate: int
    max_bitrate: int
    max_rungs: int
    floor_bitrate: int  # 0: no low-bandwidth rung

    @property
    def floor_rate(self) -> int:
        """The bitrate a floor rung is placed at, and its encode capped to (per_title)."""
        return max(self.floor_bitrate, self.min_bitrate)


class SizeCurve:
    """One size's measured points as functions of CRF (CRF rising: bits and VMAF falling)."""

    def __init__(self, points: Sequence[RatePoint], integer_crf: bool = False) -> None:
        self.step = 1.0 if integer_crf else 0.01
        chain: list[RatePoint] = []
        for p in sorted(points, key=lambda p: p.quality):
            # a point that does not cost less AND score less than the one before is noise
            if not chain or (p.bitrate < chain[-1].bitrate and p.vmaf < chain[-1].vmaf):
                chain.append(p)
        self.points = chain
        self.width, self.height = chain[0].width, chain[0].height
        crfs = [p.quality for p in chain]
        self._rate = Pchip(crfs, [math.log(p.bitrate) for p in chain]) if len(chain) > 1 else None
        self._vmaf = Pchip(crfs, [p.vmaf for p in chain]) if len(chain) > 1 else None

    def at_vmaf(self, aim: float) -> tuple[float, float, float] | None:
        """(crf, bitrate, vmaf) of the cheapest measured-range point scoring at least `aim`."""
        best, worst = self.points[0], self.points[-1]
        if best.vmaf < aim:
            return None
        if worst.vmaf >= aim or self._vmaf is None or self._rate is None:
            return worst.quality, float(worst.bitrate), worst.vmaf
        crf = _solve(self._vmaf, aim, best.quality, worst.quality, self.step)
        return crf, math.exp(self._rate(crf)), self._vmaf(crf)

    def at_rate(self, rate: float) -> tuple[float, float, float] | None:
        """(crf, bitrate, vmaf) of the best measured-range point costing at most `rate`."""
        best, worst = self.points[0], self.points[-1]
        if worst.bitrate > rate:
            return None
        if best.bitrate <= rate or self._vmaf is None or self._rate is None:
            return best.quality, float(best.bitrate), best.vmaf
        crf = _solve(self._rate, math.log(rate), best.quality, worst.quality, self.step,
                     fewer_bits=True)
        return crf, math.exp(self._rate(crf)), self._vmaf(crf)


def _solve(curve: Callable[[float], float], value: float, lo: float, hi: float,
           step: float, fewer_bits: bool = False) -> float:
    """The CRF in [lo, hi] where a falling curve meets `value` (bisection: the same answer on
    every machine), on the encoder's step (1/100, or whole numbers for SVT-AV1): rounded
    down (at least the quality asked) or, with `fewer_bits`, up (at most the bits asked)."""
    top = hi
    for _ in range(60):
        mid = (lo + hi) / 2
        if curve(mid) >= value:
            lo = mid
        else:
            hi = mid
    steps = math.ceil(lo / step - 1e-9) if fewer_bits else math.floor(lo / step + 1e-9)
    return round(min(steps * step, top), 2)


def place_rungs(points: Sequence[RatePoint], targets: Sequence[float],
                limits: Limits, integer_crf: bool = False) -> list[Rung]:
    """The rungs of one codec, best first: one per target on the cheapest curve reaching it
    (capped to [min_bitrate, max_bitrate]), the low-bandwidth floor, then pruned: a rung that
    costs as much as a better one goes, near-twins merge, and at most max_rungs stay; room
    left under max_rungs fills the widest bitrate gaps."""
    if not points:
        return []
    codec = points[0].codec
    sizes = sorted({(p.width, p.height) for p in points}, key=lambda s: -s[1])
    curves = [SizeCurve([p for p in points if (p.width, p.height) == size], integer_crf)
              for size in sizes]
    rungs: list[Rung] = []
    for target in targets:
        aim = min(target + TARGET_MARGIN, 100.0)
        found = [(c, at) for c in curves if (at := c.at_vmaf(aim)) is not None]
        if not found:  # no size reaches it: the best the grid measured, within the cap
            rungs.append(_best_at(codec, curves, limits.max_bitrate, CAPPED))
            continue
        curve, (crf, rate, vmaf) = min(found, key=lambda f: (f[1][1], -f[0].height))
        if rate > limits.max_bitrate:
            rungs.append(_best_at(codec, curves, limits.max_bitrate, CAPPED))
        elif rate < limits.min_bitrate:
            raised = _best_at(codec, curves, limits.min_bitrate, TARGET)
            rungs.append(Rung(codec, raised.width, raised.height, raised.crf, raised.bitrate,
                              raised.vmaf, TARGET, target))
        else:
            rungs.append(Rung(codec, curve.width, curve.height, crf, round(rate), vmaf, TARGET,
                              target))
    rungs = _pruned(rungs)
    if limits.floor_bitrate and rungs[-1].bitrate > limits.floor_bitrate:
        floor = _best_at(codec, curves, limits.floor_rate, FLOOR)
        if floor.bitrate > limits.floor_rate:
            # The grid's cheapest point costs more (a hard title): the encode's VBV holds the
            # rung at the floor (per_title.renditions); its VMAF here is an upper bound, the
            # delivered rung's is measured.
            floor = replace(floor, bitrate=limits.floor_rate)
        if floor.bitrate < rungs[-1].bitrate:
            rungs = _pruned([*rungs, floor], keep_last=True)
    rungs = _filled(codec, curves, rungs, limits.max_rungs)
    while len(rungs) > max(limits.max_rungs, 1):
        interior = range(1, len(rungs) - 1) if len(rungs) > 2 else range(1, 2)
        drop = min(interior, key=lambda i: rungs[i - 1].bitrate / rungs[i].bitrate)
        rungs.pop(drop)
    return rungs


def _filled(codec: str, curves: Sequence[SizeCurve], rungs: list[Rung],
            max_rungs: int) -> list[Rung]:
    """`rungs` with the widest gap over MAX_RUNG_RATIO split at its geometric middle (the best
    point the curves give for that bitrate), again while there is room: the split that adds
    most where a ladder is thinnest first."""
    rungs = list(rungs)
    unfillable: set[int] = set()  # bitrates of rungs whose gap below has no point between
    while len(rungs) < max_rungs:
        gaps = [i for i in range(len(rungs) - 1) if rungs[i].bitrate not in unfillable
                and rungs[i].bitrate > rungs[i + 1].bitrate * MAX_RUNG_RATIO]
        if not gaps:
            break
        i = max(gaps, key=lambda i: (rungs[i].bitrate / rungs[i + 1].bitrate, -i))
        upper, lower = rungs[i], rungs[i + 1]
        rung = _best_at(codec, curves, math.sqrt(upper.bitrate * lower.bitrate), FILL)
        if (upper.bitrate > rung.bitrate * MIN_RUNG_RATIO
                and rung.bitrate > lower.bitrate * MIN_RUNG_RATIO
                and upper.vmaf > rung.vmaf > lower.vmaf):
            rungs.insert(i + 1, rung)
        else:
            unfillable.add(upper.bitrate)
    return rungs


def _best_at(codec: str, curves: Sequence[SizeCurve], rate: float, role: str) -> Rung:
    """The best VMAF any size gives for at most `rate` (the cheapest point when none is that
    cheap: the grid's floor)."""
    found = [(c, at) for c in curves if (at := c.at_rate(rate)) is not None]
    if not found:
        cheapest = min((c.points[-1] for c in curves), key=lambda p: (p.bitrate, -p.vmaf))
        return Rung(codec, cheapest.width, cheapest.height, cheapest.quality, cheapest.bitrate,
                    cheapest.vmaf, role)
    curve, (crf, bitrate, vmaf) = max(found, key=lambda f: (f[1][2], -f[1][1]))
    return Rung(codec, curve.width, curve.height, crf, round(bitrate), vmaf, role)


def _pruned(rungs: Sequence[Rung], keep_last: bool = False) -> list[Rung]:
    """Best first; a rung costing at least as much as a better one is dropped, and of two
    rungs within MIN_RUNG_RATIO of each other the better stays (the last, with keep_last:
    the floor is kept for the links that need it)."""
    ordered = sorted(rungs, key=lambda r: (-r.vmaf, r.bitrate))
    kept: list[Rung] = []
    for rung in ordered:
        if kept and rung.bitrate >= kept[-1].bitrate:
            continue
        if kept and kept[-1].bitrate / rung.bitrate < MIN_RUNG_RATIO:
            if keep_last and rung is ordered[-1] and len(kept) > 1:
                kept[-1] = rung
            continue
        kept.append(rung)
    return kept


def rendition_id(rung: Rung) -> str:
    """video_720p_1850k (H.264, as the fixed ladder's video_720p) or video_av1_720p_900k."""
    prefix = "video" if rung.codec == "h264" else f"video_{rung.codec}"
    return f"{prefix}_{rung.height}p_{round(rung.bitrate / 1000)}k"
