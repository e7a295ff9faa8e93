"""Per-title planning without encoding: the ladder file's per_title section, the sizes and the
sample it tries, and where rungs land on measured curves (synthetic points, exact answers)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from pathlib import Path

import pytest

from packager.encoding.ladder import load_ladder
from packager.encoding.media import MediaInfo, VideoStream
from packager.encoding.per_title import (
    FLOOR_BUFFER_SECONDS,
    TRIAL_GRIDS,
    PerTitleLadder,
    candidates,
    plan_analysis,
    renditions,
    sample,
)
from packager.encoding.per_title_spec import PerTitleSpec
from packager.encoding.placement import (
    CAPPED,
    FILL,
    FLOOR,
    MAX_RUNG_RATIO,
    TARGET,
    Limits,
    Rung,
    SizeCurve,
    place_rungs,
    rendition_id,
)
from packager.errors import InputError
from packager.quality.hull import RatePoint
from packager.quality.vmaf import Viewing


def media(height: int = 720, duration: float = 60.0, width: int | None = None) -> MediaInfo:
    video = VideoStream(0, "h264", "High", 40, width or height * 16 // 9, height, Fraction(1),
                        Fraction(25), False, "yuv420p", 8)
    return MediaInfo(Path("title.mp4"), "mp4", duration, 1, video)


def curve(height: int, crfs: tuple[float, ...], rate_at_best: float, vmaf_at_best: float,
          vmaf_step: float) -> list[RatePoint]:
    """A size's points: each CRF step of 6 halves the bits and costs `vmaf_step` points."""
    return [RatePoint("h264", height * 16 // 9, height, crf,
                      round(rate_at_best / 2 ** ((crf - crfs[0]) / 6)),
                      vmaf_at_best - vmaf_step * (crf - crfs[0]) / 6,
                      vmaf_at_best - vmaf_step * (crf - crfs[0]) / 6 - 3)
            for crf in crfs]


#: 720p is best at the top, 360p cheapest for low targets: the curves cross.
POINTS = [*curve(720, (19, 25, 31, 37), 4_000_000, 98.0, 7.0),
          *curve(360, (25, 31, 37, 43), 600_000, 88.0, 12.0)]
LIMITS = Limits(min_bitrate=50_000, max_bitrate=8_000_000, max_rungs=6, floor_bitrate=0)


def test_a_target_is_met_by_the_size_that_reaches_it_for_the_fewest_bits() -> None:
    (top, low) = [r for r in place_rungs(POINTS, [95.0, 70.0], LIMITS) if r.role == TARGET]
    assert (top.height, top.role, top.target) == (720, TARGET, 95.0)
    assert top.vmaf >= 95.0 + 0.5 > top.vmaf - 0.01  # the margin above the target, no more
    assert 19 < top.crf < 25
    assert (low.height, low.target) == (360, 70.0)  # 720p would need more bits for 70
    assert low.bitrate < top.bitrate


def test_no_rung_costs_as_much_as_a_better_one() -> None:
    rungs = place_rungs(POINTS, [97.0, 96.0, 95.0, 93.0, 88.0, 80.0, 70.0], LIMITS)
    assert all(a.bitrate > b.bitrate * 1.1 and a.vmaf > b.vmaf
               for a, b in itertools.pairwise(rungs))


def test_max_bitrate_caps_a_rung_at_the_best_quality_it_buys() -> None:
    (rung,) = place_rungs(POINTS, [97.5], Limits(50_000, 2_000_000, 6, 0))
    assert rung.role == CAPPED
    assert rung.target is None
    assert rung.bitrate <= 2_000_000
    assert rung.vmaf < 97.5


def test_min_bitrate_raises_a_rung_to_it() -> None:
    (rung,) = place_rungs(POINTS, [40.0], Limits(300_000, 8_000_000, 6, 0))
    assert rung.bitrate >= 300_000 * 0.99
    assert rung.target == 40.0


def test_a_floor_rung_is_added_under_the_floor_bitrate_and_states_its_vmaf() -> None:
    rungs = place_rungs(POINTS, [95.0, 88.0], Limits(50_000, 8_000_000, 6, 150_000))
    floor = rungs[-1]
    assert floor.role == FLOOR
    assert floor.bitrate <= 150_000
    assert 0 < floor.vmaf < 88


def test_max_rungs_keeps_the_top_and_the_floor() -> None:
    rungs = place_rungs(POINTS, [97.0, 95.0, 90.0, 85.0, 80.0, 75.0, 70.0],
                        Limits(50_000, 8_000_000, 3, 120_000))
    assert len(rungs) == 3
    assert rungs[0].target == 97.0
    assert rungs[-1].role == FLOOR


#: One size, bits halving every 6 CRF from 4 Mb/s at CRF 19 down to 62.5 kb/s.
SMOOTH = curve(720, (19, 25, 31, 37, 43, 49), 4_000_000, 98.0, 5.0)


def test_a_gap_wider_than_twice_is_filled_at_its_middle_on_the_curve() -> None:
    rungs = place_rungs(SMOOTH, [97.0, 85.0], LIMITS)
    assert [r.role for r in rungs] == [TARGET, FILL, FILL, FILL, TARGET]
    assert all(a.bitrate <= b.bitrate * MAX_RUNG_RATIO for a, b in itertools.pairwise(rungs))
    on_curve = SizeCurve(SMOOTH)
    for fill in rungs[1:-1]:
        assert fill.target is None
        _, bitrate, vmaf = on_curve.at_rate(fill.bitrate * 1.001) or (0, 0, 0)
        assert fill.bitrate == pytest.approx(bitrate, rel=0.002)  # the curve's best there
        assert fill.vmaf == pytest.approx(vmaf, abs=0.05)
    # the widest gap first, at its geometric middle: the first fill halves the ladder
    middle = math.sqrt(rungs[0].bitrate * rungs[-1].bitrate)
    assert abs(math.log(rungs[2].bitrate / middle)) < 0.02


def test_fills_stop_at_max_rungs() -> None:
    rungs = place_rungs(SMOOTH, [97.0, 85.0], Limits(50_000, 8_000_000, 3, 0))
    assert [r.role for r in rungs] == [TARGET, FILL, TARGET]


def test_a_title_capped_below_every_target_keeps_a_ladder_down_to_its_floor() -> None:
    """A grainy title: no target is reachable under max_bitrate; the capped rung and the
    floor alone would leave a 20x gap."""
    hard = curve(720, (19, 25, 31, 37, 43, 49), 4_000_000, 68.0, 8.0)
    rungs = place_rungs(hard, [95.0, 93.0, 88.0, 80.0, 70.0], Limits(100_000, 8_000_000, 6,
                                                                     200_000))
    assert [r.role for r in rungs] == [CAPPED, FILL, FILL, FILL, FILL, FLOOR]
    assert rungs[-1].bitrate <= 200_000
    assert max(a.bitrate / b.bitrate for a, b in itertools.pairwise(rungs)) < 2.2
    assert all(a.vmaf > b.vmaf for a, b in itertools.pairwise(rungs))


def test_a_floor_under_every_trial_point_is_placed_at_the_floor() -> None:
    """The grid's cheapest point costs 1 Mb/s: the floor rung says 200 kb/s, which its encode's
    VBV holds it to (test_the_floor_rung_is_capped_at_the_floor...)."""
    dear = curve(720, (19, 25, 31), 4_000_000, 68.0, 8.0)
    rungs = place_rungs(dear, [95.0], Limits(100_000, 8_000_000, 6, 200_000))
    assert (rungs[-1].role, rungs[-1].bitrate) == (FLOOR, 200_000)
    assert rungs[-1].crf == 31  # the grid's cheapest point, held down by the cap


def test_no_fill_where_a_better_point_already_costs_less() -> None:
    """POINTS: 360p at CRF 25 (600 kb/s, VMAF 88) beats 720p up to about 1.4 Mb/s, so the gap
    above it has nothing better to offer than what is already a rung: it stays."""
    rungs = place_rungs(POINTS, [95.0, 70.0], LIMITS)
    assert [(r.height, r.role) for r in rungs][:2] == [(720, TARGET), (360, FILL)]
    assert rungs[0].bitrate > 2 * rungs[1].bitrate


def test_the_floor_rung_is_capped_at_the_floor_and_the_others_at_their_peak() -> None:
    """However the sample mispredicts the title, the floor's VBV keeps it at the floor."""
    spec = PerTitleSpec(floor_bitrate=150_000)
    rungs = place_rungs(POINTS, [95.0, 88.0], Limits(50_000, 8_000_000, 6, 150_000))
    ladder = PerTitleLadder(spec, Viewing(1280, 720, Fraction(25)), (), tuple(POINTS),
                            tuple(rungs), 0.0, 0.0)
    by_id = {r.id: r for r in renditions(ladder, lambda codec: codec.preset)}
    for rung in rungs:
        r = by_id[rendition_id(rung)]
        if rung.role == FLOOR:
            assert (r.maxrate, r.bufsize) == (150_000, 150_000 * FLOOR_BUFFER_SECONDS)
        else:
            assert (r.maxrate, r.bufsize) == (int(rung.bitrate * 1.5), rung.bitrate * 2)
    assert FLOOR in {r.role for r in rungs}


def test_an_unreachable_target_takes_the_best_point_measured() -> None:
    (rung,) = place_rungs(POINTS, [99.9], LIMITS)
    assert rung.role == CAPPED
    assert rung.vmaf == 98.0
    assert rung.crf == 19


def test_whole_number_crfs_for_an_encoder_that_takes_only_those() -> None:
    rungs = place_rungs(POINTS, [95.0, 80.0], LIMITS, integer_crf=True)
    assert all(r.crf == int(r.crf) for r in rungs)
    assert all(r.vmaf >= (r.target or 0) for r in rungs)  # rounded towards quality


def test_placement_is_a_function_of_the_points() -> None:
    assert place_rungs(POINTS, [95.0, 88.0, 70.0], LIMITS) == place_rungs(
        list(reversed(POINTS)), [95.0, 88.0, 70.0], LIMITS)
    assert isinstance(place_rungs(POINTS, [95.0], LIMITS)[0], Rung)


def test_default_sizes_start_at_the_source_and_never_upscale() -> None:
    sizes = candidates(PerTitleSpec(), media(720))
    assert [(c.width, c.height) for c in sizes] == [(1280, 720), (960, 540), (640, 360),
                                                    (426, 240)]
    assert [c.height for c in candidates(PerTitleSpec(), media(576, width=1024))] == [
        576, 360, 240]  # 540 is within 10 % of the source: no candidate


def test_a_listed_resolution_above_the_source_is_bad_input() -> None:
    with pytest.raises(InputError, match=r"1080p is above the source's 720p"):
        candidates(PerTitleSpec(resolutions=(1080, 720)), media(720))


@pytest.mark.parametrize("codec", ["h264", "hevc", "av1"])
def test_every_size_is_tried_at_the_same_crfs(codec: str, tmp_path: Path) -> None:
    """Where a smaller size takes over the hull is at the CRFs the tallest is tried at (a
    grainy title's 240p and 360p had no points where they were best when tried higher)."""
    plan = plan_analysis(PerTitleSpec(codecs=(codec,)), load_ladder("per-title"), media(720),
                         Fraction(25), 4.0, tmp_path)
    grid = {(e.height, e.quality) for e in plan.jobs[0].encodes}
    assert grid == {(h, q) for h in (720, 540, 360, 240) for q in TRIAL_GRIDS[codec]}
    assert all(job.encodes == plan.jobs[0].encodes for job in plan.jobs)


def test_the_sample_is_spread_over_the_title_on_frame_boundaries() -> None:
    excerpts = sample(media(duration=60.0), Fraction(25))
    assert len(excerpts) == 3
    assert all(e.duration == 2.0 for e in excerpts)
    assert [e.start for e in excerpts] == [9.0, 29.0, 49.0]
    long = sample(media(duration=3600.0), Fraction(30000, 1001))
    assert len(long) == 12
    assert all(math.isclose(e.start * 30000 / 1001, round(e.start * 30000 / 1001), abs_tol=1e-3)
               for e in long)


def test_a_source_too_short_to_sample_is_bad_input() -> None:
    with pytest.raises(InputError, match="too short to sample"):
        sample(media(duration=2.5), Fraction(25))


@pytest.mark.parametrize(("section", "message"), [
    ("targets: [95, 101]", "per_title.targets: VMAF targets must be within 0-100"),
    ("targets: [-1]", "per_title.targets: VMAF targets must be within 0-100"),
    ("targets: [88, 93, 95]", "per_title.targets: VMAF targets must be strictly descending"),
    ("targets: [93, 93]", "per_title.targets: VMAF targets must be strictly descending"),
    ("targets: []", "per_title.targets: must be a non-empty list of numbers"),
    ("codecs: [vp9]", "per_title.codecs: unknown codec 'vp9'"),
    ("min_bitrate: 2M\n  max_bitrate: 1M", "per_title.min_bitrate: is above max_bitrate"),
    ("floor_bitrate: 50k\n  min_bitrate: 100k", "per_title.floor_bitrate: must be within"),
    ("max_rungs: 0", "per_title.max_rungs: must be in"),
    ("resolutions: [720, 10]", "per_title.resolutions: heights must be within 64-4320"),
    ("speed: fast", "per_title.speed: unknown field"),
])
def test_per_title_section_errors_name_the_file_line_and_field(
    section: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "ladder.yaml"
    path.write_text(f"per_title:\n  {section}\n")
    with pytest.raises(InputError) as info:
        load_ladder(str(path))
    assert str(info.value).startswith(f"{path}:")
    assert message in str(info.value)


def test_a_per_title_ladder_file_reads_every_field(tmp_path: Path) -> None:
    path = tmp_path / "ladder.yaml"
    path.write_text("per_title:\n  codecs: [h264, av1]\n  targets: [96, 90, 75]\n"
                    "  resolutions: [720, 360]\n  min_bitrate: 80k\n  max_bitrate: 4M\n"
                    "  max_rungs: 4\n  floor_bitrate: 150k\nvideo: {preset: medium}\n")
    spec = load_ladder(str(path))
    assert spec.x264_preset == "medium"
    assert spec.rungs == ()
    assert spec.per_title == PerTitleSpec(("h264", "av1"), (96.0, 90.0, 75.0), (720, 360),
                                          80_000, 4_000_000, 4, 150_000)
    assert load_ladder("per-title").per_title == PerTitleSpec()
    path.write_text("per_title: {floor_bitrate: 0}\n")
    assert load_ladder(str(path)).per_title == PerTitleSpec(floor_bitrate=0)


def test_a_per_title_ladder_encodes_h264_at_faster_and_a_fixed_one_at_veryfast(
    tmp_path: Path
) -> None:
    """Per-title is asked for bytes (x264 `faster`: BENCHMARKS.md), fixed ladders for speed;
    a ladder file's own preset wins."""
    assert load_ladder("per-title").x264_preset == "faster"
    assert load_ladder("default").x264_preset == "veryfast"
    path = tmp_path / "ladder.yaml"
    path.write_text("per_title: {max_rungs: 4}\n")
    assert load_ladder(str(path)).x264_preset == "faster"
    path.write_text("per_title: {max_rungs: 4}\nvideo: {preset: veryfast}\n")
    assert load_ladder(str(path)).x264_preset == "veryfast"
