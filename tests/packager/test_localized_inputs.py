"""Bad localized input, through the real command line: one line naming the file (and the line,
for text and title files), exit 2, nothing written."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from packager.text.read import read_text_file
from testbed.clips import ClipSpec, make_clip, make_dub
from testbed.subtitles import expected, write_subtitles
from tests.conftest import LocalizedInputs, cdnpack_cli

#: Dubs and side files muxed by ffmpeg per case: seconds in all, so `make test`'s.
pytestmark = pytest.mark.slow

#: (case, options builder (directory, inputs) -> extra args, what stderr must say).
Case = tuple[str, Callable[[Path, LocalizedInputs], list[str]], str]


def _file(d: Path, name: str, text: str) -> Path:
    (d / name).write_text(text, encoding="utf-8")
    return d / name


def _side(i: LocalizedInputs, option: str) -> str:
    """The file of a side option of the localized inputs."""
    return i.options[option][0].split("=", 1)[1]


BAD_SRT = "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,000 --> 00:0x:04,000\nbad\n"
BAD_VTT = "WEBVTT\n\n00:01.000 --> 00:02.000\nok\n\n00:03.5 --> 00:04.000\nbad\n"


def bad_ttml(d: Path) -> Path:
    good = write_subtitles(d / "x.ttml", "he", "ttml").read_text()
    return _file(d, "bad.ttml", good.replace("dur=", 'dur="x" x='))


def mute(d: Path) -> Path:
    return make_clip(d / "mute.mp4", ClipSpec(duration=6, width=160, height=90, audio=False))


CASES: list[Case] = [
    ("missing file", lambda d, i: ["--subtitles", f"ar={d / 'nope.srt'}"],
     "{d}/nope.srt: no such file (from --subtitles ar={d}/nope.srt)"),
    ("empty file", lambda d, i: ["--captions", f"en={_file(d, 'empty.vtt', '')}"],
     "{d}/empty.vtt: file is empty (0 bytes)"),
    ("not utf-8",
     lambda d, i: ["--subtitles", f"ar={write_subtitles(d / 'cp.srt', 'ar', 'srt', 'cp1256')}"],
     "{d}/cp.srt:3: not UTF-8 text"),
    ("malformed srt timestamp",
     lambda d, i: ["--subtitles", f"fr={_file(d, 'bad.srt', BAD_SRT)}"],
     "{d}/bad.srt:6: malformed timestamp in '00:00:03,000 --> 00:0x:04,000'"),
    ("malformed webvtt timestamp",
     lambda d, i: ["--forced-subtitles", f"en={_file(d, 'bad.vtt', BAD_VTT)}"],
     "{d}/bad.vtt:6: malformed timestamp in '00:03.5 --> 00:04.000'"),
    ("malformed ttml time", lambda d, i: ["--subtitles", f"he={bad_ttml(d)}"],
     "{d}/bad.ttml:12: malformed time dur='x'"),
    ("invalid tag",
     lambda d, i: ["--subtitles", f"e_s-419x={write_subtitles(d / 'a.srt', 'en', 'srt')}"],
     "--subtitles e_s-419x={d}/a.srt: 'e_s-419x' is not a BCP 47 language tag"),
    ("unknown tag", lambda d, i: ["--audio", f"en-XX={_side(i, '--audio')}"],
     "'en-XX' is not a known language tag"),
    ("same language and role twice",
     lambda d, i: ["--subtitles", f"ar={write_subtitles(d / 'a.srt', 'ar', 'srt')}",
                   "--subtitles", f"ar={write_subtitles(d / 'b.vtt', 'ar', 'vtt')}"],
     "--subtitles ar={d}/b.vtt: ar subtitle is given twice (also --subtitles ar={d}/a.srt)"),
    ("a side file repeating a source stream",
     lambda d, i: ["--audio", f"es={_side(i, '--audio')}"],
     "es dub audio is already in the release"),
    ("audio file with no audio", lambda d, i: ["--audio", f"de={mute(d)}"],
     "{d}/mute.mp4: has no audio stream (from --audio de={d}/mute.mp4)"),
    ("dub of another length",
     lambda d, i: ["--audio", f"de={make_dub(d / 'long.mp4', 9.5, 300)}"],
     "{d}/long.mp4: lasts 9.50 s but the video source.mp4 6.00 s, more than one segment "
     "(2 s) apart"),
]


@pytest.mark.parametrize(("name", "options", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_localized_input_is_one_line_exit_2_nothing_written(
    localized_inputs: LocalizedInputs, tmp_path: Path, name: str,
    options: Callable[[Path, LocalizedInputs], list[str]], message: str,
) -> None:
    side = tmp_path / "side"
    side.mkdir()
    out = tmp_path / "out"
    result = cdnpack_cli("package", localized_inputs.source, "-o", out, "--ladder", "compact",
                         "--segment-duration", "2", *options(side, localized_inputs))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cdnpack: error: "), lines[0]
    assert message.format(d=side) in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["side"]  # nothing built, nothing left


@pytest.mark.parametrize(("fmt", "encoding"), [
    ("srt", "utf-8-sig"), ("vtt", "utf-16"), ("ttml", "utf-16"), ("ass", "utf-8-sig"),
])
def test_utf8_and_utf16_with_a_bom_are_converted(tmp_path: Path, fmt: str, encoding: str) -> None:
    track = read_text_file(write_subtitles(tmp_path / f"x.{fmt}", "th", fmt, encoding))
    assert [c.start for c in track.cues] == [c.start for c in expected("th")]
    assert "สวัสดีชาวโลก" in track.cues[0].text


TITLE_CASES = [
    ("subtitles:\n  ar: ar.srt\n  xx-!!: x.srt\n",
     ":3: subtitles.xx-!!: 'xx-!!' is not a BCP 47"),
    ("audio:\n  no: dub.mp4\n", ":2: audio.False: a language tag read as true/false by YAML"),
    ("captions:\n  en: 3\n", ":2: captions.en: must be a file name"),
    ("default_language: en-XX\n", ":1: default_language: 'en-XX' is not a known language tag"),
    ("subtitle:\n  en: a.srt\n", ":1: subtitle: unknown field"),
    ("subtitles: [\n", "not valid YAML"),
]


@pytest.mark.parametrize(("text", "message"), TITLE_CASES)
def test_title_file_errors_name_file_line_and_field(
    localized_inputs: LocalizedInputs, tmp_path: Path, text: str, message: str
) -> None:
    title = tmp_path / "title.yaml"
    title.write_text(text)
    result = cdnpack_cli("package", localized_inputs.source, "-o", tmp_path / "out",
                         "--title", title)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"{title}" in result.stderr
    assert message in result.stderr
    assert not (tmp_path / "out").exists()


def test_aes128_refuses_side_files_and_keeps_the_default_language_of_the_source(
    localized_inputs: LocalizedInputs, tmp_path: Path
) -> None:
    refused = cdnpack_cli("package", localized_inputs.source, "-o", tmp_path / "refused",
                          "--ladder", "compact", "--encrypt", "aes-128", "--format", "hls",
                          "--key-uri", "https://keys.example/k", "--audio",
                          localized_inputs.options["--audio"][0],
                          env={**os.environ, "CDNPACK_KEY": f"{'ab' * 16}:{'cd' * 16}"})
    assert refused.returncode == 2, refused.stderr
    assert "package a localized title as CMAF" in refused.stderr
    assert not (tmp_path / "refused").exists()
    kept = cdnpack_cli("package", localized_inputs.source, "-o", tmp_path / "ts", "--ladder",
                       "compact", "--encrypt", "aes-128", "--format", "hls", "--key-uri",
                       "https://keys.example/k", "--json",
                       env={**os.environ, "CDNPACK_KEY": f"{'ab' * 16}:{'cd' * 16}"})
    assert kept.returncode == 0, kept.stderr
    assert "leaving out audio_es_dub_aac_96k, text_ja" in " ".join(kept.stderr.split())
