"""Codecs at the command line: bad codec choices are one line and exit 2 with nothing written,
a build lacking what the job needs is exit 3 naming it; AV1 and HEVC sources are taken
(transcoded through ffmpeg-full's dav1d, or copied: from MP4 and MOV by our demuxer, from
MKV/WebM through the ffmpeg remux), and a ladder file names its codecs."""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from packager.encoding.thumbnails import parse_thumbnails
from packager.output.pipeline import PackageRequest, package
from packager.tools import find_tool
from testbed.clips import ClipSpec, make_clip
from tests.conftest import cdnpack_cli

KEY = "00112233445566778899aabbccddeeff:0123456789abcdef0123456789abcdef"
SMALL = ClipSpec(duration=3.0, width=320, height=180, keyframe_interval=25)


def one_line_error(result: subprocess.CompletedProcess[str], code: int, text: str,
                   out: Path) -> None:
    """Exit `code`, one line on stderr saying `text`, and nothing written, not even aside."""
    assert result.returncode == code, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert text in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert not any(p.name.startswith(f".{out.name}.") for p in out.parent.iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--codec", "vp9"], "cdnpack: error: unknown codec 'vp9': use h264, hevc, av1"),
        (["--codec", "av1", "--codec", "av1"], "--codec: a codec is given twice"),
        (["--codec", "av1", "--copy"], "--codec chooses what a transcode encodes"),
        (["--codec", "hevc", "--encrypt", "aes-128", "--format", "hls", "--key", KEY,
          "--key-uri", "https://keys.example/k"], "package hevc as CMAF"),
    ],
)
def test_bad_codec_choices_are_one_line_and_exit_2(
    source_clip: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "out"
    result = cdnpack_cli("package", source_clip, "-o", out, *args)
    one_line_error(result, 2, message, out)


@pytest.fixture(scope="module")
def av1_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("av1src") / "av1.mp4",
                     replace(SMALL, video_codec="libsvtav1"))


@pytest.mark.slow
def test_a_build_without_dav1d_for_an_av1_source_is_exit_3_naming_it(
    av1_source: Path, tmp_path: Path
) -> None:
    """The streamer ffmpeg (a real build) given as ffmpeg-full lacks the AV1 decoder."""
    out = tmp_path / "out"
    streamer = str(find_tool("ffmpeg").path)
    env = {**os.environ, "CDNPACK_FFMPEG_FULL": streamer}
    result = cdnpack_cli("package", av1_source, "-o", out, "--ladder", "compact", env=env)
    one_line_error(result, 3, f"ffmpeg-full ({streamer}) lacks decoder libdav1d (the AV1 "
                              "source)", out)


@pytest.mark.slow
def test_an_av1_source_is_transcoded_and_copied_with_thumbnails(
    av1_source: Path, tmp_path: Path
) -> None:
    """ffmpeg-full decodes it (dav1d) for the ladder; --copy keeps it and draws the
    thumbnails with seeks in ffmpeg-full."""
    ladder = package(PackageRequest(source=av1_source, output=tmp_path / "ladder",
                                    ladder="compact", segment_duration=2))
    assert {r.codec[:4] for r in ladder.release.renditions if r.kind == "video"} == {"avc1"}
    copied = package(PackageRequest(source=av1_source, output=tmp_path / "copy", copy=True,
                                    segment_duration=2, thumbnails=parse_thumbnails("1s:2x2:90")))
    (video,) = [r for r in copied.release.renditions if r.kind == "video"]
    assert video.codec.startswith("av01.0.")
    assert copied.release.thumbnails
    assert list((tmp_path / "copy").rglob("*.jpg"))


@pytest.mark.slow
@pytest.mark.parametrize(("codec", "container", "entry"), [
    # ffmpeg writes AV1 in MP4 only ("av1 only supported in MP4 and AVIF"): no AV1 MOV.
    ("libx265", "mov", "hvc1"), ("libsvtav1", "webm", "av01"), ("libsvtav1", "mkv", "av01"),
    ("libx265", "mkv", "hvc1"),
])
def test_copy_takes_av1_and_hevc_from_mov_and_matroska(
    codec: str, container: str, entry: str, tmp_path: Path
) -> None:
    audio = "libopus" if container == "webm" else "aac"
    source = make_clip(tmp_path / f"src.{container}",
                       replace(SMALL, video_codec=codec, audio=container != "webm",
                               audio_codec=audio))
    result = package(PackageRequest(source=source, output=tmp_path / "out", copy=True,
                                    segment_duration=2))
    (video,) = [r for r in result.release.renditions if r.kind == "video"]
    assert video.codec.startswith(f"{entry}.")
    assert video.segments == 2


@pytest.mark.slow
def test_a_ladder_file_names_its_codecs(source_clip: Path, tmp_path: Path) -> None:
    ladder = tmp_path / "ladder.yaml"
    ladder.write_text("codecs: [h264, av1]\nvideo:\n  presets: {av1: 12}\n  rungs:\n"
                      "    - {height: 180, bitrate: 300k}\n")
    result = cdnpack_cli("package", source_clip, "-o", tmp_path / "out", "--ladder", ladder,
                         "--segment-duration", "2", "--json")
    assert result.returncode == 0, result.stderr
    videos = sorted(p.name for p in (tmp_path / "out").iterdir() if p.name.startswith("video"))
    assert videos == ["video_180p", "video_av1_180p"]
