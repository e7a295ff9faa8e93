"""BD-rate as the JCT-VC computes it (PCHIP, log-rate integrated over the common quality range),
checked against published values and the properties any BD-rate must have."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from packager.quality.bdrate import BdRateError, bd_rate
from packager.quality.hull import RatePoint, convex_hull
from packager.quality.pchip import Pchip

# Two HM anchor/test pairs (rate kb/s, PSNR dB) with the BD-rates of the JCTVC-E137 spreadsheet,
# as Netflix's BDrateCalculatorJCTVCTest (vmaf/python/test/bd_rate_calculator_test.py) holds
# them: -0.465 % and -1.878 %.
JCTVC = [
    ([(108048.8736, 43.6471), (61279.976, 40.3953), (33905.6656, 37.247),
      (18883.6928, 34.2911)],
     [(108061.2784, 43.6768), (61299.9936, 40.4232), (33928.7472, 37.2761),
      (18910.912, 34.3147)],
     -0.465215420752807),
    ([(40433.8848, 37.5761), (7622.7456, 35.3756), (2394.488, 33.8977), (1017.6184, 32.0603)],
     [(40370.12, 37.5982), (7587.0024, 35.4025), (2390.0944, 33.9194), (1017.0984, 32.0822)],
     -1.8779823450567612),
]


@pytest.mark.parametrize(("anchor", "test", "expected"), JCTVC)
def test_bd_rate_equals_the_jctvc_spreadsheet(
    anchor: list[tuple[float, float]], test: list[tuple[float, float]], expected: float
) -> None:
    assert bd_rate(anchor, test) == pytest.approx(expected, abs=1e-9)


#: A rate-quality curve: rising rates with rising quality, 2 to 8 points.
curves = st.lists(
    st.tuples(st.floats(1.05, 3.0), st.floats(0.2, 8.0)), min_size=2, max_size=8
).map(lambda steps: [
    (100_000 * math.prod(r for r, _ in steps[: i + 1]), 20 + sum(q for _, q in steps[: i + 1]))
    for i in range(len(steps))
])


@given(curves)
def test_identical_curves_differ_by_nothing(curve: list[tuple[float, float]]) -> None:
    assert bd_rate(curve, curve) == pytest.approx(0.0, abs=1e-9)


@given(curves, st.floats(0.1, 10.0))
def test_a_curve_at_k_times_the_rate_is_k_minus_one(
    curve: list[tuple[float, float]], k: float
) -> None:
    scaled = [(rate * k, q) for rate, q in curve]
    assert bd_rate(curve, scaled) == pytest.approx((k - 1) * 100, rel=1e-9)


def test_a_curve_at_half_the_rate_saves_half() -> None:
    curve = [(300_000, 60.0), (800_000, 78.0), (1_500_000, 88.0), (3_000_000, 95.0)]
    assert bd_rate(curve, [(r / 2, q) for r, q in curve]) == pytest.approx(-50.0)


@given(curves, curves)
def test_swapping_anchor_and_test_inverts_the_ratio(
    a: list[tuple[float, float]], b: list[tuple[float, float]]
) -> None:
    if min(a[-1][1], b[-1][1]) <= max(a[0][1], b[0][1]):
        return  # no common quality range: refused, tested below
    forward, backward = bd_rate(a, b), bd_rate(b, a)
    assert (1 + forward / 100) * (1 + backward / 100) == pytest.approx(1.0, rel=1e-9)


@pytest.mark.parametrize(("anchor", "test", "message"), [
    ([(1e5, 50.0)], [(1e5, 50.0), (2e5, 60.0)], "at least two points"),
    ([(1e5, 50.0), (2e5, 40.0)], [(1e5, 50.0), (2e5, 60.0)], "rise together"),
    ([(1e5, 50.0), (2e5, 60.0)], [(1e5, 70.0), (2e5, 80.0)], "share no quality range"),
])
def test_curves_that_cannot_be_compared_are_refused(
    anchor: list[tuple[float, float]], test: list[tuple[float, float]], message: str
) -> None:
    with pytest.raises(BdRateError, match=message):
        bd_rate(anchor, test)


@given(st.lists(st.floats(-5.0, 5.0), min_size=2, max_size=8))
def test_pchip_passes_through_its_points_and_keeps_monotone_data_monotone(
    steps: list[float]
) -> None:
    xs = [float(i) for i in range(len(steps))]
    ys = [sum(abs(s) for s in steps[: i + 1]) for i in range(len(steps))]  # non-decreasing
    curve = Pchip(xs, ys)
    assert [curve(x) for x in xs] == pytest.approx(ys)
    samples = [curve(i / 16) for i in range(16 * (len(xs) - 1) + 1)]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(samples))


def test_pchip_integrates_a_straight_line_exactly() -> None:
    line = Pchip([0.0, 1.0, 3.0, 4.0], [1.0, 3.0, 7.0, 9.0])  # y = 2x + 1
    assert line.integral(0.5, 3.5) == pytest.approx((3.5**2 + 3.5) - (0.5**2 + 0.5))


def point(bitrate: int, vmaf: float, height: int = 720) -> RatePoint:
    return RatePoint("h264", height * 16 // 9, height, 23.0, bitrate, vmaf, vmaf - 5)


def test_the_hull_drops_points_that_cost_more_for_less() -> None:
    cheap, dear = point(1_000_000, 90.0, 720), point(1_500_000, 88.0, 540)
    assert convex_hull([dear, cheap]) == [cheap]


def test_the_hull_drops_points_under_the_chord_of_their_neighbours() -> None:
    low, mid, high = point(500_000, 70.0), point(1_000_000, 74.0, 540), point(1_500_000, 90.0)
    assert convex_hull([high, mid, low]) == [low, high]


@given(st.lists(st.tuples(st.integers(50_000, 9_000_000), st.floats(0.0, 100.0)), max_size=30))
def test_the_hull_is_concave_and_nothing_beats_it(raw: list[tuple[int, float]]) -> None:
    points = [point(rate, vmaf) for rate, vmaf in raw]
    hull = convex_hull(points)
    assert all(a.bitrate < b.bitrate and a.vmaf < b.vmaf for a, b in itertools.pairwise(hull))
    slopes = [(b.vmaf - a.vmaf) / (b.bitrate - a.bitrate)
              for a, b in itertools.pairwise(hull)]
    assert all(s1 < s0 for s0, s1 in itertools.pairwise(slopes))
    for p in points:  # no point lies above the hull's broken line
        assert p.bitrate >= hull[0].bitrate
        after = next((h for h in hull if h.bitrate >= p.bitrate), None)
        if after is None:
            assert p.vmaf <= hull[-1].vmaf
            continue
        before = max((h for h in hull if h.bitrate <= p.bitrate), key=lambda h: h.bitrate)
        share = ((p.bitrate - before.bitrate) / (after.bitrate - before.bitrate)
                 if after.bitrate > before.bitrate else 0.0)
        assert p.vmaf <= before.vmaf + share * (after.vmaf - before.vmaf) + 1e-9
