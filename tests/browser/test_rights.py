"""Territories and windows in real players: a release packaged with rights, pushed to the
origin, and served through an edge running the published rights function (the code and
KeyValueStore data `rights publish` writes). hls.js, shaka-player and dash.js as a viewer in a
licensed country (France: up to 240p, Spanish audio, French subtitles; not English audio nor
Japanese subtitles) play, never ask for a rendition above 240p and list only the licensed
languages; as a viewer in an unlicensed country they stop with a fatal error on the 451, and
no segment is served to them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from packager.output.release import read_release
from packager.rights.instants import format_instant
from testbed.clips import ClipSpec, make_clip, make_dub
from testbed.edges import Edges, EdgeSpec, edge_process
from testbed.subtitles import write_subtitles
from tests.browser.conftest import BUCKET, CLIP, SEGMENT_SECONDS, Stage
from tests.browser.harness import Browser, PlayCase, PlayResult
from tests.conftest import cdnpack_cli
from tests.moto import FAKE_CREDENTIALS

PREFIX = "rights"
MEDIA = (".m4s", ".mp4", ".vtt")


@dataclass(frozen=True)
class Licensed:
    stage: Stage
    edges: Edges
    heights: dict[str, int]  # rendition directory -> video height

    def manifest(self, name: str) -> str:
        return self.edges.url("rights", f"/{name}")


@pytest.fixture(scope="module")
def licensed(stage: Stage) -> Iterator[Licensed]:
    work = stage.work / "rights"
    work.mkdir()
    source = make_clip(work / "source.mp4", ClipSpec(
        duration=CLIP.duration, width=640, height=360, frame_rate=CLIP.frame_rate,
        language="eng"))
    now = datetime.now(UTC)
    rights = work / "rights.yaml"
    rights.write_text(
        "rights:\n"
        f"  - id: fr-sd\n    territories: [FR]\n    start: {format_instant(now - timedelta(1))}\n"
        "    max_height: 240\n    audio: [es]\n    subtitles: [fr]\n"
        f"  - id: de-next\n    territories: [DE]\n"
        f"    start: {format_instant(now + timedelta(30))}\n")
    out = work / "release"
    env = {**os.environ, **FAKE_CREDENTIALS}
    done = cdnpack_cli(
        "package", source, "-o", out, "--ladder", "compact", "--segment-duration",
        SEGMENT_SECONDS, "--audio", f"es={make_dub(work / 'es.mp4', CLIP.duration, 660)}",
        "--subtitles", f"fr={write_subtitles(work / 'fr.srt', 'fr', 'srt')}",
        "--subtitles", f"ja={write_subtitles(work / 'ja.srt', 'ja', 'srt')}",
        "--rights", rights, "--json", env=env)
    assert done.returncode == 0, done.stderr
    done = cdnpack_cli("push", out, f"s3://{BUCKET}/{PREFIX}", "--endpoint-url", stage.origin,
                       env=env)
    assert done.returncode == 0, done.stderr
    function, kvs = work / "function.js", work / "kvs.json"
    done = cdnpack_cli("rights", "publish", out, f"s3://{BUCKET}/{PREFIX}", "--distribution",
                       "EBROWSER", "--url-path", "/", "--dry-run", "--function-file", function,
                       "--kvs-file", kvs, env=env)
    assert done.returncode == 0, done.stderr
    release = read_release(out)
    heights = {r.id: r.height for r in release.renditions if r.kind == "video"}
    assert sorted(heights.values()) == [240, 360]
    spec = EdgeSpec("rights", origin=f"{stage.origin}/{BUCKET}/{PREFIX}/", cache="none",
                    function=str(function), kvs=str(kvs))
    with edge_process([spec], work) as edges:
        yield Licensed(stage, edges, heights)


def play(browser: Browser, licensed: Licensed, player: str, manifest: str,
         country: str) -> PlayResult:
    return browser.play(PlayCase(
        page=licensed.stage.page, player=player, manifest=licensed.manifest(manifest),
        advance=3.0, timeout=30.0, list_tracks=True, responses=True,
        headers=((licensed.edges.url("rights", "/"), {"CloudFront-Viewer-Country": country}),)))


def explain(result: PlayResult) -> str:
    return (f"ok={result.ok} t={result.current_time:.2f} fatal={result.fatal} "
            f"errors={result.errors[:3]} tracks={result.raw.get('tracks')} "
            f"responses={result.raw.get('responses', [])[:12]} console={result.console[:4]}")


PLAYERS = [("hls.js", "master.m3u8"), ("shaka", "master.m3u8"), ("shaka", "manifest.mpd"),
           ("dashjs", "manifest.mpd")]


@pytest.mark.parametrize(("player", "manifest"), PLAYERS, ids=[f"{p}-{m}" for p, m in PLAYERS])
def test_a_licensed_viewer_plays_only_what_the_grant_allows(
        browser: Browser, licensed: Licensed, player: str, manifest: str) -> None:
    result = play(browser, licensed, player, manifest, "FR")
    assert result.ok, explain(result)
    responses = result.raw["responses"]
    fetched = {url.split("/")[3] for url, _ in responses if url.endswith(MEDIA)}
    assert {d for d in fetched if d.startswith("video_")} == {
        d for d, h in licensed.heights.items() if h <= 240}, explain(result)
    assert all(status < 400 for _, status in responses), explain(result)
    tracks = result.raw["tracks"]
    assert {t["language"] for t in tracks["audio"]} == {"es"}, explain(result)
    assert {t["language"] for t in tracks["text"]} == {"fr"}, explain(result)


@pytest.mark.parametrize(("player", "manifest"), PLAYERS, ids=[f"{p}-{m}" for p, m in PLAYERS])
@pytest.mark.parametrize("country", ["US", "DE"])  # never licensed; licensed next month
def test_an_unlicensed_viewer_stops_on_the_451_and_gets_no_segment(
        browser: Browser, licensed: Licensed, player: str, manifest: str,
        country: str) -> None:
    result = play(browser, licensed, player, manifest, country)
    assert not result.ok, explain(result)
    assert result.fatal is not None, explain(result)
    responses = result.raw["responses"]
    assert (licensed.manifest(manifest), 451) in [tuple(r) for r in responses], explain(result)
    assert not [url for url, status in responses
                if url.endswith(MEDIA) and status < 400], explain(result)

