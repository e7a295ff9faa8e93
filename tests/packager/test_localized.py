"""Localized releases: every audio language and text track, on the video's segment plan, with
the right language, role and flags, and the cue text carried byte-exact."""

from __future__ import annotations

import array
import itertools
import logging
import subprocess
from pathlib import Path

import pysubs2
import pytest

from packager.encoding.ladder import Rendition, load_ladder, plan_renditions
from packager.encoding.media import probe
from packager.encoding.transcode import build_ladder_command
from packager.mp4.isobmff import find_box, parse_track_info
from packager.output.pipeline import PackageRequest, PackageResult, package
from packager.output.release import read_release
from packager.output.text_track import within, write_text_track
from packager.text.cues import Cue, TextTrack
from packager.title.file import resolve_title
from packager.title.localize import localize, text_renditions
from packager.tools import find_tool
from testbed.subtitles import LINES, expected
from tests.conftest import SEGMENT_SECONDS, TONES, LocalizedInputs
from tests.packager.wvtt_reader import segment_cues

AAC_FRAME = 1024 / 48000


def test_every_audio_stream_side_file_and_text_is_a_track_with_language_role_flags(
    localized: PackageResult,
) -> None:
    got = {(r.kind, r.language, r.role, tuple(r.flags), r.name)
           for r in read_release(localized.output).renditions if r.kind != "video"}
    assert got == {
        ("audio", "en", "main", ("default",), "English"),
        ("audio", "es", "dub", (), "Español"),
        ("audio", "fr", "dub", (), "Français"),
        ("audio", "en", "description", (), "English (AD)"),
        ("text", "ja", "subtitle", (), "日本語"),
        ("text", "ar", "subtitle", (), "العربية"),
        ("text", "th", "subtitle", (), "ไทย"),
        ("text", "he", "subtitle", (), "עברית"),
        ("text", "en", "forced-subtitle", ("default", "forced"), "English (forced)"),
        ("text", "en", "caption", (), "English (SDH)"),
    }


def test_all_audio_languages_are_encoded_in_the_one_ffmpeg_process(
    localized_inputs: LocalizedInputs, tmp_path: Path
) -> None:
    media = probe(localized_inputs.source)
    title = resolve_title(None, localized_inputs.options)
    spec = load_ladder("compact")
    planned = localize(title, media, 2.0).tracks
    renditions = plan_renditions(spec, media, [t for t in planned if t.kind == "audio"])
    renditions += text_renditions(planned)
    args, encoded = build_ladder_command(media, renditions, 2.0, tmp_path)
    inputs = [args[i + 1] for i, a in enumerate(args) if a == "-i"]
    assert inputs == [str(localized_inputs.source), *(str(Path(v.split("=", 1)[1])) for v in (
        *localized_inputs.options["--audio"], *localized_inputs.options["--described-audio"]))]
    assert sum(e.rendition.kind == "audio" for e in encoded) == 4
    assert sum(e.rendition.kind == "text" for e in encoded) == 1  # the source's ja stream


def _starts(track_dir: Path, release: PackageResult, rid: str) -> list[float]:
    """Each segment's tfdt, in seconds."""
    init = (track_dir / "init.mp4").read_bytes()
    moov = find_box(init, [b"moov"])
    assert moov is not None
    scale = parse_track_info(init[moov.offset:moov.end]).timescale
    summary = next(r for r in read_release(release.output).renditions if r.id == rid)
    starts = []
    for n in range(1, summary.segments + 1):
        cues_or_boxes = (track_dir / f"seg_{n:05d}.m4s").read_bytes()
        tfdt = find_box(cues_or_boxes, [b"moof", b"traf", b"tfdt"])
        assert tfdt is not None
        starts.append(int.from_bytes(cues_or_boxes[tfdt.body + 4:tfdt.body + 12], "big") / scale)
    return starts


def test_every_audio_and_text_track_is_cut_on_the_video_segment_starts(
    localized: PackageResult,
) -> None:
    renditions = read_release(localized.output).renditions
    video = next(r for r in renditions if r.kind == "video")
    video_starts = _starts(localized.output / video.id, localized, video.id)
    assert len(video_starts) == 3
    checked = 0
    for r in renditions:
        if r.kind == "video":
            continue
        starts = _starts(localized.output / r.id, localized, r.id)
        assert len(starts) == len(video_starts), r.id
        tolerance = AAC_FRAME if r.kind == "audio" else 0.0005
        assert all(abs(a - b) <= tolerance for a, b in zip(starts, video_starts, strict=True)), (
            r.id, starts, video_starts)
        checked += 1
    assert checked == 10


@pytest.mark.parametrize(("rid", "tone"), [
    ("audio_en_aac_96k", TONES["en"]), ("audio_es_dub_aac_96k", TONES["es"]),
    ("audio_fr_dub_aac_96k", TONES["fr"]),
    ("audio_en_description_aac_96k", TONES["en-description"]),
])
def test_each_audio_language_plays_its_own_stream(
    localized: PackageResult, rid: str, tone: int
) -> None:
    ffmpeg = find_tool("ffmpeg").path
    directory = localized.output / rid
    joined = directory.parent.parent / f"{rid}.mp4"
    joined.write_bytes((directory / "init.mp4").read_bytes()
                       + (directory / "seg_00002.m4s").read_bytes())
    pcm = subprocess.run([str(ffmpeg), "-v", "error", "-i", str(joined), "-ac", "1", "-ar",
                          "48000", "-f", "s16le", "-"], capture_output=True, check=True).stdout
    samples = array.array("h", pcm)
    assert len(samples) > 48000  # a 2 s segment decodes to about 96,000 samples
    # The median pitch of 50 ms windows, from zero crossings: the tone, not its 40 ms beeps.
    window = 2400
    pitches = sorted(
        sum(1 for a, b in itertools.pairwise(samples[i:i + window]) if (a < 0) != (b < 0))
        / 2 / (window / 48000) for i in range(0, len(samples) - window, window))
    pitch = pitches[len(pitches) // 2]
    assert abs(pitch - tone) / tone < 0.03, (rid, pitch, tone)


def _webvtt_segments(track_dir: Path) -> list[Path]:
    return sorted(track_dir.glob("seg_*.vtt"))


def test_hls_webvtt_segments_map_timestamps_and_repeat_cues_crossing_a_boundary(
    localized: PackageResult,
) -> None:
    """RFC 8216 §3.5: every WebVTT segment has X-TIMESTAMP-MAP; a cue spanning segments is in
    each of them, with its own times (the Arabic cue of 1.5-2.6 s is in segments 1 and 2)."""
    segments = _webvtt_segments(localized.output / "text_ar")
    assert len(segments) == 3
    for segment in segments:
        assert segment.read_text().splitlines()[1] == "X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000"
    crossing = LINES["ar"][1]
    holding = [s.name for s in segments if crossing in s.read_text()]
    assert holding == ["seg_00001.vtt", "seg_00002.vtt"]
    for name in holding:
        cues = pysubs2.SSAFile.from_string((localized.output / "text_ar" / name).read_text())
        assert [(e.start, e.end) for e in cues if e.plaintext == crossing] == [(1500, 2600)]


@pytest.mark.parametrize("language", ["ar", "th", "he", "en"])
def test_cue_text_is_carried_byte_exact_in_utf8(localized: PackageResult, language: str) -> None:
    """Whatever the side file's format and encoding (SRT, UTF-16 WebVTT, TTML, ASS), the
    words reach both forms (WebVTT for HLS, wvtt for DASH) as the same UTF-8 bytes."""
    rid = {"en": "text_en_caption"}.get(language, f"text_{language}")
    directory = localized.output / rid
    webvtt = b"".join(p.read_bytes() for p in _webvtt_segments(directory))
    wvtt = [text for p in sorted(directory.glob("seg_*.m4s")) for _, _, text in segment_cues(p)]
    for line in LINES[language]:
        assert line.encode("utf-8") in webvtt, line
        assert any(line in text for text in wvtt), line


def test_wvtt_samples_show_the_same_cues_at_the_same_times_as_the_webvtt(
    localized: PackageResult,
) -> None:
    directory = localized.output / "text_th"
    from_wvtt = sorted({cue for p in sorted(directory.glob("seg_*.m4s"))
                        for cue in segment_cues(p)})
    joined: list[tuple[int, int, str]] = []
    for start, end, text in from_wvtt:  # a cue cut at a segment edge is one cue again
        if joined and joined[-1][2] == text and joined[-1][1] == start:
            joined[-1] = (joined[-1][0], end, text)
        else:
            joined.append((start, end, text))
    assert [(c.start, c.end, c.text) for c in expected("th")] == sorted(joined)


def test_srt_styling_and_webvtt_positioning_survive(localized: PackageResult) -> None:
    arabic = (localized.output / "text_ar" / "seg_00001.vtt").read_text()
    assert f"<i>{LINES['ar'][0]}</i>" in arabic
    second = (localized.output / "text_ar" / "seg_00002.vtt").read_text()
    assert f"<b>{LINES['ar'][2]}</b>" in second
    thai = (localized.output / "text_th" / "seg_00001.vtt").read_text()
    assert "00:00:00.500 --> 00:00:01.800 position:10% align:start\n" + LINES["th"][0] in thai
    assert "00:00:01.500 --> 00:00:02.600 line:0\n" + LINES["th"][1] in thai


def test_the_source_text_stream_is_converted_to_webvtt(localized: PackageResult) -> None:
    japanese = "".join(p.read_text() for p in _webvtt_segments(localized.output / "text_ja"))
    for line in LINES["ja"]:
        assert line in japanese


def test_text_is_never_encrypted(localized_inputs: LocalizedInputs, tmp_path: Path) -> None:
    from packager.keys.source import keyed_request  # noqa: PLC0415
    out = tmp_path / "out"
    encryption = keyed_request("cbcs", "generate", out, keystore=tmp_path / "keys",
                               per_class=True, drm="clearkey")
    title = resolve_title(None, {"--subtitles": localized_inputs.options["--subtitles"][:1],
                                 "--audio": localized_inputs.options["--audio"]})
    result = package(PackageRequest(source=localized_inputs.source, output=out,
                                    ladder="compact", segment_duration=SEGMENT_SECONDS,
                                    title=title, encryption=encryption, formats=("hls",)))
    release = read_release(result.output)
    assert release.protection is not None
    kids = release.protection.rendition_kids
    audio = [r.id for r in release.renditions if r.kind == "audio"]
    assert len(audio) == 3
    # The AUDIO key class: every language shares one KID, not the video's.
    assert len({kids[a] for a in audio}) == 1
    assert kids[audio[0]] != kids["video_180p"]
    text = [r.id for r in release.renditions if r.kind == "text"]
    assert text
    assert not set(text) & set(kids)
    for rid in text:
        init = (out / rid / "init.mp4").read_bytes()
        assert b"sinf" not in init
        assert b"pssh" not in init
        assert b"wvtt" in init
        assert "EXT-X-KEY" not in (out / rid / "playlist.m3u8").read_text()


def test_cues_past_the_end_are_dropped_with_a_warning_and_overlaps_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = TextTrack((Cue(0, 1500, "one"), Cue(1000, 2500, "overlaps one"),
                      Cue(3500, 5000, "runs past the end"), Cue(4200, 4800, "after the end")))
    with caplog.at_level(logging.WARNING):
        kept = within(text, 4000, Path("late.vtt"))
    assert "late.vtt: 1 cue(s) start after the video ends (4.000 s): dropped" in caplog.text
    assert [(c.start, c.end, c.text) for c in kept.cues] == [
        (0, 1500, "one"), (1000, 2500, "overlaps one"), (3500, 4000, "runs past the end")]
    rendition = Rendition(id="text_en", kind="text", codec="wvtt", bitrate=0, language="en")
    track = write_text_track(rendition, kept, tmp_path, [0, 2000], 4000)
    first = (tmp_path / "text_en" / "seg_00001.vtt").read_text()
    assert "one" in first
    assert "overlaps one" in first
    assert [s.duration for s in track.segments] == [2000, 2000]
    assert segment_cues(tmp_path / "text_en" / "seg_00001.m4s") == [
        (0, 1500, "one"), (1000, 2000, "overlaps one")]
