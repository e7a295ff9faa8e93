"""Bad input gets one clear line and exit 2 with nothing left behind; odd input gets a release."""

from __future__ import annotations

import random
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import m3u8
import pytest

from packager.output.pipeline import PackageRequest, PackageResult, package
from packager.tools import find_tool
from testbed.clips import ClipSpec, make_clip
from tests.conftest import cdnpack_cli, concat, decode_errors, ffprobe_json

SMALL = ClipSpec(duration=4.0, width=320, height=180, frame_rate="25")


def ffmpeg_make(path: Path, *args: str) -> Path:
    tool = find_tool("ffmpeg")
    subprocess.run(
        [str(tool.path), "-v", "error", "-nostdin", "-y", *args, str(path)], check=True
    )
    return path


def truncated(source: Path, target: Path, keep: float) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


@pytest.fixture(scope="session")
def corpus(clips: Path) -> dict[str, Path]:
    """One file per kind of bad input a user might hand us."""
    plain = make_clip(clips / "plain.mp4", SMALL)
    faststart = make_clip(clips / "faststart.mp4", replace(SMALL, movflags="+faststart"))
    (clips / "empty.mp4").write_bytes(b"")
    # Seeded: some random byte strings happen to probe as a (broken) MP3 or raw stream.
    (clips / "random.mp4").write_bytes(random.Random(20261123).randbytes(64 * 1024))
    srt = clips / "subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    return {
        "missing": clips / "does-not-exist.mp4",
        "directory": clips,
        "zero bytes": clips / "empty.mp4",
        "random bytes": clips / "random.mp4",
        "truncated, moov at end": truncated(plain, clips / "trunc-end.mp4", 0.6),
        "truncated, moov first": truncated(faststart, clips / "trunc-fast.mp4", 0.5),
        "no audio or video": ffmpeg_make(clips / "subs.mkv", "-i", str(srt)),
    }


EXPECTED = {
    "missing": "no such file",
    "directory": "is a directory",
    "zero bytes": "empty (0 bytes)",
    "random bytes": "not readable media",
    "truncated, moov at end": "moov atom not found",
    "truncated, moov first": "truncated",
    "no audio or video": "no audio or video stream",
}


def leftovers(parent: Path, name: str) -> list[Path]:
    return [p for p in parent.iterdir() if p.name == name or p.name.startswith(f".{name}.")]


@pytest.mark.parametrize("case", list(EXPECTED))
def test_bad_input_is_one_clear_line_exit_2_and_nothing_left(
    case: str, corpus: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "release"
    result = cdnpack_cli("package", corpus[case], "-o", out, "--ladder", "compact")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cdnpack: error: ")
    assert EXPECTED[case] in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert leftovers(tmp_path, "release") == []


def test_copy_refuses_codecs_players_cannot_take(clips: Path, tmp_path: Path) -> None:
    source = ffmpeg_make(
        clips / "mpeg4.mp4", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
        "-f", "lavfi", "-i", "sine", "-t", "2", "-c:v", "mpeg4", "-c:a", "libmp3lame",
    )
    result = cdnpack_cli("package", source, "-o", tmp_path / "out", "--copy")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"cdnpack: error: --copy needs H.264, HEVC or AV1 video; {source} has mpeg4"
    )
    assert leftovers(tmp_path, "out") == []


def test_existing_output_is_refused_without_force_and_replaced_with_it(
    source_clip: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    keep = out / "precious.txt"
    keep.write_text("do not lose me")
    refused = cdnpack_cli("package", source_clip, "-o", out, "--ladder", "compact")
    assert refused.returncode == 2
    assert "already exists (use --force" in refused.stderr
    assert keep.read_text() == "do not lose me"
    replaced = cdnpack_cli("package", source_clip, "-o", out, "--ladder", "compact", "--force",
                           "--json")
    assert replaced.returncode == 0, replaced.stderr
    assert not keep.exists()
    assert (out / "release.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_bad_ladder_file_names_the_file_line_and_field(
    source_clip: Path, tmp_path: Path
) -> None:
    ladder = tmp_path / "ladder.yaml"
    ladder.write_text("video:\n  rungs:\n    - {height: 720, bitrate: fast}\n")
    result = cdnpack_cli("package", source_clip, "-o", tmp_path / "out", "--ladder", ladder)
    assert result.returncode == 2
    assert f"{ladder}:3: video.rungs[0].bitrate: 'fast' is not a bitrate" in result.stderr


def package_small(source: Path, tmp_path: Path, **kw: object) -> PackageResult:
    request = PackageRequest(
        source=source, output=tmp_path / "out", ladder="compact", segment_duration=2.0, **kw  # type: ignore[arg-type]
    )
    return package(request)


def assert_plays(result: PackageResult) -> None:
    """Every rendition decodes cleanly end to end and its playlist lists what is on disk."""
    for info in result.release.renditions:
        directory = result.output / info.id
        parts = [directory / "init.mp4", *sorted(directory.glob("seg_*.m4s"))]
        assert decode_errors(concat(parts, directory.parent / f"{info.id}.check.mp4")) == ""
        (directory.parent / f"{info.id}.check.mp4").unlink()
        playlist = m3u8.load(str(directory / "playlist.m3u8"))
        assert len(playlist.segments) == info.segments


def test_audio_only_source_gives_an_audio_release(clips: Path, tmp_path: Path) -> None:
    source = make_clip(clips / "audio-only.m4a", replace(SMALL, video=False))
    result = package_small(source, tmp_path)
    assert [r.kind for r in result.release.renditions] == ["audio"]
    assert_plays(result)
    master = m3u8.load(str(result.output / "master.m3u8"))
    assert master.playlists[0].stream_info.codecs == "mp4a.40.2"


def test_video_only_source_gives_a_video_release(clips: Path, tmp_path: Path) -> None:
    source = make_clip(clips / "video-only.mp4", replace(SMALL, audio=False))
    result = package_small(source, tmp_path)
    assert {r.kind for r in result.release.renditions} == {"video"}
    assert_plays(result)
    master = m3u8.load(str(result.output / "master.m3u8"))
    assert master.media == [] or len(master.media) == 0
    assert all(p.stream_info.audio is None for p in master.playlists)


def test_odd_frame_size_gives_even_dimensions_with_the_same_aspect(
    clips: Path, tmp_path: Path
) -> None:
    source = make_clip(clips / "odd.mp4", replace(SMALL, width=1281, height=721, duration=2.0))
    result = package_small(source, tmp_path)
    videos = [r for r in result.release.renditions if r.kind == "video"]
    assert [v.height for v in videos] == [720, 360, 240]
    for v in videos:
        assert v.width % 2 == 0
        assert v.height % 2 == 0
        assert abs(v.width / v.height - 1281 / 721) < 2 / v.height
    assert_plays(result)


def first_segments(result: PackageResult, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(rendition id, init + first segment as one file) for each video rendition."""
    for info in result.release.renditions:
        if info.kind == "video":
            directory = result.output / info.id
            parts = [directory / "init.mp4", directory / "seg_00001.m4s"]
            yield info.id, concat(parts, tmp_path / f"{info.id}-first.mp4")


def test_ten_bit_source_becomes_eight_bit_h264(clips: Path, tmp_path: Path) -> None:
    source = make_clip(clips / "ten.mp4", replace(SMALL, pix_fmt="yuv420p10le"))
    result = package_small(source, tmp_path)
    assert_plays(result)
    for _, joined in first_segments(result, tmp_path):
        stream = ffprobe_json(joined, "-show_streams")["streams"][0]
        assert stream["pix_fmt"] == "yuv420p"


def test_variable_frame_rate_source_becomes_constant_rate(clips: Path, tmp_path: Path) -> None:
    source = make_clip(clips / "vfr.mp4", replace(SMALL, variable_frame_rate=True))
    result = package_small(source, tmp_path)
    assert_plays(result)
    for _, joined in first_segments(result, tmp_path):
        packets = ffprobe_json(joined, "-show_entries", "packet=duration")["packets"]
        assert {p["duration"] for p in packets} == {3600}  # 90 kHz / 25 fps, every frame


@pytest.mark.parametrize(
    ("codec", "fourcc"), [("libx264", "avc1"), ("libx265", "hvc1")], ids=["h264", "hevc"]
)
def test_copy_repackages_without_transcoding(
    codec: str, fourcc: str, clips: Path, tmp_path: Path
) -> None:
    source = make_clip(clips / f"copy-{codec}.mp4", replace(SMALL, video_codec=codec))
    result = package_small(source, tmp_path, copy=True)
    assert_plays(result)
    video = next(r for r in result.release.renditions if r.kind == "video")
    assert video.codec.startswith(f"{fourcc}.")
    ((_, joined),) = first_segments(result, tmp_path)
    stream = ffprobe_json(joined, "-show_streams")["streams"][0]
    if fourcc == "avc1":
        assert stream["mime_codec_string"] == video.codec
    else:  # ffprobe has no HEVC codec string: check Annex E's profile and level fields
        _, profile, _, tier_level, *_ = video.codec.split(".")
        assert (profile, stream["profile"]) == ("1", "Main")
        assert tier_level == f"L{stream['level']}"
    assert (video.width, video.height) == (SMALL.width, SMALL.height)
