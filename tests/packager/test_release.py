"""A packaged release, checked the way players and independent parsers see it."""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import m3u8
import pytest
from lxml import etree

from packager.encoding.ladder import PRESETS
from packager.output.pipeline import PackageResult
from packager.output.release import read_release
from tests.conftest import SEGMENT_SECONDS, SOURCE_SPEC, concat, decode_errors, ffprobe_json

MPD_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
FRAME = 1 / float(Fraction(SOURCE_SPEC.frame_rate))


def rendition_dirs(result: PackageResult, kind: str | None = None) -> list[Path]:
    return [
        result.output / r.id for r in result.release.renditions if kind is None or r.kind == kind
    ]


def segments_of(directory: Path) -> list[Path]:
    return sorted(directory.glob("seg_*.m4s"))


def first_frame(path: Path) -> dict[str, Any]:
    doc = ffprobe_json(
        path, "-select_streams", "0", "-show_entries", "frame=key_frame,pict_type,pts_time",
        "-read_intervals", "%+#1",
    )
    frames: list[dict[str, Any]] = doc["frames"]
    return frames[0]


def test_every_segment_decodes_on_its_own(packaged: PackageResult, tmp_path: Path) -> None:
    for directory in rendition_dirs(packaged):
        for segment in segments_of(directory):
            joined = concat([directory / "init.mp4", segment], tmp_path / "one.mp4")
            assert decode_errors(joined) == "", f"{segment} does not decode cleanly"


def test_each_video_segment_starts_with_a_keyframe(packaged: PackageResult, tmp_path: Path) -> None:
    for directory in rendition_dirs(packaged, "video"):
        for segment in segments_of(directory):
            frame = first_frame(concat([directory / "init.mp4", segment], tmp_path / "one.mp4"))
            assert int(frame["key_frame"]) == 1, f"{segment} starts with {frame['pict_type']}"
            assert frame["pict_type"] == "I"


def segment_starts(directory: Path, tmp_path: Path) -> list[float]:
    """Segment start times as ffprobe decodes them, relative to the track's first segment.

    ffmpeg's mov demuxer shifts a track with negative composition offsets (trun v1, B-frames)
    by -min(offset), so its absolute origin is not the file's; the spacing is what counts.
    """
    starts = [
        float(first_frame(concat([directory / "init.mp4", s], tmp_path / "one.mp4"))["pts_time"])
        for s in segments_of(directory)
    ]
    return [round(t - starts[0], 6) for t in starts]


def test_segment_boundaries_are_identical_across_video_renditions(
    packaged: PackageResult, tmp_path: Path
) -> None:
    starts = {d.name: segment_starts(d, tmp_path) for d in rendition_dirs(packaged, "video")}
    assert len(starts) >= 2
    reference = next(iter(starts.values()))
    assert reference == pytest.approx([i * SEGMENT_SECONDS for i in range(len(reference))])
    for name, values in starts.items():
        assert values == reference, f"{name} boundaries differ"


def test_audio_segments_follow_video_boundaries_within_one_aac_frame(
    packaged: PackageResult, tmp_path: Path
) -> None:
    video = segment_starts(rendition_dirs(packaged, "video")[0], tmp_path)
    audio = segment_starts(rendition_dirs(packaged, "audio")[0], tmp_path)
    assert len(audio) == len(video)
    aac_frame = 1024 / 48000
    for a, v in zip(audio, video, strict=True):
        assert abs(a - v) <= aac_frame / 2 + 1e-6


def test_summed_segment_durations_equal_source_duration_within_one_frame(
    packaged: PackageResult,
) -> None:
    master = m3u8.load(str(packaged.output / "master.m3u8"))
    for playlist in master.playlists:
        media = m3u8.load(str(packaged.output / playlist.uri))
        total = sum(s.duration for s in media.segments)
        assert abs(total - SOURCE_SPEC.duration) <= FRAME, playlist.uri


def test_hls_parses_and_agrees_with_release_json(packaged: PackageResult) -> None:
    release = packaged.release
    by_id = {r.id: r for r in release.renditions}
    files = {f.path: f for f in release.files}
    master = m3u8.load(str(packaged.output / "master.m3u8"))
    assert master.is_variant
    audio = [r for r in release.renditions if r.kind == "audio"]
    audio_peak = audio[0].bandwidth
    assert len(master.playlists) == len([r for r in release.renditions if r.kind == "video"])
    for variant in master.playlists:
        rid = variant.uri.split("/")[0]
        info = by_id[rid]
        attrs = variant.stream_info
        assert attrs.bandwidth == info.bandwidth + audio_peak
        assert attrs.resolution == (info.width, info.height)
        assert attrs.codecs == f"{info.codec},{audio[0].codec}"
        assert attrs.frame_rate == pytest.approx(25.0)
        assert attrs.audio == "audio"
        assert files[variant.uri].role == "media-playlist"
    (media_audio,) = master.media
    assert media_audio.type == "AUDIO"
    assert media_audio.uri.split("/")[0] == audio[0].id
    for playlist_path in [f.path for f in release.files if f.role == "media-playlist"]:
        media = m3u8.load(str(packaged.output / playlist_path))
        assert media.playlist_type == "vod"
        assert media.is_endlist
        assert media.is_independent_segments
        assert media.version == 6
        rid = playlist_path.split("/")[0]
        assert media.segment_map[0].uri == "init.mp4"
        assert files[f"{rid}/init.mp4"].role == "init"
        uris = [f"{rid}/{s.uri}" for s in media.segments]
        listed = [p for p, f in files.items() if f.role == "segment" and f.rendition == rid]
        assert uris == sorted(listed)
        # RFC 8216 §4.3.3.1: each EXTINF rounded to nearest integer <= EXT-X-TARGETDURATION
        assert all(int(s.duration + 0.5) <= media.target_duration for s in media.segments)
        assert media.target_duration == max(int(s.duration + 0.5) for s in media.segments)
        assert len(media.segments) == by_id[rid].segments


def test_mpd_parses_and_agrees_with_release_json(packaged: PackageResult) -> None:
    tree = etree.parse(str(packaged.output / "manifest.mpd"))
    root = tree.getroot()
    assert root.get("type") == "static"
    by_id = {r.id: r for r in packaged.release.renditions}
    reps = root.findall(".//d:Representation", MPD_NS)
    assert {r.get("id") for r in reps} == set(by_id)
    sets = root.findall(".//d:AdaptationSet", MPD_NS)
    assert sorted(s.get("contentType") for s in sets) == ["audio", "video"]
    for rep in reps:
        info = by_id[rep.get("id")]
        assert rep.get("codecs") == info.codec
        assert int(rep.get("bandwidth")) == info.bandwidth
        template = rep.find("d:SegmentTemplate", MPD_NS)
        timescale = int(template.get("timescale"))
        count = 0
        total = 0
        for s in template.findall("d:SegmentTimeline/d:S", MPD_NS):
            repeat = int(s.get("r", "0")) + 1
            count += repeat
            total += repeat * int(s.get("d"))
        assert count == info.segments
        assert total / timescale == pytest.approx(info.duration, abs=1e-6)
        media = template.get("media").replace("$Number%05d$", "00001")
        assert (packaged.output / media).is_file()
        assert (packaged.output / template.get("initialization")).is_file()
    duration = root.get("mediaPresentationDuration")
    assert float(duration.removeprefix("PT").removesuffix("S")) == pytest.approx(
        packaged.release.duration, abs=1e-3
    )


H264_PROFILE_IDC = {"High": 0x64, "Main": 0x4D, "Constrained Baseline": 0x42, "Baseline": 0x42}


def test_codecs_strings_match_ffprobe_profile_and_level(
    packaged: PackageResult, tmp_path: Path
) -> None:
    for info in packaged.release.renditions:
        directory = packaged.output / info.id
        joined = concat([directory / "init.mp4", directory / "seg_00001.m4s"], tmp_path / "a.mp4")
        stream = ffprobe_json(joined, "-show_streams")["streams"][0]
        assert stream["mime_codec_string"] == info.codec
        if info.kind == "video":
            fourcc, hexcode = info.codec.split(".")
            assert fourcc == "avc1"
            assert int(hexcode[0:2], 16) == H264_PROFILE_IDC[stream["profile"]]
            assert int(hexcode[4:6], 16) == stream["level"]
            assert (info.width, info.height) == (stream["width"], stream["height"])
        else:
            assert stream["codec_name"] == "aac"
            assert stream["profile"] == "LC"
            assert info.codec == "mp4a.40.2"


def test_release_json_lists_every_file_with_true_size_and_sha256(packaged: PackageResult) -> None:
    doc = json.loads((packaged.output / "release.json").read_text())
    listed = {f["path"]: f for f in doc["files"]}
    on_disk = {
        p.relative_to(packaged.output).as_posix()
        for p in packaged.output.rglob("*")
        if p.is_file()
    } - {"release.json"}
    assert set(listed) == on_disk
    for path, entry in listed.items():
        data = (packaged.output / path).read_bytes()
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    roles = {f["role"] for f in doc["files"]}
    assert roles == {"multivariant", "media-playlist", "mpd", "init", "segment", "iframe-playlist"}


def test_release_json_reads_back_as_the_release_written(packaged: PackageResult) -> None:
    assert read_release(packaged.output) == packaged.release


def test_ladder_never_upscales_and_keeps_aspect(packaged: PackageResult) -> None:
    videos = [r for r in packaged.release.renditions if r.kind == "video"]
    assert max(v.height for v in videos) <= SOURCE_SPEC.height
    for v in videos:
        assert v.width % 2 == 0
        assert v.height % 2 == 0
        assert v.width / v.height == pytest.approx(16 / 9, abs=0.01)


def test_peak_bitrate_respects_the_vbv_cap(packaged: PackageResult) -> None:
    """maxrate is 1.5x the target with a 2 s buffer: a 2 s segment can't exceed ~2.5x."""
    targets = {f"video_{r.height}p": r.bitrate for r in PRESETS["compact"].rungs}
    for info in packaged.release.renditions:
        if info.id in targets:
            assert info.bandwidth <= 2.5 * targets[info.id], info.id
