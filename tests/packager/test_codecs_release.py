"""One release in three codecs: every rendition of every codec on one segment plan (the same
boundaries, a key frame exactly at each), one audio group and one set of text tracks, each
HLS variant with its exact CODECS and DASH one video AdaptationSet per codec, trick play and
thumbnails for all; HEVC and AV1 decode to every frame (Chromium has no HEVC: this is its
check)."""

from __future__ import annotations

import struct
from pathlib import Path

import m3u8
import pytest
from lxml import etree

from packager.encoding.thumbnails import parse_thumbnails
from packager.output.pipeline import PackageRequest, PackageResult, package
from packager.title.file import resolve_title
from packager.tools import find_tool
from tests.conftest import SEGMENT_SECONDS, concat, run
from tests.packager.cmaf_reader import av1_frame_kind, moov_of, numbered, track_samples

MPD = {"d": "urn:mpeg:dash:schema:mpd:2011"}
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def three_codecs(source_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> PackageResult:
    work = tmp_path_factory.mktemp("codecs")
    subtitles = work / "en.vtt"
    subtitles.write_text("WEBVTT\n\n00:00:00.500 --> 00:00:03.000\nHello\n\n"
                         "00:00:04.000 --> 00:00:05.500\nAgain\n")
    title = resolve_title(None, {"--subtitles": (f"en={subtitles}",)})
    return package(PackageRequest(
        source=source_clip, output=work / "out", ladder="compact",
        segment_duration=SEGMENT_SECONDS, codecs=("h264", "hevc", "av1"), title=title,
        thumbnails=parse_thumbnails("2s:2x2:90"),
    ))


def directories(result: PackageResult, kind: str) -> list[Path]:
    return [result.output / r.id for r in result.release.renditions if r.kind == kind]


def segment_starts(directory: Path) -> list[float]:
    """Each segment's tfdt, in seconds of the track's timescale."""
    timescale = _timescale(moov_of(directory / "init.mp4"))
    starts = []
    for segment in numbered(directory, "seg_*.m4s"):
        data = segment.read_bytes()
        tfdt = data.index(b"tfdt")
        version = data[tfdt + 4]
        (time,) = struct.unpack_from(">Q" if version else ">I", data, tfdt + 8)
        starts.append(time / timescale)
    return starts


def _timescale(moov: bytes) -> int:
    at = moov.index(b"mdhd")
    version = moov[at + 4]
    (timescale,) = struct.unpack_from(">I", moov, at + 8 + (16 if version else 8))
    return int(timescale)


def test_every_codec_is_encoded_at_every_rung(three_codecs: PackageResult) -> None:
    videos = {r.id: r.codec for r in three_codecs.release.renditions if r.kind == "video"}
    assert sorted(videos) == sorted([
        "video_360p", "video_240p", "video_hevc_360p", "video_hevc_240p", "video_av1_360p",
        "video_av1_240p"])
    for rid, codec in videos.items():
        expected = "hvc1" if "hevc" in rid else "av01" if "av1" in rid else "avc1"
        assert codec.startswith(f"{expected}."), (rid, codec)


def test_one_segment_plan_for_every_codec_audio_and_text(three_codecs: PackageResult) -> None:
    """The same boundaries in every video rendition of every codec, audio cut within one AAC
    frame of them, the text track cut into as many segments; each video segment opens on a
    key frame and holds no other (sample flags in trun)."""
    videos = directories(three_codecs, "video")
    plans = {d.name: segment_starts(d) for d in videos}
    reference = plans["video_360p"]
    assert reference == [0.0, 2.0, 4.0]
    assert all(plan == reference for plan in plans.values()), plans
    (audio,) = directories(three_codecs, "audio")
    assert all(abs(a - v) <= 1024 / 48000
               for a, v in zip(segment_starts(audio), reference, strict=True))
    (text,) = directories(three_codecs, "text")
    assert len(numbered(text, "seg_*.m4s")) == len(reference)
    for directory in videos:
        for segment in numbered(directory, "seg_*.m4s"):
            samples = track_samples(directory / "init.mp4", [segment])
            assert [s.is_sync for s, _ in samples] == [True] + [False] * (len(samples) - 1), (
                directory.name, segment.name)
            assert closed_gop_start(directory.name, samples[0][1]), (directory.name, segment.name)


def closed_gop_start(rendition: str, sample: bytes) -> bool:
    """The segment's first picture starts a closed GOP: an IDR (H.264 type 5; HEVC IDR_W_RADL
    19 or IDR_N_LP 20, not a CRA, whose leading pictures reach back, and no parameter sets
    in-band), or an AV1 shown key frame after a sequence header."""
    if "av1" in rendition:
        delimiter, sequence, key = av1_frame_kind(sample)
        return not delimiter and sequence and key
    pos, kinds = 0, []
    while pos < len(sample):
        size = int.from_bytes(sample[pos : pos + 4], "big")
        header = sample[pos + 4]
        kinds.append((header >> 1) & 0x3F if "hevc" in rendition else header & 0x1F)
        pos += 4 + size
    if "hevc" in rendition:
        # hvc1: VPS, SPS and PPS (32-34) live in hvcC only, never in the samples.
        slices = [k for k in kinds if k < 32]
        return bool(slices) and all(k in (19, 20) for k in slices) and not {32, 33, 34} & set(
            kinds)
    slices = [k for k in kinds if k in (1, 5)]
    return bool(slices) and all(k == 5 for k in slices)


def test_hls_variants_name_their_codecs_and_share_audio_and_text(
    three_codecs: PackageResult,
) -> None:
    master = m3u8.load(str(three_codecs.output / "master.m3u8"))
    codecs = {r.id: r.codec for r in three_codecs.release.renditions}
    assert len(master.playlists) == 6
    for variant in master.playlists:
        rid = variant.uri.split("/")[0]
        assert variant.stream_info.codecs == f"{codecs[rid]},mp4a.40.2"
        assert variant.stream_info.audio == "audio"
        assert variant.stream_info.subtitles == "subs"
    assert [m.type for m in master.media] == ["AUDIO", "SUBTITLES"]
    assert master.playlists[0].uri.startswith("video_av1_"), "start on the most efficient codec"
    iframes = {p.uri.split("/")[0] for p in master.iframe_playlists}
    assert iframes == {d.name for d in directories(three_codecs, "video")}
    assert "#EXT-X-IMAGE-STREAM-INF" in (three_codecs.output / "master.m3u8").read_text()


def test_dash_has_one_video_adaptation_set_per_codec(three_codecs: PackageResult) -> None:
    tree = etree.parse(str(three_codecs.output / "manifest.mpd"))
    sets = tree.findall(".//d:AdaptationSet", MPD)
    video = [s for s in sets if s.get("contentType") == "video"]
    codecs = [{r.get("codecs", "")[:4] for r in s.findall("d:Representation", MPD)}
              for s in video]
    assert codecs == [{"av01"}, {"hvc1"}, {"avc1"}]
    assert [s.get("selectionPriority") for s in video] == ["3", "2", "1"]
    assert [s.get("contentType") for s in sets].count("audio") == 1
    assert [s.get("contentType") for s in sets].count("text") == 1
    assert len({s.get("id") for s in sets}) == len(sets)


def test_hevc_and_av1_renditions_decode_to_every_frame(
    three_codecs: PackageResult, tmp_path: Path
) -> None:
    for directory in directories(three_codecs, "video"):
        joined = concat([directory / "init.mp4", *numbered(directory, "seg_*.m4s")],
                        tmp_path / f"{directory.name}.mp4")
        tool = "ffmpeg-full" if "av1" in directory.name else "ffmpeg"
        result = run(find_tool(tool).path, "-v", "error", "-i", joined, "-f", "framemd5", "-")
        assert result.returncode == 0, result.stderr[-300:]
        assert result.stderr == ""
        frames = [line for line in result.stdout.splitlines() if not line.startswith("#")]
        assert len(frames) == 150, directory.name
