"""Manifest reading for the video probe: the packaged release's own HLS and DASH manifests."""

from __future__ import annotations

import pytest

from packager.output.pipeline import PackageResult
from probes.http import Fetcher
from probes.video import (
    ManifestError,
    choose,
    parse_hls_media,
    parse_hls_multivariant,
    parse_mpd,
    play,
)
from testbed.edges import Edges

BASE = "https://cdn.example/rel/"


def release_paths(packaged: PackageResult) -> set[str]:
    return {f.path for f in packaged.release.files}


def test_hls_variants_and_segments_are_files_of_the_release(packaged: PackageResult) -> None:
    root = packaged.output
    variants = parse_hls_multivariant((root / "master.m3u8").read_text(), BASE + "master.m3u8")
    videos = [r for r in packaged.release.renditions if r.kind == "video"]
    assert len(variants) == len(videos)
    # BANDWIDTH counts the video and the audio it plays with (RFC 8216 4.3.4.2)
    assert {v.id.split("/")[0] for v in variants} == {r.id for r in videos}
    for v in variants:
        playlist = root / v.url.removeprefix(BASE)
        init, segments = parse_hls_media(playlist.read_text(), v.url, 2)
        assert init is not None
        assert {init, *segments} <= {BASE + p for p in release_paths(packaged)}
        assert len(segments) == 2


def test_dash_representations_and_segments_are_files_of_the_release(
    packaged: PackageResult,
) -> None:
    variants = parse_mpd((packaged.output / "manifest.mpd").read_text(), BASE + "manifest.mpd", 3)
    videos = [r for r in packaged.release.renditions if r.kind == "video"]
    assert {v.id for v in variants} == {r.id for r in videos}
    files = {BASE + p for p in release_paths(packaged)}
    for v in variants:
        assert v.init in files
        assert set(v.segments) <= files
        assert len(v.segments) == 3


def test_dash_time_template_base_url_and_repeat() -> None:
    mpd = """<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><BaseURL>media/</BaseURL><Period>
      <AdaptationSet mimeType="video/mp4">
        <SegmentTemplate initialization="$RepresentationID$/i.mp4"
                         media="$RepresentationID$/$Time$-$Bandwidth$.m4s" timescale="1000">
          <SegmentTimeline><S t="500" d="2000" r="2"/><S d="1000"/></SegmentTimeline>
        </SegmentTemplate>
        <Representation id="v1" bandwidth="800000"/>
      </AdaptationSet></Period></MPD>"""
    (v,) = parse_mpd(mpd, BASE + "x.mpd", 4)
    assert v.init == BASE + "media/v1/i.mp4"
    assert v.segments == tuple(BASE + f"media/v1/{t}-800000.m4s" for t in (500, 2500, 4500, 6500))


@pytest.mark.parametrize("text", ["<html/>", "#EXTM3U\n#EXT-X-VERSION:6\n", "plain text"])
def test_unusable_hls_manifest_is_refused(text: str) -> None:
    with pytest.raises(ManifestError):
        parse_hls_multivariant(text, BASE)


def test_rendition_choice_orders_by_bandwidth(packaged: PackageResult) -> None:
    variants = parse_hls_multivariant((packaged.output / "master.m3u8").read_text(), BASE)
    assert choose(variants, "lowest")[0].bandwidth == min(v.bandwidth for v in variants)
    assert choose(variants, "highest")[0].bandwidth == max(v.bandwidth for v in variants)
    assert len(choose(variants, "all")) == len(variants)


async def test_failed_manifest_fetch_is_a_failed_playback(edges: Edges) -> None:
    async with Fetcher(timeout=2.0, concurrency=2) as f:
        (missing,) = await play(f, "nope.m3u8", edges.url("na-fast", "/nope.m3u8"), "hls",
                                "lowest", 2)
        (garbage,) = await play(f, "release.json", edges.url("na-fast", "/release.json"),
                                "hls", "lowest", 2)
    assert missing.error == "http_4xx"
    assert missing.startup is None
    assert garbage.error == "protocol"
    assert "EXTM3U" in (garbage.error_detail or "")


def test_hls_start_fetches_the_default_audio_and_the_default_text_of_a_localized_release(
    localized: PackageResult,
) -> None:
    """What a player fetches for the default language (English): the DEFAULT audio rendition
    and the DEFAULT text track (here the English forced narratives)."""
    text = (localized.output / "master.m3u8").read_text()
    variants = parse_hls_multivariant(text, BASE + "master.m3u8")
    assert variants
    for variant in variants:
        assert [(c.kind, c.url) for c in variant.companions] == [
            ("audio", BASE + "audio_en_aac_96k/playlist.m3u8"),
            ("text", BASE + "text_en_forced-subtitle/playlist.m3u8"),
        ]


def test_hls_start_takes_a_forced_track_of_the_audio_language_when_none_is_default() -> None:
    master = "\n".join([
        "#EXTM3U",
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",LANGUAGE="fr",DEFAULT=NO,URI="fr.m3u8"',
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",LANGUAGE="ja",DEFAULT=YES,URI="ja.m3u8"',
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="s",LANGUAGE="fr",FORCED=YES,URI="t-fr.m3u8"',
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="s",LANGUAGE="ja",FORCED=YES,URI="t-ja.m3u8"',
        '#EXT-X-STREAM-INF:BANDWIDTH=1000,AUDIO="a",SUBTITLES="s"', "v.m3u8", ""])
    (variant,) = parse_hls_multivariant(master, BASE)
    assert [c.id for c in variant.companions] == ["ja.m3u8", "t-ja.m3u8"]


def test_dash_start_fetches_the_default_audio_and_its_forced_text(
    localized: PackageResult,
) -> None:
    variants = parse_mpd((localized.output / "manifest.mpd").read_text(),
                         BASE + "manifest.mpd", 2)
    assert variants
    for variant in variants:
        assert [(c.kind, c.id, c.init) for c in variant.companions] == [
            ("audio", "audio_en_aac_96k", BASE + "audio_en_aac_96k/init.mp4"),
            ("text", "text_en_forced-subtitle", BASE + "text_en_forced-subtitle/init.mp4"),
        ]
        assert [len(c.segments) for c in variant.companions] == [1, 1]
