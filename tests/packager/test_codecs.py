"""The codec table: each codec's ffmpeg options under both rate controls, key frames at exactly
the shared segment plan in every encoder, and the builds checked for what a job needs."""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction
from pathlib import Path

import pytest

from packager.encoding.codecs import (
    CODECS,
    CappedQuality,
    CappedVBR,
    KeyFramePlan,
    check_build,
    codec_names,
    encoder_options,
    transcode_tool,
    video_codec,
)
from packager.encoding.ladder import Rendition
from packager.errors import InputError, ToolError
from packager.mp4.isobmff import TrackInfo
from packager.output.hls import multivariant_playlist
from packager.output.segmenter import CmafTrack, Segment
from packager.tools import find_tool
from tests.conftest import run

PLAN = KeyFramePlan((0.0, 1.52, 3.04), 100)


def test_every_codec_has_a_row_and_unknown_is_one_clear_line() -> None:
    assert {c: (v.encoder, v.sample_entry, v.config_box) for c, v in CODECS.items()} == {
        "h264": ("libx264", "avc1", "avcC"),
        "hevc": ("libx265", "hvc1", "hvcC"),
        "av1": ("libsvtav1", "av01", "av1C"),
    }
    with pytest.raises(InputError, match=r"^unknown codec 'vp9': use h264, hevc, av1$"):
        video_codec("vp9")
    with pytest.raises(InputError, match="given twice"):
        codec_names(["av1", "av1"])


def test_capped_vbr_options() -> None:
    rate = CappedVBR(1_000_000, 1_500_000, 2_000_000)
    x264 = encoder_options(CODECS["h264"], rate, PLAN, profile="high")
    assert x264 == {
        "c:v": "libx264", "preset": "veryfast", "profile:v": "high", "b:v": 1_000_000,
        "maxrate": 1_500_000, "bufsize": 2_000_000, "g": 100, "flags": "+cgop",
        "force_key_frames": "0.000000,1.520000,3.040000", "sc_threshold": 0,
    }
    x265 = encoder_options(CODECS["hevc"], rate, PLAN, preset="fast")
    assert x265["x265-params"] == "scenecut=0:open-gop=0:log-level=error"
    assert (x265["forced-idr"], x265["tag:v"], x265["preset"]) == (1, "hvc1", "fast")
    assert x265["maxrate"] == 1_500_000
    svt = encoder_options(CODECS["av1"], rate, PLAN)
    # SVT-AV1 refuses a maxrate outside CRF mode: its VBR is capped by the buffer only.
    assert "maxrate" not in svt
    assert (svt["b:v"], svt["bufsize"], svt["svtav1-params"]) == (1_000_000, 2_000_000, "scd=0")


def test_capped_quality_options() -> None:
    rate = CappedQuality(30, 1_500_000, 2_000_000)
    for codec in CODECS.values():
        options = encoder_options(codec, rate, PLAN)
        assert (options["crf"], options["maxrate"], options["bufsize"]) == (
            "30", 1_500_000, 2_000_000)
        assert "b:v" not in options
    assert encoder_options(CODECS["hevc"], CappedQuality(27.5, 1, 1), PLAN)["crf"] == "27.5"
    with pytest.raises(InputError, match=r"AV1 CRF 27.5 is outside 1..63 \(whole numbers\)"):
        encoder_options(CODECS["av1"], CappedQuality(27.5, 1, 1), PLAN)
    with pytest.raises(InputError, match=r"HEVC CRF 60 is outside 0\.\.51"):
        encoder_options(CODECS["hevc"], CappedQuality(60, 1, 1), PLAN)
    with pytest.raises(InputError, match="AV1 has no preset 'veryfast'"):
        encoder_options(CODECS["av1"], rate, PLAN, preset="veryfast")


def test_the_ladder_runs_in_ffmpeg_full_only_for_an_av1_source() -> None:
    every = list(CODECS.values())
    assert transcode_tool(every, "h264") == "ffmpeg"
    assert transcode_tool(every, "prores") == "ffmpeg"
    assert transcode_tool([CODECS["h264"]], "av1") == "ffmpeg-full"


def test_each_build_is_checked_for_the_encoders_and_decoders_the_job_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real builds: both have every encoder of the table; libvvenc (a real encoder only
    ffmpeg-full has) stands in for a codec the streamer build lacks; and the streamer build
    given as ffmpeg-full lacks the dav1d decoder an AV1 source needs."""
    every = list(CODECS.values())
    assert check_build("ffmpeg", every, "h264").name == "ffmpeg"
    assert check_build("ffmpeg-full", every, "av1").name == "ffmpeg-full"
    vvc = dataclasses.replace(CODECS["hevc"], name="vvc", label="VVC", encoder="libvvenc")
    check_build("ffmpeg-full", [vvc])
    streamer = find_tool("ffmpeg").path
    with pytest.raises(ToolError, match=rf"^ffmpeg \({streamer}\) lacks encoder libvvenc \(VVC\)$"):
        check_build("ffmpeg", [CODECS["h264"], vvc])
    monkeypatch.setenv("CDNPACK_FFMPEG_FULL", str(streamer))
    with pytest.raises(ToolError, match=r"^ffmpeg-full \(.*\) lacks decoder libdav1d \(the AV1 "
                                        r"source\)$"):
        check_build("ffmpeg-full", [CODECS["av1"]], "av1")


@pytest.fixture(scope="module")
def scene_cut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 s at 25 fps with a hard cut at 2.2 s, between two planned starts: an encoder left to
    its scene-cut detection puts a key frame there."""
    path = tmp_path_factory.mktemp("cut") / "cut.mp4"
    made = run(find_tool("ffmpeg").path, "-hide_banner", "-loglevel", "error",
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=2.2",
        "-f", "lavfi", "-i", "mandelbrot=size=320x180:rate=25,trim=duration=2.8",
        "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0,format=yuv420p",
        "-c:v", "libx264", "-preset", "ultrafast", "-qp", "10", str(path))
    assert made.returncode == 0, made.stderr
    return path


def key_frame_times(path: Path) -> list[float]:
    """Presentation times of the key frames, counted from the first presented frame."""
    result = run(find_tool("ffprobe").path, "-v", "error", "-show_entries",
                 "packet=pts_time,flags", "-of", "csv=p=0", path)
    packets = [line.split(",") for line in result.stdout.split()]
    first = min(float(pts) for pts, _ in packets)
    return [round(float(pts) - first, 3) for pts, flags in packets if "K" in flags]


@pytest.mark.slow
@pytest.mark.parametrize("codec", list(CODECS))
@pytest.mark.parametrize("rate", [CappedVBR(300_000, 450_000, 600_000),
                                  CappedQuality(30, 450_000, 600_000)], ids=["vbr", "quality"])
def test_key_frames_at_exactly_the_planned_starts_and_nowhere_else(
    codec: str, rate: CappedVBR | CappedQuality, scene_cut: Path, tmp_path: Path
) -> None:
    options = encoder_options(CODECS[codec], rate, PLAN)
    flat = [str(a) for k, v in options.items() for a in (f"-{k}", v)]
    out = tmp_path / f"{codec}.mp4"
    encoded = run(find_tool(CODECS[codec].tool).path, "-hide_banner", "-loglevel", "error",
                  "-i", scene_cut, *flat,
                  "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", out)
    assert encoded.returncode == 0, encoded.stderr
    assert key_frame_times(out) == [0.0, 1.52, 3.04]


def _track(rid: str, codec: str, entry: str, string: str, kbps: int,
           score: float | None = None) -> CmafTrack:
    """A video track as the manifest writers take it: two 2 s segments of `kbps`."""
    info = TrackInfo(1, "vide", 90_000, entry, string, 640, 360, 0, 0)
    segments = [Segment(n, f"seg_{n:05d}.m4s", (n - 1) * 180_000, (n - 1) * 180_000, 180_000,
                        kbps * 250, "", True) for n in (1, 2)]
    rendition = Rendition(rid, "video", codec, kbps * 1000, 640, 360, Fraction(25), score=score)
    return CmafTrack(rendition, rid, info, 0, "", segments)


def test_hls_starts_on_the_most_efficient_codec_and_writes_score() -> None:
    """Playback starts on the variant nearest 2 Mb/s of the most efficient codec offered (a
    player skips it if it cannot decode it); SCORE (RFC 8216bis §4.4.6.2) is the measured
    quality, on every variant or none ("if any Variant Stream contains the SCORE attribute,
    then all Variant Streams ... SHOULD have" it)."""
    tracks = [
        _track("video_360p", "h264", "avc1", "avc1.64001e", 2000, 91.0),
        _track("video_hevc_360p", "hevc", "hvc1", "hvc1.1.6.L63.90", 1400, 92.5),
        _track("video_av1_360p", "av1", "av01", "av01.0.04M.08", 1200, 93.25),
        _track("video_av1_180p", "av1", "av01", "av01.0.00M.08", 300, 70.5),
    ]
    text = multivariant_playlist(tracks).text
    entries = [line for line in text.splitlines() if line.startswith("#EXT-X-STREAM-INF")]
    assert 'CODECS="av01.0.04M.08"' in entries[0]
    scores = [re.search(r"SCORE=([0-9.]+)", e) for e in entries]
    assert sorted(m.group(1) for m in scores if m) == ["70.50", "91.00", "92.50", "93.25"]
    unmeasured = [*tracks[:3], _track("video_av1_180p", "av1", "av01", "av01.0.00M.08", 300)]
    assert "SCORE" not in multivariant_playlist(unmeasured).text
