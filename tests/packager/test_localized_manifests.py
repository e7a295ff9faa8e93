"""Localized manifests checked by independent parsers and by Shaka Packager as the oracle:
m3u8 and lxml read back what release.json says (languages, roles, flags); Shaka Packager,
packaging the same audio and text, signals the same (language, role, forced, default) set
per format and cuts the same cue texts at the same times (to the millisecond)."""

from __future__ import annotations

import re
from pathlib import Path

import m3u8
import pysubs2
import pytest
from lxml import etree

from packager.output.hls import CAPTION_CHARACTERISTICS, DESCRIBES_VIDEO
from packager.output.pipeline import PackageRequest, PackageResult, package
from packager.output.release import RenditionSummary, read_release
from packager.title.file import resolve_title
from packager.tools import find_tool
from testbed.subtitles import write_subtitles
from tests.conftest import SEGMENT_SECONDS, LocalizedInputs, run
from tests.packager.wvtt_reader import segment_cues

NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
HLS_ROLES = {DESCRIBES_VIDEO: "description", CAPTION_CHARACTERISTICS: "caption"}


def _localized(result: PackageResult) -> list[RenditionSummary]:
    return [r for r in read_release(result.output).renditions if r.kind != "video"]


def test_m3u8_reads_back_every_language_role_and_flag_of_release_json(
    localized: PackageResult,
) -> None:
    master = m3u8.load(str(localized.output / "master.m3u8"))
    by_uri = {m.uri: m for m in master.media}
    checked = 0
    for r in _localized(localized):
        media = by_uri.pop(f"{r.id}/playlist.m3u8")
        assert media.type == {"audio": "AUDIO", "text": "SUBTITLES"}[r.kind]
        assert media.language == r.language
        assert media.name == r.name
        assert (media.default == "YES") == ("default" in r.flags)
        assert (media.forced == "YES") == ("forced" in r.flags)
        assert media.autoselect == "YES"
        assert HLS_ROLES.get(media.characteristics or "") == (
            r.role if r.role in ("description", "caption") else None)
        checked += 1
    assert checked == 10
    assert not by_uri
    for variant in master.playlists:
        assert variant.stream_info.audio == "audio"
        assert variant.stream_info.subtitles == "subs"


def test_lxml_reads_back_every_language_role_and_flag_of_release_json(
    localized: PackageResult,
) -> None:
    mpd = etree.parse(str(localized.output / "manifest.mpd"))
    sets = {a.find("d:Representation", NS).get("id"): a
            for a in mpd.iterfind(".//d:AdaptationSet", NS)}
    checked = 0
    for r in _localized(localized):
        adaptation = sets[r.id]
        assert adaptation.get("contentType") == r.kind
        assert adaptation.get("lang") == r.language
        roles = [e.get("value") for e in adaptation.iterfind("d:Role", NS)]
        assert roles == [r.role]
        accessibility = [e.get("value") for e in adaptation.iterfind("d:Accessibility", NS)]
        assert accessibility == (["1"] if r.role == "description" else [])
        if r.kind == "text":
            assert adaptation.get("mimeType") == "application/mp4"
            assert adaptation.find("d:Representation", NS).get("codecs") == "wvtt"
        checked += 1
    assert checked == 10


# --- Shaka Packager as the oracle ----------------------------------------------------------

#: The text the oracle can read too: WebVTT (Shaka Packager takes no SRT, ASS or TTML in).
ORACLE_TEXT = {"--subtitles": ("ar", "th"), "--forced-subtitles": ("en",), "--captions": ("en",)}
#: The source's own Japanese text stream (mov_text), given to the oracle as the WebVTT it was
#: made from: Shaka Packager reads no mov_text.
SOURCE_TEXT = ("--subtitles", "ja")


@pytest.fixture(scope="module")
def oracle_inputs(localized_inputs: LocalizedInputs,
                  tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, ...]]:
    d = tmp_path_factory.mktemp("oracle-text")
    options = {k: localized_inputs.options[k] for k in ("--audio", "--described-audio")}
    for option, languages in ORACLE_TEXT.items():
        options[option] = tuple(
            f"{lang}={write_subtitles(d / f'{option[2:]}-{lang}.vtt', lang, 'vtt')}"
            for lang in languages)
    return options


@pytest.fixture(scope="module")
def ours(localized_inputs: LocalizedInputs, oracle_inputs: dict[str, tuple[str, ...]],
         tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ours") / "out"
    title = resolve_title(None, oracle_inputs, default_language="en")
    package(PackageRequest(source=localized_inputs.source, output=out, ladder="compact",
                           segment_duration=SEGMENT_SECONDS, title=title))
    return out


@pytest.fixture(scope="module")
def shaka(localized_inputs: LocalizedInputs, oracle_inputs: dict[str, tuple[str, ...]],
          tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shaka Packager on the same inputs: the source's video and two audio streams, the dub,
    the description, the WebVTT files; roles and characteristics as its documentation says."""
    out = tmp_path_factory.mktemp("shaka")
    source = localized_inputs.source

    def side(option: str) -> str:
        return oracle_inputs[option][0].split("=", 1)[1]

    def stream(name: str, spec: str, media: bool = True) -> str:
        template = "$Number$.m4s" if media else "$Number$.vtt"
        return f"{spec},segment_template={out}/{name}/{template},playlist_name={name}.m3u8"

    audio = ",hls_group_id=audio"
    descriptors = [
        stream("video", f"in={source},stream=video,init_segment={out}/video/init.mp4"),
        stream("a_en", f"in={source},stream=1,language=en,roles=main,hls_name=English"
               f"{audio},init_segment={out}/a_en/init.mp4"),
        stream("a_es", f"in={source},stream=2,language=es,roles=dub,hls_name=Espanol"
               f"{audio},init_segment={out}/a_es/init.mp4"),
        stream("a_fr", f"in={side('--audio')},stream=audio,language=fr,roles=dub,hls_name=Fr"
               f"{audio},init_segment={out}/a_fr/init.mp4"),
        stream("a_ad", f"in={side('--described-audio')},stream=audio,language=en,"
               "roles=description,accessibilities=urn:tva:metadata:cs:AudioPurposeCS:2007=1,"
               f"hls_characteristics={DESCRIBES_VIDEO},hls_name=AD{audio},"
               f"init_segment={out}/a_ad/init.mp4"),
    ]
    japanese = write_subtitles(out / "source-ja.vtt", "ja", "vtt")
    for option, value in [(o, v) for o in ORACLE_TEXT for v in oracle_inputs[o]] + [
            (SOURCE_TEXT[0], f"{SOURCE_TEXT[1]}={japanese}")]:
        lang, path = value.split("=", 1)
        name = f"t_{option[2:]}_{lang}"
        extra = {"--forced-subtitles": ",forced_subtitle=1",
                 "--captions": ",roles=caption,hls_characteristics="
                               + CAPTION_CHARACTERISTICS.replace(",", ";")}.get(option, "")
        descriptor = (f"in={path},stream=text,language={lang}{extra},hls_name={name},"
                      "hls_group_id=subs")
        descriptors.append(stream(name, descriptor + ",hls_only=1", media=False))
        descriptors.append(stream(f"{name}-dash", descriptor + f",init_segment={out}/{name}"
                                  "-dash/init.mp4,dash_only=1"))
    done = run(find_tool("packager").path, *descriptors, "--segment_duration",
               str(SEGMENT_SECONDS), "--default_language", "en", "--generate_static_mpd",
               "--hls_master_playlist_output", out / "master.m3u8",
               "--mpd_output", out / "manifest.mpd")
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def _hls_set(master: Path) -> set[tuple[str, str, str, bool, bool]]:
    """(type, language, role by CHARACTERISTICS, forced, default) of each EXT-X-MEDIA."""
    playlist = m3u8.load(str(master))
    return {(m.type, m.language, HLS_ROLES.get(m.characteristics or "", ""),
             m.forced == "YES", m.default == "YES") for m in playlist.media}


def _dash_set(mpd_path: Path) -> set[tuple[str, str, tuple[str, ...], tuple[str, ...]]]:
    """(contentType, lang, Role values, Accessibility values) of each audio/text set."""
    mpd = etree.parse(str(mpd_path))
    return {(a.get("contentType"), a.get("lang"),
             tuple(sorted(r.get("value") for r in a.iterfind("d:Role", NS))),
             tuple(x.get("value") for x in a.iterfind("d:Accessibility", NS)))
            for a in mpd.iterfind(".//d:AdaptationSet", NS) if a.get("contentType") != "video"}


def test_hls_languages_roles_forced_default_match_shaka_packager(ours: Path, shaka: Path) -> None:
    got, oracle = _hls_set(ours / "master.m3u8"), _hls_set(shaka / "master.m3u8")
    assert len(oracle) == 9
    assert got == oracle


def test_dash_languages_and_roles_match_shaka_packager(ours: Path, shaka: Path) -> None:
    got, oracle = _dash_set(ours / "manifest.mpd"), _dash_set(shaka / "manifest.mpd")
    assert len(oracle) == 9
    assert got == oracle


def _webvtt_cues(directory: Path) -> list[set[tuple[int, int, str]]]:
    """Per segment: (start, end, plain text) of its cues, read by pysubs2."""
    out = []
    for path in sorted(directory.glob("*.vtt"), key=lambda p: int(re.sub(r"\D", "", p.stem))):
        cues = pysubs2.SSAFile.from_string(path.read_text(encoding="utf-8"))
        out.append({(e.start, e.end, e.plaintext) for e in cues})
    return out


@pytest.mark.parametrize(("ours_id", "shaka_id"), [
    ("text_ar", "t_subtitles_ar"), ("text_th", "t_subtitles_th"),
    ("text_en_forced-subtitle", "t_forced-subtitles_en"), ("text_en_caption", "t_captions_en"),
])
def test_webvtt_cue_texts_and_times_match_shaka_packager(
    ours: Path, shaka: Path, ours_id: str, shaka_id: str
) -> None:
    """Segment by segment, the same cues (to the millisecond) with the same words; Shaka
    Packager stops after the last cue, we run to the end of the video with empty segments."""
    got, oracle = _webvtt_cues(ours / ours_id), _webvtt_cues(shaka / shaka_id)
    assert oracle
    assert any(oracle)
    assert got[: len(oracle)] == oracle
    assert not any(got[len(oracle):])


@pytest.mark.parametrize(("ours_id", "shaka_id"), [
    ("text_ar", "t_subtitles_ar-dash"), ("text_th", "t_subtitles_th-dash"),
])
def test_wvtt_samples_match_shaka_packager(ours: Path, shaka: Path, ours_id: str,
                                           shaka_id: str) -> None:
    def cues(directory: Path, pattern: str) -> list[list[tuple[int, int, str]]]:
        files = sorted(directory.glob(pattern), key=lambda p: int(re.sub(r"\D", "", p.stem)))
        return [segment_cues(p) for p in files]

    got, oracle = cues(ours / ours_id, "seg_*.m4s"), cues(shaka / shaka_id, "*.m4s")
    assert oracle
    assert any(oracle)
    assert got[: len(oracle)] == oracle
