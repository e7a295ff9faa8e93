"""The segment plan is made before encoding: key frames sit exactly on segment starts, and a
folded last segment holds no key frame of its own."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from packager.encoding.segments import force_key_frames, segment_starts
from packager.output.pipeline import PackageRequest, package
from packager.tools import find_tool
from testbed.clips import ClipSpec, make_clip
from tests.conftest import concat, run


def test_starts_every_segment_and_fold_a_short_tail() -> None:
    assert segment_starts(13.0, 4.0) == [0.0, 4.0, 8.0]  # 12-13 s folds into 8-13 s
    assert segment_starts(14.0, 4.0) == [0.0, 4.0, 8.0, 12.0]  # 2 s is half: kept
    assert segment_starts(3.0, 4.0) == [0.0]


def test_starts_move_to_the_first_frame_at_or_after_them() -> None:
    ntsc = Fraction(30000, 1001)
    starts = segment_starts(10.0, 4.0, ntsc)
    assert starts[1] == pytest.approx(120 * 1001 / 30000)  # frame 120 is at 4.004 s
    assert segment_starts(10.0, 4.0, Fraction(25)) == [0.0, 4.0, 8.0]  # 4 s is a frame: kept


def test_key_frames_are_forced_at_each_start() -> None:
    assert force_key_frames([0.0, 4.004, 8.008]) == "0.000000,4.004000,8.008000"


@pytest.fixture(scope="module")
def thirteen_seconds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    clip = make_clip(tmp_path_factory.mktemp("plan") / "13s.mp4",
                     ClipSpec(duration=13.0, width=640, height=360, frame_rate="25"))
    out = tmp_path_factory.mktemp("plan-release") / "out"
    package(PackageRequest(source=clip, output=out, ladder="compact", segment_duration=4.0))
    return out


def key_frame_times(directory: Path, work: Path) -> list[float]:
    joined = concat([directory / "init.mp4", *sorted(directory.glob("seg_*.m4s"))],
                    work / f"{directory.name}.mp4")
    result = run(find_tool("ffprobe").path, "-v", "error", "-skip_frame", "nokey",
                 "-select_streams", "v:0", "-show_entries", "frame=pts_time",
                 "-of", "default=nw=1:nk=1",
                 joined)
    times = [float(line) for line in result.stdout.split() if line.strip()]
    return [round(t - times[0], 3) for t in times]


def test_every_key_frame_is_a_segment_start(thirteen_seconds: Path, tmp_path: Path) -> None:
    videos = sorted(p for p in thirteen_seconds.iterdir() if p.name.startswith("video_"))
    assert len(videos) >= 2
    for directory in videos:
        assert len(list(directory.glob("seg_*.m4s"))) == 3, directory.name
        assert key_frame_times(directory, tmp_path) == [0.0, 4.0, 8.0], directory.name
