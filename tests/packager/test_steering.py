"""Steered manifests (`package --steering`): the m3u8 library (it knows content steering) and
lxml read what the config says; every pathway's variant set is the same apart from its host;
media playlists stay relative, so one upload serves every CDN."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import m3u8
import pytest
from lxml import etree

from packager.errors import InputError
from packager.output.release import read_release
from packager.output.steering import Pathway, SteeringSpec, steered_mpd, steered_multivariant
from probes.config import ProbeConfig, load_config
from tests.conftest import cdnpack_cli
from tests.steering.conftest import CONFIG, write_config

MPD_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
SPEC = SteeringSpec("https://steer.example/hls.json", "https://steer.example/dash.json",
                    (Pathway("alpha", "https://a.example/rel/"),
                     Pathway("beta", "http://b.example:8080/x/")))
#: What the localized-release writer will list: two audio languages, subtitles, captions
#: none, an I-frame variant, and a key line that must stay once.
LOCALIZED = """\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI="data:text/plain;base64,AAAA",KEYFORMAT="identity"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="English",LANGUAGE="en",DEFAULT=YES,URI="audio_en/playlist.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="Deutsch",LANGUAGE="de",DEFAULT=NO,URI="audio_de/playlist.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",URI="subs_en/playlist.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=900000,CODECS="avc1.64001e,mp4a.40.2",AUDIO="audio",SUBTITLES="subs",CLOSED-CAPTIONS=NONE
video_360p/playlist.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=400000,CODECS="avc1.64001e,mp4a.40.2",AUDIO="audio",SUBTITLES="subs",CLOSED-CAPTIONS=NONE
video_240p/playlist.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,CODECS="avc1.64001e",URI="video_360p/iframes.m3u8"
"""


@pytest.fixture(scope="module")
def steered(source_clip: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[Path, ProbeConfig]:
    """The real CLI, `package --steering --config`, on the session's small clip."""
    base = tmp_path_factory.mktemp("steered")
    config_path = write_config(base)
    out = base / "release"
    done = cdnpack_cli("package", source_clip, "-o", out, "--ladder", "compact",
                       "--segment-duration", "2", "--steering", "--config", config_path,
                       "--json")
    assert done.returncode == 0, done.stderr
    return out, load_config(config_path)


def relative_to_pathway(uri: str, base_url: str) -> str:
    assert uri.startswith(base_url), (uri, base_url)
    return uri[len(base_url):]


def test_hls_names_the_steering_server_and_every_cdn_as_a_pathway(
        steered: tuple[Path, ProbeConfig]) -> None:
    out, config = steered
    assert config.steering is not None
    playlist = m3u8.load(str(out / "master.m3u8"))
    assert playlist.content_steering.uri == config.steering.document_url("hls.json")
    assert playlist.content_steering.pathway_id == config.cdns[0].id
    bases = {c.id: c.base_url for c in config.cdns}
    by_pathway: dict[str, list[m3u8.Playlist]] = {}
    for variant in playlist.playlists:
        by_pathway.setdefault(variant.stream_info.pathway_id, []).append(variant)
    assert set(by_pathway) == set(bases)
    for pathway, variants in by_pathway.items():
        assert variants
        for variant in variants:
            relative_to_pathway(variant.uri, bases[pathway])
            groups = {m.group_id for m in variant.media}
            assert groups == {f"audio-{pathway}"}
            for media in variant.media:
                relative_to_pathway(media.uri, bases[pathway])


def test_every_pathway_lists_the_same_variants_apart_from_the_host(
        steered: tuple[Path, ProbeConfig]) -> None:
    out, config = steered
    playlist = m3u8.load(str(out / "master.m3u8"))
    bases = {c.id: c.base_url for c in config.cdns}

    def variant_set(pathway: str) -> list[tuple[object, ...]]:
        rows: list[tuple[object, ...]] = []
        for v in playlist.playlists:
            if v.stream_info.pathway_id != pathway:
                continue
            info = v.stream_info
            rows.append((relative_to_pathway(v.uri, bases[pathway]), info.bandwidth,
                         info.average_bandwidth, info.codecs, info.resolution,
                         info.frame_rate, info.stable_variant_id,
                         info.audio.removesuffix(f"-{pathway}")))
        return rows

    def rendition_set(pathway: str) -> list[tuple[object, ...]]:
        return [(relative_to_pathway(m.uri, bases[pathway]), m.type, m.name, m.language,
                 m.default, m.stable_rendition_id, m.group_id.removesuffix(f"-{pathway}"))
                for m in playlist.media if m.group_id.endswith(f"-{pathway}")]

    alpha, beta = (c.id for c in config.cdns)
    assert variant_set(alpha) == variant_set(beta)
    assert variant_set(alpha)
    assert rendition_set(alpha) == rendition_set(beta)
    assert rendition_set(alpha)


def test_dash_has_content_steering_and_a_base_url_per_cdn(
        steered: tuple[Path, ProbeConfig]) -> None:
    out, config = steered
    assert config.steering is not None
    mpd = etree.parse(str(out / "manifest.mpd")).getroot()
    (steering,) = mpd.findall("d:ContentSteering", MPD_NS)
    assert steering.text == config.steering.document_url("dash.json")
    assert steering.get("defaultServiceLocation") == config.cdns[0].id
    assert steering.get("queryBeforeStart") == "true"
    bases = [(b.get("serviceLocation"), b.text) for b in mpd.findall("d:BaseURL", MPD_NS)]
    assert bases == [(c.id, c.base_url) for c in config.cdns]
    # Segment addressing stays relative: it resolves under whichever BaseURL is chosen.
    for template in mpd.iterfind(".//d:SegmentTemplate", MPD_NS):
        assert not urlsplit(template.get("media")).scheme
        assert not urlsplit(template.get("initialization")).scheme


def test_media_playlists_keep_relative_uris(steered: tuple[Path, ProbeConfig]) -> None:
    out, _ = steered
    media = [f for f in read_release(out).files if f.role == "media-playlist"]
    assert media
    for entry in media:
        text = (out / entry.path).read_text()
        assert "://" not in text, entry.path


def test_release_json_lists_the_steered_manifests_as_written(
        steered: tuple[Path, ProbeConfig]) -> None:
    out, _ = steered
    doc = json.loads((out / "release.json").read_text())
    for entry in doc["files"]:
        if entry["role"] in ("multivariant", "mpd"):
            data = (out / entry["path"]).read_bytes()
            assert entry["bytes"] == len(data)
            assert entry["sha256"] == hashlib.sha256(data).hexdigest()


def test_any_rendition_the_writer_lists_is_cloned_per_pathway() -> None:
    """Audio languages, subtitles and I-frame variants (the localized releases) alike."""
    text = steered_multivariant(LOCALIZED, SPEC)
    playlist = m3u8.loads(text)
    assert text.count("#EXT-X-SESSION-KEY") == 1
    assert len(playlist.media) == 2 * 3
    assert {m.group_id for m in playlist.media} == {
        "audio-alpha", "subs-alpha", "audio-beta", "subs-beta"}
    for variant in playlist.playlists:
        pathway = variant.stream_info.pathway_id
        assert variant.stream_info.audio == f"audio-{pathway}"
        assert variant.stream_info.subtitles == f"subs-{pathway}"
        assert "CLOSED-CAPTIONS=NONE" in text
    assert [i.uri for i in playlist.iframe_playlists] == [
        "https://a.example/rel/video_360p/iframes.m3u8",
        "http://b.example:8080/x/video_360p/iframes.m3u8"]
    assert [i.iframe_stream_info.pathway_id for i in playlist.iframe_playlists] == [
        "alpha", "beta"]
    assert {m.uri for m in playlist.media if m.group_id == "subs-beta"} == {
        "http://b.example:8080/x/subs_en/playlist.m3u8"}


def test_every_rendition_names_its_pathway() -> None:
    """shaka-player 5.2 learns a SUBTITLES group's pathway only from a PATHWAY-ID on its
    EXT-X-MEDIA lines (it fetched the multivariant playlist as the subtitle playlist without it:
    tests/browser/test_preview.py plays a steered release with subtitles)."""
    text = steered_multivariant(LOCALIZED, SPEC)
    media = [line for line in text.splitlines() if line.startswith("#EXT-X-MEDIA:")]
    assert len(media) == 2 * 3
    for line in media:
        group = re.search(r'GROUP-ID="([^"]+)"', line)
        pathway = re.search(r'PATHWAY-ID="([^"]+)"', line)
        assert group is not None, line
        assert pathway is not None, line
        assert group.group(1).endswith(f"-{pathway.group(1)}"), line


@pytest.mark.parametrize(("text", "message"), [
    ("#EXTM3U\n#EXTINF:2,\nseg.m4s\n", "not a multivariant playlist"),
    ("nothing\n", "not an HLS playlist"),
    ("#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"a\"\n", "lists no variant"),
])
def test_what_cannot_be_steered_is_refused(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        steered_multivariant(text, SPEC)


def test_a_playlist_is_never_steered_twice() -> None:
    with pytest.raises(InputError, match="not a multivariant playlist without content"):
        steered_multivariant(steered_multivariant(LOCALIZED, SPEC), SPEC)
    mpd = ('<MPD xmlns="urn:mpeg:dash:schema:mpd:2011">\n  <Period id="0"/>\n</MPD>\n')
    with pytest.raises(InputError, match="already has"):
        steered_mpd(steered_mpd(mpd, SPEC), SPEC)


def test_package_steering_without_a_steering_section_is_one_line_of_bad_input(
        source_clip: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, CONFIG.split("steering:")[0])
    done = cdnpack_cli("package", source_clip, "-o", tmp_path / "out", "--steering",
                       "--config", config)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"cdnpack: error: {config}: --steering needs a `steering:` section (server, ttl, ...) "
        "in the config"]
    assert not (tmp_path / "out").exists()
