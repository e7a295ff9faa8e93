"""Ladder rules: never upscale, keep the display aspect, even sizes, clear YAML errors."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

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
