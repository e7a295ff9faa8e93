"""Real players, real logs: hls.js, dash.js and shaka-player play a release with CMCD on (query
mode) through logging edges, one unthrottled and one capped below the top rendition each; `rum
ingest` over the CloudFront logs those edges wrote finds every session with its startup,
bitrate and throughput, the capped one worse; and our decode of every CMCD string the players
sent equals the SVTA Common Media Library's."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from probes.config import load_config
from rum.cloudfront import REALTIME_FIELDS
from rum.cmcd import QUERY_PARAM, decode
from rum.ingest import IngestRequest, ingest
from testbed.accesslog import read_lines
from testbed.clips import ClipSpec, make_clip
from testbed.edges import EdgeSpec, edge_process
from testbed.origin import origin_bucket
from tests.browser.harness import NODE_MODULES, PAGE, PLAYER_BUILDS, Browser, PlayCase, PlayResult
from tests.conftest import cdnpack_cli
from tests.moto import FAKE_CREDENTIALS, moto_server
from tests.rum.test_cmcd import oracle

BUCKET = "cdnpack-cmcd"
#: 640x360: the compact ladder keeps 360p (700 kb/s) and 240p (300 kb/s), so a player has a
#: choice to make; 2 s segments.
CLIP = ClipSpec(duration=12.0, width=640, height=360, frame_rate="25")
CAP_BPS = 450_000  # below the top rendition (700k video + 96k audio), above the lowest
#: player -> (region id, its viewers' country, the manifest it plays)
PLAYERS = {"hls.js": ("hlsjs", "JP", "master.m3u8"), "dashjs": ("dashjs", "KR", "manifest.mpd"),
           "shaka": ("shaka", "SG", "manifest.mpd")}
#: The edge location each player's viewers reach, in their country: standard logs have no
#: c-country, so the edge alone puts their lines in the region (rum/locations.py).
EDGE_LOCATIONS = {"JP": "NRT57-P1", "KR": "ICN54-C1", "SG": "SIN2-P3"}
KINDS = ("open", "capped")
ADVANCE = 4.0


@dataclass(frozen=True)
class CmcdRun:
    plays: dict[tuple[str, str], PlayResult]  # (player, kind) -> result
    realtime: dict[tuple[str, str], dict[str, Any]]  # (region, cdn) -> RUM cell
    standard: dict[tuple[str, str], dict[str, Any]]
    payloads: list[str]  # every distinct CMCD string the players sent


def edge_name(player: str, kind: str) -> str:
    return f"{PLAYERS[player][0]}-{kind}"


@pytest.fixture(scope="module")
def cmcd_run(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> CmcdRun:
    base = tmp_path_factory.mktemp("cmcd")
    page_root, logs = base / "page", base / "logs"
    page_root.mkdir()
    shutil.copy(PAGE, page_root / PAGE.name)
    for build in PLAYER_BUILDS:
        shutil.copy(NODE_MODULES / build, page_root / Path(build).name)
    env = {**os.environ, **FAKE_CREDENTIALS}
    release = base / "release"
    done = cdnpack_cli("package", make_clip(base / "source.mp4", CLIP), "-o", release,
                       "--ladder", "compact", "--segment-duration", "2", "--json", env=env)
    assert done.returncode == 0, done.stderr
    with moto_server() as moto:
        origin_bucket(moto.client("s3"), BUCKET)
        done = cdnpack_cli("push", release, f"s3://{BUCKET}/clear", "--endpoint-url", moto.url,
                           "--json", env=env)
        assert done.returncode == 0, done.stderr
        specs = [EdgeSpec(name="page", root=str(page_root), cache="none")]
        for player, (_, country, _) in PLAYERS.items():
            for kind in KINDS:
                name = edge_name(player, kind)
                specs.append(EdgeSpec(
                    name=name, origin=f"{moto.url}/{BUCKET}/", cache="cloudfront",
                    bandwidth=CAP_BPS if kind == "capped" else None,
                    access_log=str(logs / name), country=country,
                    edge_location=EDGE_LOCATIONS[country]))
        plays: dict[tuple[str, str], PlayResult] = {}
        with edge_process(specs, base) as edges:
            for player, (_, _, manifest) in PLAYERS.items():
                for kind in KINDS:
                    plays[player, kind] = browser.play(PlayCase(
                        page=edges.url("page", "/player.html"), player=player,
                        manifest=edges.url(edge_name(player, kind), f"/clear/{manifest}"),
                        advance=ADVANCE, timeout=45.0, cmcd=True))
            ports = dict(edges.ports)
        # the edges stopped: their last log delivery is written
    config = base / "regions.yaml"
    regions = "\n".join(f"  - {{id: {r}, name: {p}, weight: 1, countries: [{c}]}}"
                        for p, (r, c, _) in PLAYERS.items())
    cdns = "\n".join(f"  - {{id: {edge_name(p, k)}, base_url: "
                     f"'http://127.0.0.1:{ports[edge_name(p, k)]}/'}}"
                     for p in PLAYERS for k in KINDS)
    config.write_text(f"regions:\n{regions}\ncdns:\n{cdns}\ntargets: [clear/master.m3u8]\n")
    cells = {}
    for fmt in ("realtime", "standard"):
        result = ingest(IngestRequest(
            tuple(str(p) for p in sorted(logs.glob(f"*/{fmt}"))), f"cloudfront-{fmt}",
            load_config(config), base / f"RUM-{fmt}.jsonl"))
        assert all(f.rejected == 0 and f.problem is None for f in result.files)
        cells[fmt] = {(c.region, c.cdn): c.line() for c in result.cells}
    query = REALTIME_FIELDS.index("cs-uri-query")
    payloads = sorted({value for line in read_lines(sorted(logs.glob("*/realtime/*.gz")))
                       for name, value in parse_qsl(line.split("\t")[query])
                       if name == QUERY_PARAM})
    return CmcdRun(plays, cells["realtime"], cells["standard"], payloads)


def cell(run: CmcdRun, player: str, kind: str, fmt: str = "realtime") -> dict[str, Any]:
    cells = run.realtime if fmt == "realtime" else run.standard
    key = (PLAYERS[player][0], edge_name(player, kind))
    assert key in cells, (key, sorted(cells))
    return cells[key]


@pytest.mark.parametrize("player", list(PLAYERS))
def test_each_session_is_found_with_startup_bitrate_and_throughput(
        cmcd_run: CmcdRun, player: str) -> None:
    open_play = cmcd_run.plays[player, "open"]
    assert open_play.ok, open_play.raw
    for kind in KINDS:
        assert cmcd_run.plays[player, kind].frames > 0, cmcd_run.plays[player, kind].raw
        c = cell(cmcd_run, player, kind)
        assert c["sessions"] == 1, c
        assert c["startup_p50"] is not None, c
        assert 0 < c["startup_p50"] < 45, c
        assert c["bitrate"] is not None, c
        assert 250_000 <= c["bitrate"] <= 1_000_000, c  # the ladder's rungs (with audio)
        assert c["throughput_p50"] is not None, c  # the edge's own measure
        if player != "shaka":  # shaka-player's CMCD carries no mtp
            assert c["mtp_p50"] is not None, c
        assert c["error_rate"] == 0.0, c
        assert c["video_requests"] >= 2, c


@pytest.mark.parametrize("player", list(PLAYERS))
def test_a_session_capped_below_the_top_rendition_fares_worse(
        cmcd_run: CmcdRun, player: str) -> None:
    unthrottled, capped = cell(cmcd_run, player, "open"), cell(cmcd_run, player, "capped")
    assert (capped["bitrate"] < unthrottled["bitrate"]
            or capped["rebuffering_sessions"] > unthrottled["rebuffering_sessions"]), (
        unthrottled, capped)
    assert capped["throughput_p50"] < unthrottled["throughput_p50"], (unthrottled, capped)
    assert capped["throughput_p50"] < 1.5 * CAP_BPS, capped  # the edge delivered at the cap
    if player != "shaka":
        assert capped["mtp_p50"] < unthrottled["mtp_p50"], (unthrottled, capped)


@pytest.mark.parametrize("player", list(PLAYERS))
def test_standard_logs_find_the_same_sessions(cmcd_run: CmcdRun, player: str) -> None:
    for kind in KINDS:
        real, std = cell(cmcd_run, player, kind), cell(cmcd_run, player, kind, "standard")
        for key in ("sessions", "requests", "video_requests", "bitrate", "bytes"):
            assert std[key] == real[key], (key, std, real)


def test_our_cmcd_decode_equals_the_svta_decoder_for_every_string_sent(
        cmcd_run: CmcdRun) -> None:
    assert len(cmcd_run.payloads) > 20
    theirs = oracle(cmcd_run.payloads)
    for payload, expected in zip(cmcd_run.payloads, theirs, strict=True):
        ours = decode(payload)
        assert ours.malformed == (), payload
        assert ours.data == expected, payload
