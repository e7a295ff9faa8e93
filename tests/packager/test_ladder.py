"""Ladder rules: never upscale, keep the display aspect, even sizes, clear YAML errors."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from packager.encoding.codecs import CappedQuality, CappedVBR
from packager.encoding.ladder import PRESETS, load_ladder, plan_renditions
from packager.encoding.media import AudioStream, MediaInfo, VideoStream, output_frame_rate
from packager.errors import InputError


def media(width: int, height: int, sar: Fraction = Fraction(1)) -> MediaInfo:
    video = VideoStream(0, "h264", "High", 40, width, height, sar, Fraction(25), False,
                        "yuv420p", 8)
    audio = AudioStream(1, "aac", "LC", 6, 48000, "ja")
    return MediaInfo(Path("x.mp4"), "mp4", 10.0, 1, video, (audio,))


def test_no_rung_is_taller_than_the_source() -> None:
    heights = [r.height for r in plan_renditions(PRESETS["default"], media(1280, 720))
               if r.kind == "video"]
    assert heights == [720, 540, 480, 360, 240]


def test_a_source_below_every_rung_keeps_its_own_height_made_even() -> None:
    videos = [r for r in plan_renditions(PRESETS["default"], media(200, 113)) if r.kind == "video"]
    assert [(v.width, v.height) for v in videos] == [(198, 112)]  # 112 * 200/113 = 198.2


def test_anamorphic_source_is_scaled_to_square_pixels_at_display_aspect() -> None:
    # 720x576 with SAR 64:45 is a 16:9 PAL picture
    videos = [r for r in plan_renditions(PRESETS["default"], media(720, 576, Fraction(64, 45)))
              if r.kind == "video"]
    assert videos[0].height == 540
    assert videos[0].width == 960


def test_audio_keeps_language_and_caps_channels_at_the_ladder() -> None:
    (audio,) = [r for r in plan_renditions(PRESETS["default"], media(640, 360))
                if r.kind == "audio"]
    assert audio.language == "ja"
    assert audio.channels == 2


def test_vbv_cap_is_set_on_every_rung() -> None:
    for r in plan_renditions(PRESETS["default"], media(1920, 1080)):
        if r.kind == "video":
            assert r.maxrate == r.bitrate * 3 // 2
            assert r.bufsize == 2 * r.bitrate


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", ":1: ladder file: top level must be a mapping"),
        ("video: {rungs: []}", ":1: video.rungs: must be a non-empty list"),
        ("video: {rungs: [{height: 10, bitrate: 1M}]}", ":1: video.rungs[0].height: must be"),
        ("video: {rungs: [{height: 720, bitrate: 1M, profile: ultra}]}",
         ":1: video.rungs[0].profile: must be one of"),
        ("video: {preset: warp, rungs: [{height: 720, bitrate: 1M}]}",
         ":1: video.preset: must be one of"),
        ("video: {rungs: [{height: 720, bitrate: 1M}]}\naudio: {channels: 12}",
         ":2: audio.channels: must be in"),
        ("video:\n  rungs:\n    - {height: 720, bitrate: 1M}\n    - {height: 720, bitrate: 2M}\n",
         ":2: video.rungs: two rungs of the same height"),
        ("video:\n  rungs:\n    - height: 720\n      bitrate: fast\n",
         ":4: video.rungs[0].bitrate: 'fast' is not a bitrate"),
        ("video: [", "not valid YAML"),
        ("codecs: [h264, vp9]\nvideo: {rungs: [{height: 720, bitrate: 1M}]}",
         ":1: codecs: unknown codec 'vp9' (use h264, hevc, av1)"),
        ("codecs: [av1, av1]\nvideo: {rungs: [{height: 720, bitrate: 1M}]}",
         ":1: codecs: a codec is listed twice"),
        ("codecs: av1\nvideo: {rungs: [{height: 720, bitrate: 1M}]}",
         ":1: codecs: must be a non-empty list like [h264, av1]"),
        ("video:\n  presets: {av1: 14}\n  rungs: [{height: 720, bitrate: 1M}]",
         ":2: video.presets.av1: must be one of 0, 1,"),
        ("video:\n  presets: {vp9: good}\n  rungs: [{height: 720, bitrate: 1M}]",
         ":2: video.presets.vp9: unknown field (allowed: av1, hevc)"),
    ],
)
def test_ladder_file_errors_name_the_file_line_and_field(
    text: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "ladder.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=r".*") as info:
        load_ladder(str(path))
    assert str(info.value).startswith(f"{path}:")
    assert message in str(info.value)


def test_a_valid_ladder_file_is_sorted_tallest_first(tmp_path: Path) -> None:
    path = tmp_path / "ladder.yaml"
    path.write_text(
        "name: shorts\nvideo:\n  preset: faster\n  rungs:\n"
        "    - {height: 360, bitrate: 800k}\n    - {height: 720, bitrate: 2.5M}\n"
        "audio: {bitrate: 96k}\n"
    )
    spec = load_ladder(str(path))
    assert [(r.height, r.bitrate, r.profile) for r in spec.rungs] == [
        (720, 2_500_000, "high"), (360, 800_000, "main"),
    ]
    assert spec.x264_preset == "faster"
    assert spec.audio_bitrate == 96_000


def test_unknown_preset_name_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="unknown ladder 'huge'"):
        load_ladder("huge")


@pytest.mark.parametrize(
    ("base", "average", "expected"),
    [
        (Fraction(30), Fraction(2917, 100), Fraction(30)),  # phone VFR: the base rate
        (Fraction(30000, 1001), Fraction(30000, 1001), Fraction(30000, 1001)),
        (Fraction(90000), Fraction(24), Fraction(24)),  # timebase as r_frame_rate
        (Fraction(120), Fraction(120), Fraction(60)),  # capped
        (Fraction(10), Fraction(10), Fraction(10)),  # unusual but constant: kept
    ],
)
def test_output_frame_rate(base: Fraction, average: Fraction, expected: Fraction) -> None:
    assert output_frame_rate(base, average) == expected


def test_a_ladder_file_names_its_codecs_and_their_presets(tmp_path: Path) -> None:
    path = tmp_path / "ladder.yaml"
    path.write_text("codecs: [h264, av1]\nvideo:\n  presets: {av1: 10, hevc: medium}\n"
                    "  rungs:\n    - {height: 360, bitrate: 1M}\n")
    spec = load_ladder(str(path))
    assert spec.codecs == ("h264", "av1")
    assert spec.presets == (("av1", "10"), ("hevc", "medium"))


def test_every_rung_in_every_codec_at_its_rate() -> None:
    """H.264 keeps its ids; another codec's rungs are named for it, at its rate_factor of the
    rung's bitrate; AV1 is capped quality (its VBR cannot honour a maxrate)."""
    videos = [r for r in plan_renditions(PRESETS["compact"], media(1280, 720),
                                         codecs=["h264", "hevc", "av1"]) if r.kind == "video"]
    assert [(r.id, r.codec, r.bitrate, r.preset, r.profile) for r in videos] == [
        ("video_720p", "h264", 2_500_000, "veryfast", "high"),
        ("video_360p", "h264", 700_000, "veryfast", "main"),
        ("video_240p", "h264", 300_000, "veryfast", "main"),
        ("video_hevc_720p", "hevc", 1_750_000, "fast", "main"),
        ("video_hevc_360p", "hevc", 490_000, "fast", "main"),
        ("video_hevc_240p", "hevc", 210_000, "fast", "main"),
        ("video_av1_720p", "av1", 1_500_000, "8", "main"),
        ("video_av1_360p", "av1", 420_000, "8", "main"),
        ("video_av1_240p", "av1", 180_000, "8", "main"),
    ]
    av1 = videos[-1].rate_control
    assert av1 == CappedQuality(35, 180_000, 360_000)
    assert videos[0].rate_control == CappedVBR(2_500_000, 3_750_000, 5_000_000)
