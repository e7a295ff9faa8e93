"""A grant's manifests (packager/output/grants.py): per grant one multivariant playlist and one
MPD, written by the release's own writers from the renditions it allows, read back with m3u8
and lxml: exactly its renditions and languages, one valid DEFAULT, the same keys and PSSH as the
tracks carry, and steered like the release's own manifests."""

from __future__ import annotations

import base64
from pathlib import Path

import m3u8
import pytest
from lxml import etree

from packager.encryption.spec import EncryptionSpec
from packager.keys.model import ClassThresholds, KeySet
from packager.keys.source import parse_key
from packager.output.grants import grant_manifest
from packager.output.pipeline import PackageRequest, PackageResult, package
from packager.output.release import read_release
from packager.rights.file import load_rights
from packager.title.file import resolve_title
from testbed.clips import ClipSpec, make_clip, make_dub
from testbed.subtitles import write_subtitles
from tests.packager.test_drm_package import init_pssh
from tests.packager.test_steering import SPEC

pytestmark = pytest.mark.slow  # a real package run, encrypted and steered

NS = {"d": "urn:mpeg:dash:schema:mpd:2011", "cenc": "urn:mpeg:cenc:2013"}
RIGHTS = """\
rights:
  - id: world
    territories: [FR, DE, US]
    start: 2020-01-01T00:00:00Z
  - id: jp-sd
    territories: [JP]
    start: 2020-01-01T00:00:00Z
    max_height: 240
    audio: [es, fr]
    subtitles: [en, ar]
  - id: latam
    territories: [latam]
    start: 2024-06-01T00:00:00Z
    end: 2030-01-01T00:00:00Z
    max_height: 360
    subtitles: []
"""
#: What each grant's manifests must list: video heights, audio and text (language, role).
EXPECTED = {
    "world": ({360, 240}, {("en", "main"), ("es", "dub"), ("fr", "dub"), ("en", "description")},
              {("ar", "subtitle"), ("en", "forced-subtitle")}),
    "jp-sd": ({240}, {("es", "dub"), ("fr", "dub")},
              {("ar", "subtitle"), ("en", "forced-subtitle")}),
    "latam": ({360, 240}, {("en", "main"), ("es", "dub"), ("fr", "dub"), ("en", "description")},
              set()),
}
#: The audio each grant's players start with: the title's default (en) where licensed.
DEFAULT_AUDIO = {"world": "en", "jp-sd": "es", "latam": "en"}
REGIONS = {"latam": ("BR", "MX")}


@pytest.fixture(scope="module")
def licensed(clips: Path, tmp_path_factory: pytest.TempPathFactory) -> PackageResult:
    """A localized title (two rungs, four audio tracks, subtitles and forced narratives) with
    three grants, encrypted cbcs with per-class keys (SD 240p, HD 360p) and steered."""
    d = tmp_path_factory.mktemp("licensed")
    source = make_clip(d / "source.mp4", ClipSpec(
        duration=4.0, width=640, height=360, language="eng", more_audio=(("spa", 660),)))
    title = resolve_title(None, {
        "--audio": (f"fr={make_dub(d / 'fr.mp4', 4.0, 880)}",),
        "--described-audio": (f"en={make_dub(d / 'ad.mp4', 4.0, 550)}",),
        "--subtitles": (f"ar={write_subtitles(d / 'ar.srt', 'ar', 'srt')}",),
        "--forced-subtitles": (f"en={write_subtitles(d / 'en.vtt', 'en', 'vtt')}",),
    }, default_language="en")
    (d / "rights.yaml").write_text(RIGHTS)
    keyset = KeySet.generate("rights-test", per_class=True,
                             thresholds=ClassThresholds(sd_max_height=240, hd_max_height=1080))
    spec = EncryptionSpec("cbcs", keyset.distinct_keys[0], keyset=keyset,
                          systems=("widevine", "playready", "fairplay"))
    return package(PackageRequest(
        source=source, output=d / "out", ladder="compact", segment_duration=2.0, title=title,
        encryption=spec, steering=SPEC, rights=load_rights(d / "rights.yaml", REGIONS)))


def relative(uri: str) -> str:
    """A steered (absolute, per pathway) URI back to its path in the release."""
    for pathway in SPEC.pathways:
        if uri.startswith(pathway.base_url):
            return uri[len(pathway.base_url):]
    return uri


def test_release_json_lists_each_grant_with_its_manifests(licensed: PackageResult) -> None:
    release = read_release(licensed.output)
    assert release.rights == licensed.release.rights
    listed = {f.path: f.role for f in release.files}
    for grant in release.rights:
        assert grant.manifests == {"hls": grant_manifest("master.m3u8", grant.id),
                                   "dash": grant_manifest("manifest.mpd", grant.id)}
        assert listed[grant.manifests["hls"]] == "multivariant"
        assert listed[grant.manifests["dash"]] == "mpd"
    latam = next(g for g in release.rights if g.id == "latam")
    assert latam.territories == ["BR", "MX"]
    assert (latam.start, latam.end) == ("2024-06-01T00:00:00Z", "2030-01-01T00:00:00Z")
    assert latam.subtitles == []
    jp = next(g for g in release.rights if g.id == "jp-sd")
    assert jp.audio == ["es", "fr"]
    assert jp.renditions == [r.id for r in release.renditions if r.height == 240] + [
        r.id for r in release.renditions
        if (r.kind in ("audio", "text") and r.language in ("es", "fr", "ar"))
        or r.role == "forced-subtitle"]


@pytest.mark.parametrize("grant_id", sorted(EXPECTED))
def test_each_grants_hls_lists_exactly_what_it_allows(
        licensed: PackageResult, grant_id: str) -> None:
    heights, audio, text = EXPECTED[grant_id]
    release = licensed.release
    by_id = {r.id: r for r in release.renditions}
    playlist = m3u8.load(str(licensed.output / grant_manifest("master.m3u8", grant_id)))
    assert playlist.content_steering is not None  # steered like the release's own
    variants = [relative(p.uri) for p in playlist.playlists]
    assert {by_id[v.split("/")[0]].height for v in variants} == heights
    iframes = {relative(p.uri).split("/")[0] for p in playlist.iframe_playlists}
    assert {by_id[i].height for i in iframes} == heights
    for pathway in SPEC.pathways:
        group = [m for m in playlist.media if m.group_id == f"audio-{pathway.id}"]
        listed = {(m.language, by_id[relative(m.uri).split("/")[0]].role) for m in group}
        assert listed == audio
        assert [m.language for m in group if m.default == "YES"] == [DEFAULT_AUDIO[grant_id]]
        subs = [m for m in playlist.media if m.group_id == f"subs-{pathway.id}"]
        assert {(m.language, by_id[relative(m.uri).split("/")[0]].role) for m in subs} == text
        # The default subtitle follows the default audio's language: forced English
        # narratives under English audio only.
        assert [m.language for m in subs if m.default == "YES"] == (
            ["en"] if DEFAULT_AUDIO[grant_id] == "en" and text else [])
    # The session keys are exactly the keys of the tracks it lists (their media playlists'
    # EXT-X-KEY lines, which are the release's own files): per-class keys, so a grant
    # without the HD rung never names the HD key.
    listed_tracks = {*variants, *(relative(m.uri) for m in playlist.media if m.uri)}
    track_keys = {(k.method, k.uri, k.keyformat) for uri in listed_tracks
                  for k in m3u8.load(str(licensed.output / uri)).keys if k is not None}
    assert {(k.method, k.uri, k.keyformat) for k in playlist.session_keys} == track_keys
    kids = {release.protection.rendition_kids[v.split("/")[0]]  # type: ignore[union-attr]
            for v in variants}
    assert len(kids) == len(heights)


@pytest.mark.parametrize("grant_id", sorted(EXPECTED))
def test_each_grants_mpd_lists_exactly_what_it_allows_with_the_tracks_pssh(
        licensed: PackageResult, grant_id: str) -> None:
    heights, audio, text = EXPECTED[grant_id]
    release = licensed.release
    by_id = {r.id: r for r in release.renditions}
    root = etree.parse(str(licensed.output / grant_manifest("manifest.mpd", grant_id))).getroot()
    assert root.find("d:ContentSteering", NS) is not None
    reps = {rep.get("id"): rep for rep in root.iterfind(".//d:Representation", NS)}
    kinds: dict[str, set[tuple[str, str]]] = {"audio": set(), "text": set()}
    for rid in reps:
        r = by_id.get(str(rid))
        if r is not None and r.kind in kinds:
            kinds[r.kind].add((r.language, r.role))
    assert {by_id[str(r)].height for r in reps if by_id[str(r)].kind == "video"} == heights
    assert kinds == {"audio": audio, "text": text}
    first_audio = root.find(".//d:AdaptationSet[@contentType='audio']", NS)
    assert first_audio is not None
    assert first_audio.get("lang") == DEFAULT_AUDIO[grant_id]  # DASH's default: first set
    kids = release.protection.rendition_kids  # type: ignore[union-attr]
    for adaptation in root.iterfind(".//d:AdaptationSet", NS):
        signalled = {base64.b64decode(p.text or "")
                     for p in adaptation.iterfind(".//cenc:pssh", NS)}
        kid = {p.get("{urn:mpeg:cenc:2013}default_KID")
               for p in adaptation.iterfind("d:ContentProtection", NS)} - {None}
        rids = [str(rep.get("id")) for rep in adaptation.iterfind("d:Representation", NS)]
        if not any(rid in kids for rid in rids):  # text is not encrypted
            assert not kid
            assert not signalled
            continue
        # A set is signalled with its tallest track's key (packager/output/dash.py): the
        # grant's own tallest, whose init segment carries exactly these boxes.
        top = max(rids, key=lambda rid: by_id[rid].height)
        assert kid == {kids[top]}
        assert signalled == set(init_pssh(licensed.output / top / "init.mp4"))


def test_a_grant_of_everything_signals_protection_as_the_release_does(
        licensed: PackageResult) -> None:
    def protection(path: Path) -> list[bytes]:
        root = etree.parse(str(path)).getroot()
        return [etree.tostring(p) for p in root.iterfind(".//d:ContentProtection", NS)]

    assert protection(licensed.output / grant_manifest("manifest.mpd", "world")) == protection(
        licensed.output / "manifest.mpd")


def test_mpeg_ts_releases_get_a_playlist_per_grant_too(
        source_clip: Path, tmp_path: Path) -> None:
    """--encrypt aes-128 (one audio muxed into each rung): a grant's playlist lists its rungs,
    with the release's key line on every media playlist it names."""
    (tmp_path / "rights.yaml").write_text(
        "rights:\n  - {id: sd, territories: [FR], start: 2020-01-01T00:00:00Z, "
        "max_height: 240}\n  - {id: all, territories: [DE], start: 2020-01-01T00:00:00Z}\n")
    spec = EncryptionSpec("aes-128", parse_key(f"{'1' * 32}:{'2' * 32}"), None,
                          "https://keys.example/1")
    result = package(PackageRequest(
        source=source_clip, output=tmp_path / "out", ladder="compact", segment_duration=2.0,
        formats=("hls",), encryption=spec,
        rights=load_rights(tmp_path / "rights.yaml", REGIONS)))
    heights = {r.id: r.height for r in result.release.renditions}
    assert sorted(heights.values()) == [240, 360]
    for grant in result.release.rights:
        playlist = m3u8.load(str(result.output / grant.manifests["hls"]))
        listed = {p.uri.split("/")[0] for p in playlist.playlists}
        assert listed == {r for r, h in heights.items()
                          if grant.id == "all" or h <= 240}, grant.id
        assert set(grant.renditions) == listed
        assert grant.manifests == {"hls": f"master.grant-{grant.id}.m3u8"}
