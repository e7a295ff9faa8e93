"""Thumbnail tile sheets: each cell shows the source picture at its time (transcode and --copy),
sheets of the grid's size, and HLS (m3u8) and DASH (lxml) signalling that agrees with
release.json; bad --thumbnails values are refused in one line."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import m3u8
import pytest
from lxml import etree

from packager.encoding.media import probe
from packager.encoding.thumbnails import ThumbnailSpec, plan_thumbnails
from packager.encoding.transcode import draw_thumbnails
from packager.output.pipeline import PackageRequest, PackageResult, package
from packager.tools import find_tool
from testbed.clips import ClipSpec, make_clip
from tests.conftest import SEGMENT_SECONDS, SOURCE_SPEC, cdnpack_cli, ffprobe_json

#: One a second in 2x2 sheets: the 6 s clip makes six thumbnails, a full sheet and half a one.
SPEC = ThumbnailSpec(interval=1.0, columns=2, rows=2, height=90)
WIDTH = 160  # 90 pixels high at 16:9
FPS = 25
MPD_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}


@pytest.fixture(scope="session", params=["transcode", "copy"])
def thumbnailed(
    request: pytest.FixtureRequest, source_clip: Path, tmp_path_factory: pytest.TempPathFactory
) -> PackageResult:
    """Transcoded (the sheets are a branch of the ladder's ffmpeg graph) or copied (a decode of
    their own)."""
    out = tmp_path_factory.mktemp(f"thumbnails-{request.param}") / "out"
    return package(PackageRequest(source=source_clip, output=out, ladder="compact",
                                  segment_duration=SEGMENT_SECONDS,
                                  copy=request.param == "copy", thumbnails=SPEC))


def luma(path: Path, *filters: str) -> bytes:
    """The 8-bit luma planes of every picture of `path`, back to back."""
    return subprocess.run(
        [str(find_tool("ffmpeg").path), "-v", "error", "-nostdin", "-i", str(path),
         "-vf", ",".join([*filters, "format=gray"]), "-f", "rawvideo", "-"],
        capture_output=True, check=True,
    ).stdout


def cells(sheet: bytes) -> list[bytes]:
    """A sheet's thumbnails, left to right, top to bottom."""
    row_bytes = WIDTH * SPEC.columns
    found = []
    for row in range(SPEC.rows):
        for column in range(SPEC.columns):
            found.append(b"".join(
                sheet[(row * SPEC.height + y) * row_bytes + column * WIDTH:][:WIDTH]
                for y in range(SPEC.height)
            ))
    return found


def distance(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def test_sheets_are_jpegs_of_the_whole_grid(thumbnailed: PackageResult) -> None:
    (summary,) = thumbnailed.release.thumbnails
    thumbnails = math.ceil(SOURCE_SPEC.duration / SPEC.interval)
    assert summary.sheets == math.ceil(thumbnails / SPEC.per_sheet) == 2
    assert (summary.width, summary.height) == (WIDTH, SPEC.height)
    for number in range(1, summary.sheets + 1):
        (stream,) = ffprobe_json(thumbnailed.output / summary.id / f"tile_{number:05d}.jpg",
                                 "-show_streams")["streams"]
        assert stream["codec_name"] == "mjpeg"
        assert (stream["width"], stream["height"]) == (WIDTH * SPEC.columns,
                                                       SPEC.height * SPEC.rows)


def test_each_thumbnail_shows_the_source_picture_at_its_time(
    thumbnailed: PackageResult,
) -> None:
    """Thumbnail k is the source frame at k x interval: of the source pictures around that
    time, scaled alike, it is closest to exactly that one. Cells past the end stay black."""
    (summary,) = thumbnailed.release.thumbnails
    frame_bytes = WIDTH * SPEC.height
    source = luma(thumbnailed.media.path, f"scale={WIDTH}:{SPEC.height}")
    pictures = [source[i : i + frame_bytes] for i in range(0, len(source), frame_bytes)]
    assert len(pictures) == SOURCE_SPEC.duration * FPS
    drawn = [cell for n in range(1, summary.sheets + 1)
             for cell in cells(luma(thumbnailed.output / summary.id / f"tile_{n:05d}.jpg"))]
    count = math.ceil(SOURCE_SPEC.duration / SPEC.interval)
    for k, cell in enumerate(drawn[:count]):
        expected = round(k * SPEC.interval * FPS)
        window = range(max(0, expected - FPS // 2), min(len(pictures), expected + FPS // 2))
        best = min(window, key=lambda i: distance(cell, pictures[i]))
        assert best == expected, (k, best)
    for cell in drawn[count:]:
        assert max(cell) < 32  # the tile filter's black padding (JPEG ringing aside)
    assert len(drawn) - count == summary.sheets * SPEC.per_sheet - count > 0


def test_hls_image_playlist_agrees_with_release_json(thumbnailed: PackageResult) -> None:
    release = json.loads((thumbnailed.output / "release.json").read_text())
    (summary,) = release["thumbnails"]
    files = {f["path"]: f for f in release["files"]}
    multivariant = m3u8.load(str(thumbnailed.output / "master.m3u8"))
    (entry,) = multivariant.image_playlists
    info = entry.image_stream_info
    assert entry.uri == summary["playlist"]
    assert files[entry.uri]["role"] == "image-playlist"
    assert info.resolution == (summary["width"], summary["height"])
    assert info.codecs == "jpeg"
    assert info.bandwidth == summary["bandwidth"] > 0
    playlist = m3u8.load(str(thumbnailed.output / entry.uri))
    assert playlist.is_images_only
    assert playlist.is_endlist
    assert len(playlist.segments) == summary["sheets"]
    assert sum(s.duration for s in playlist.segments) == pytest.approx(release["duration"],
                                                                       abs=1e-3)
    assert playlist.segments[0].duration == SPEC.sheet_seconds
    assert playlist.data["tiles"] == [
        {"resolution": f"{summary['width']}x{summary['height']}",
         "layout": f"{summary['columns']}x{summary['rows']}", "duration": summary["interval"]}
    ] * summary["sheets"]
    for segment in playlist.segments:
        path = f"{summary['id']}/{segment.uri}"
        assert files[path]["role"] == "image"
        assert files[path]["bytes"] == (thumbnailed.output / path).stat().st_size


def test_dash_image_adaptation_set_agrees_with_release_json(thumbnailed: PackageResult) -> None:
    """DASH-IF IOP §6.2.6: contentType image, the thumbnail_tile EssentialProperty with the
    grid, a Representation as large as a sheet, one sheet per segment, every one listed."""
    release = json.loads((thumbnailed.output / "release.json").read_text())
    (summary,) = release["thumbnails"]
    mpd = etree.parse(str(thumbnailed.output / "manifest.mpd"))
    (adaptation,) = mpd.findall(".//d:AdaptationSet[@contentType='image']", MPD_NS)
    assert adaptation.get("mimeType") == "image/jpeg"
    ids = [a.get("id") for a in mpd.findall(".//d:AdaptationSet", MPD_NS)]
    assert len(ids) == len(set(ids))
    (rep,) = adaptation.findall("d:Representation", MPD_NS)
    assert rep.get("id") == summary["id"]
    assert int(rep.get("bandwidth")) == summary["bandwidth"]
    assert (int(rep.get("width")), int(rep.get("height"))) == (
        summary["width"] * summary["columns"], summary["height"] * summary["rows"])
    (tile,) = rep.findall("d:EssentialProperty", MPD_NS)
    assert tile.get("schemeIdUri") == "http://dashif.org/thumbnail_tile"
    assert tile.get("value") == f"{summary['columns']}x{summary['rows']}"
    template = rep.find("d:SegmentTemplate", MPD_NS)
    assert template is not None
    timescale = int(template.get("timescale"))
    (s,) = template.findall("d:SegmentTimeline/d:S", MPD_NS)
    assert int(s.get("d")) / timescale == summary["interval"] * summary["columns"] * summary["rows"]
    assert int(s.get("r", "0")) + 1 == summary["sheets"]
    listed = {f["path"] for f in release["files"] if f["role"] == "image"}
    start = int(template.get("startNumber"))
    media = template.get("media")
    assert {media.replace("$Number%05d$", f"{n:05d}")
            for n in range(start, start + summary["sheets"])} == listed


def test_an_aes128_release_signals_its_sheets_too(
    source_clip: Path, tmp_path: Path
) -> None:
    key = tmp_path / "aes.key"
    key.write_bytes(bytes(16))
    done = cdnpack_cli("package", source_clip, "-o", tmp_path / "out", "--ladder", "compact",
                       "--encrypt", "aes-128", "--key", f"{'1' * 32}:{'2' * 32}",
                       "--key-uri", "https://keys.example/k", "--format", "hls",
                       "--thumbnails", "3s:2x1:64", "--json")
    assert done.returncode == 0, done.stderr
    (summary,) = json.loads(done.stdout)["thumbnails"]
    multivariant = m3u8.load(str(tmp_path / "out" / "master.m3u8"))
    (entry,) = multivariant.image_playlists
    assert entry.uri == summary["playlist"] == "thumbnails_64p/images.m3u8"
    assert len(m3u8.load(str(tmp_path / "out" / entry.uri)).segments) == summary["sheets"] == 1


@pytest.mark.parametrize("value", ["0s", "10x", "10s:0x5", "10s:5x5:241", "10s:5x5:4000",
                                   "ten seconds"])
def test_a_bad_thumbnails_value_is_one_line_exit_2_and_nothing_written(
    source_clip: Path, tmp_path: Path, value: str
) -> None:
    out = tmp_path / "out"
    done = cdnpack_cli("package", source_clip, "-o", out, "--thumbnails", value)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("cdnpack: error: --thumbnails"), line
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_thumbnails_of_a_source_without_video_are_refused(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "audio.mp4", ClipSpec(duration=2.0, video=False))
    done = cdnpack_cli("package", source, "-o", tmp_path / "out", "--thumbnails", "1s")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "--thumbnails needs a video stream" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio.mp4"]


@pytest.mark.slow  # twenty packages in a row
def test_copy_thumbnails_are_tiled_every_time(source_clip: Path, tmp_path: Path) -> None:
    """--copy joins its seeks' pictures with concat, which leaves them 1/51200 s apart: the
    tile filter's sheets then reached the JPEG encoder with equal time stamps at random ("Invalid
    pts (0) <= last (0)", exit 234) in about one run in four. Twenty runs in a row all succeed."""
    media = probe(source_clip)
    for run in range(20):
        work = tmp_path / f"run{run}"
        work.mkdir()
        plan = plan_thumbnails(SPEC, media, work)
        draw_thumbnails(media, plan, work)
        assert sorted(p.name for p in plan.directory.iterdir()) == [
            "tile_00001.jpg", "tile_00002.jpg"]
