"""A per-title release, end to end: what it measured, what it chose, what it records and
signals, and that an independent libvmaf run on the delivered renditions agrees with it."""

from __future__ import annotations

import itertools
import json
import logging
import re
from dataclasses import replace
from pathlib import Path

import pytest

from packager.encoding.ladder import load_ladder
from packager.encoding.media import probe
from packager.encoding.per_title import analyse, plan_analysis
from packager.encoding.per_title_spec import PerTitleSpec
from packager.encoding.placement import rendition_id
from packager.output.pipeline import PackageRequest, PackageResult, package
from packager.output.release import RenditionSummary, read_release
from packager.quality.hull import RatePoint
from packager.quality.trials import run_trial
from packager.tools import find_tool
from render.package import package_doc, show_package
from render.quality import rate_quality_section
from tests.conftest import SEGMENT_SECONDS, cdnpack_cli, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def per_title(source_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> PackageResult:
    out = tmp_path_factory.mktemp("per-title") / "out"
    return package(PackageRequest(source=source_clip, output=out, ladder="per-title",
                                  segment_duration=SEGMENT_SECONDS, vmaf=True))


def videos(result: PackageResult) -> list[RenditionSummary]:
    return [r for r in result.release.renditions if r.kind == "video"]


def independent_vmaf(release: Path, rendition: str, source: Path, viewing: str,
                     work: Path) -> float:
    """libvmaf as anyone would run it: the delivered init + segments joined into one file,
    scaled to the viewing size, against the source; the pooled mean of its own log."""
    doc = json.loads((release / "release.json").read_text())
    files = sorted((f for f in doc["files"] if f["rendition"] == rendition
                    and f["role"] in ("init", "segment")), key=lambda f: (f["role"] != "init",
                                                                          f["path"]))
    joined = work / f"{rendition}.mp4"
    joined.write_bytes(b"".join((release / f["path"]).read_bytes() for f in files))
    log = work / f"{rendition}.json"
    width, height = viewing.split("x")
    done = run(find_tool("ffmpeg-full").path, "-v", "error", "-nostdin", "-i", joined,
               "-i", source, "-lavfi",
               f"[0:v]scale={width}:{height}:flags=bicubic[d];"
               f"[d][1:v]libvmaf=model=version=vmaf_v0.6.1:log_fmt=json:log_path={log}",
               "-f", "null", "-")
    assert done.returncode == 0, done.stderr[-500:]
    return float(json.loads(log.read_text())["pooled_metrics"]["vmaf"]["mean"])


def test_every_video_rendition_records_its_codec_and_measured_vmaf(
    per_title: PackageResult
) -> None:
    assert len(videos(per_title)) >= 3
    for r in videos(per_title):
        assert r.codec.startswith("avc1.")
        assert r.vmaf is not None
        assert r.vmaf.model == "vmaf_v0.6.1"
        assert 0 < r.vmaf.p5 <= r.vmaf.mean <= 100
        assert r.vmaf.frames == 150  # every frame of the 6 s, 25 fps source


def test_the_recorded_vmaf_matches_an_independent_libvmaf_run(
    per_title: PackageResult, source_clip: Path, tmp_path: Path
) -> None:
    quality = per_title.release.quality
    assert quality is not None
    for r in videos(per_title):
        assert r.vmaf is not None
        theirs = independent_vmaf(per_title.output, r.id, source_clip, quality.viewing, tmp_path)
        assert abs(theirs - r.vmaf.mean) <= 1.0, (r.id, theirs, r.vmaf.mean)


def test_rungs_meet_their_targets_and_cost_less_the_lower_they_are(
    per_title: PackageResult
) -> None:
    rungs = sorted(videos(per_title), key=lambda r: -r.average_bandwidth)
    targets = [r.vmaf_target for r in rungs if r.vmaf_target is not None]
    assert targets == sorted(targets, reverse=True)
    assert targets[0] == 95.0
    for better, worse in itertools.pairwise(rungs):
        assert better.vmaf is not None
        assert worse.vmaf is not None
        assert better.vmaf.mean > worse.vmaf.mean  # no rung costs more for less
    for r in rungs:
        if r.vmaf_target is not None:
            assert r.vmaf is not None
            assert r.vmaf.mean >= r.vmaf_target


def test_the_bottom_rung_serves_slow_links_and_states_its_vmaf(per_title: PackageResult) -> None:
    bottom = min(videos(per_title), key=lambda r: r.average_bandwidth)
    assert bottom.average_bandwidth <= 200_000 * 1.1  # the floor, as delivered
    assert bottom.vmaf is not None
    assert bottom.vmaf.mean > 0


def test_release_json_records_the_hull_the_ladder_was_chosen_from(
    per_title: PackageResult
) -> None:
    doc = read_release(per_title.output)
    assert doc == per_title.release
    quality = doc.quality
    assert quality is not None
    assert quality.per_title is not None
    analysis = quality.per_title
    assert quality.viewing == "640x360"
    assert analysis.rate_control == "capped-crf"
    assert {(p.width, p.height) for p in analysis.points} == {(640, 360), (426, 240)}
    hull = [(p.bitrate, p.vmaf) for p in analysis.hull]
    assert hull == sorted(hull)
    assert len(hull) >= 2
    assert {r.rendition for r in analysis.rungs} == {r.id for r in videos(per_title)}
    assert analysis.analysis_cpu_seconds > 0
    assert len(analysis.excerpts) == 3


def test_identical_source_gives_an_identical_ladder(
    per_title: PackageResult, source_clip: Path, tmp_path: Path
) -> None:
    quality = per_title.release.quality
    assert quality is not None
    assert quality.per_title is not None
    spec = load_ladder("per-title")
    assert spec.per_title is not None
    media = probe(source_clip)
    assert media.video is not None
    again = analyse(PerTitleSpec(codecs=("h264",)), spec, media,
                    media.video.frame_rate, SEGMENT_SECONDS, tmp_path)
    recorded = quality.per_title
    assert [RatePoint(p.codec, p.width, p.height, p.quality, p.bitrate, p.vmaf, p.vmaf_p5)
            for p in recorded.points] == list(again.points)
    assert [rendition_id(r) for r in again.rungs] == [r.rendition for r in recorded.rungs]
    assert [r.crf for r in again.rungs] == [r.crf for r in recorded.rungs]


def test_hls_variants_carry_the_measured_vmaf_as_score(per_title: PackageResult) -> None:
    text = (per_title.output / "master.m3u8").read_text()
    scores = {uri: float(score) for score, uri in
              re.findall(r"SCORE=([\d.]+)[^\n]*\n([^\n#]+)/playlist\.m3u8", text)}
    assert scores == {r.id: round(r.vmaf.mean, 2) for r in videos(per_title) if r.vmaf}


def test_package_json_and_verbose_table_show_the_hull(
    per_title: PackageResult, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = package_doc(per_title)
    assert doc["quality"]["per_title"]["hull"]
    assert all(r["vmaf"] for r in doc["renditions"] if r["kind"] == "video")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    try:
        show_package(per_title)
    finally:
        root.setLevel(level)
    out = capsys.readouterr().out
    assert "per-title hull" in out
    assert "640x360" in out
    assert "rungs placed on it" in out


def test_the_report_draws_the_curves_per_resolution_with_the_rungs_marked(
    per_title: PackageResult
) -> None:
    section = rate_quality_section(per_title.release)
    assert "<svg class='rate-quality'" in section
    assert "<script" not in section
    assert section.count("class='rung'") == len(videos(per_title))
    assert "h264 360p (trial encodes)" in section
    assert "h264 240p (trial encodes)" in section
    assert "h264 convex hull" in section


def test_the_quality_command_measures_what_packaging_recorded(
    per_title: PackageResult, source_clip: Path
) -> None:
    done = cdnpack_cli("quality", per_title.output, "--source", source_clip, "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["passed"]
    assert doc["viewing"] == "640x360"
    for row in doc["renditions"]:
        assert row["vmaf"] == pytest.approx(row["recorded"], abs=1e-3)
        assert row["bits_per_vmaf_point"] == pytest.approx(row["bitrate"] / row["vmaf"], rel=1e-3)


@pytest.mark.parametrize("codec", ["h264", "hevc", "av1"])
def test_a_trial_gives_the_same_bits_and_scores_every_time(
    codec: str, source_clip: Path, tmp_path: Path
) -> None:
    """Encoders pinned to one thread: the same excerpt, the same bits, on any machine."""
    spec = load_ladder("per-title")
    media = probe(source_clip)
    assert media.video is not None
    plan = plan_analysis(PerTitleSpec(codecs=(codec,), resolutions=(240,)), spec, media,
                         media.video.frame_rate, SEGMENT_SECONDS, tmp_path)
    job = replace(plan.jobs[0], encodes=plan.jobs[0].encodes[:2])
    first, second = run_trial(job), run_trial(replace(job, name="again"))
    assert first == second
    assert all(s.bits > 0 and len(s.scores) == 17 for s in first)  # 50 frames, every 3rd
