"""`cdnpack preview` as users run it: the release's files byte for byte (ranges too) and nothing
beside them, each region's order answered, the keys to a loopback page only and never in its
output, fuzzed requests answered without a 5xx or an echo, Ctrl-C and SIGTERM ending it in one
line, and nothing written anywhere."""

from __future__ import annotations

import asyncio
import json
import random
import signal

import pytest

from tests.fuzz import exchange, fuzzed, reflected
from tests.preview.serving import Watched, previewing, tree_state

#: A packaged release and a server in another process: seconds of real work.
pytestmark = pytest.mark.slow


def test_the_release_files_are_served_as_they_are(watched: Watched) -> None:
    with previewing(watched.release, "--keystore", watched.keystore) as served:
        segment = "video_240p/seg_00002.m4s"
        data = (watched.release / segment).read_bytes()
        status, headers, body = served.get(f"/release/{segment}")
        assert (status, body) == (200, data)
        assert headers["Content-Type"] == "video/iso.segment"
        assert headers["Cross-Origin-Resource-Policy"] == "same-origin"
        # I-frame playlists address byte ranges of segments.
        status, headers, body = served.get(f"/release/{segment}", {"Range": "bytes=100-299"})
        assert (status, body) == (206, data[100:300])
        assert served.get(f"/pathway/beta/{segment}")[2] == data
        for path in ("/release/release.json", "/release/../regions.yaml", "/release/",
                     "/pathway/gamma/" + segment, "/release/video_240p", "/keys/aes-128.key",
                     "/static/../preview.json", "/nothing"):
            assert served.get(path)[0] == 404, path
        status, headers, body = served.get("/")
        assert status == 200
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert b"/static/shaka-player.ui.js" in body


def test_steered_manifests_are_played_from_the_release_files(watched: Watched) -> None:
    with previewing(watched.release, "--keystore", watched.keystore) as served:
        master = served.get("/release/master.m3u8")[2].decode()
        mpd = served.get("/release/manifest.mpd")[2].decode()
        doc = json.loads(served.get("/preview.json")[2])
    for gone in ("http://127.0.0.1:1/", "http://127.0.0.1:2/"):
        assert gone not in master
        assert gone not in mpd
    assert 'SERVER-URI="/steering/hls.json"' in master
    assert '<BaseURL serviceLocation="beta">/pathway/beta/</BaseURL>' in mpd
    steering = doc["steering"]
    assert [p["id"] for p in steering["pathways"]] == ["alpha", "beta"]
    assert steering["regions"] == []  # no plan given: the manifests' order everywhere
    assert set(doc["sources"]) == {"local", "published"}
    assert doc["sources"]["published"]["hls"] == "http://127.0.0.1:1/rel/master.m3u8"


def test_each_region_gets_its_planned_order(watched: Watched) -> None:
    with previewing(watched.release, "--keystore", watched.keystore, "--config",
                    watched.config, "--results", watched.results) as served:
        def priority(query: str) -> list[str]:
            status, headers, body = served.get(f"/steering/hls.json{query}")
            assert status == 200
            assert headers["Cache-Control"] == "no-store"
            return list(json.loads(body)["PATHWAY-PRIORITY"])

        assert priority("?region=eu&_HLS_pathway=alpha") == ["beta", "alpha"]
        assert priority("?region=jpkr") == ["alpha", "beta"]
        assert priority("?region=%ZZ%00") == priority("")  # unknown: the overall order
        dash = json.loads(served.get("/steering/dash.json?region=eu")[2])
        assert dash["SERVICE-LOCATION-PRIORITY"] == ["beta", "alpha"]
        regions = {r["region"]: r for r in json.loads(served.get("/preview.json")[2])[
            "steering"]["regions"]}
    assert served.event["regions"] == {"eu": ["beta", "alpha"], "jpkr": ["alpha", "beta"],
                                       "sea": ["alpha", "beta"],  # no results: the config's
                                       "_overall": ["beta", "alpha"]}
    assert regions["eu"]["basis"] == "measured"
    assert regions["eu"]["name"] == "Europe"


def test_keys_go_to_a_loopback_page_only_and_nowhere_else(watched: Watched) -> None:
    before = tree_state(watched.release, watched.keystore)
    with previewing(watched.release, "--keystore", watched.keystore) as served:
        host = served.url.removeprefix("http://")
        status, headers, body = served.get("/keys/clearkey.json", {"Host": host})
        assert status == 200
        assert json.loads(body) == watched.keys
        assert headers["Cache-Control"] == "no-store"
        assert "Access-Control-Allow-Origin" not in headers
        assert served.get("/keys/clearkey.json", {"Host": f"localhost:{host.split(':')[1]}"}
                          )[0] == 200
        # A page of another site whose name now resolves to 127.0.0.1 (DNS rebinding).
        for host in ("cdnpack.attacker.example", "[::1", "127.0.0.1.attacker.example", ""):
            assert served.get("/keys/clearkey.json", {"Host": host})[0] == 403, host
        page_doc = served.get("/preview.json")[2].decode()
    (key,) = watched.keys.values()
    for text in (page_doc, served.stdout, served.stderr):
        assert key not in text
    assert tree_state(watched.release, watched.keystore) == before


def test_fuzzed_requests_get_no_5xx_and_no_echo(watched: Watched) -> None:
    paths = ["/", "/preview.json", "/release/master.m3u8", "/release/manifest.mpd",
             "/release/video_240p/seg_00001.m4s", "/pathway/alpha/video_240p/playlist.m3u8",
             "/pathway/%2e%2e/release.json", "/steering/hls.json", "/steering/dash.json",
             "/keys/clearkey.json", "/static/preview.js", "/static/%2e%2e/contents.py",
             "/release/%00", "/release//etc/passwd", "/x" * 300]
    rng = random.Random(20261206)
    requests = [fuzzed(rng, i, paths, ["region", "_HLS_pathway", "_DASH_throughput"],
                       {"Range": ["bytes=0-99", "bytes=-5", "bytes=99999999-", "bytes=x"]})
                for i in range(3000)]
    with previewing(watched.release, "--keystore", watched.keystore) as served:
        answers = asyncio.run(exchange(served.url, requests))
        assert served.get("/preview.json")[0] == 200  # still serving
    statuses = sorted({status for status, _ in answers})
    assert all(status < 500 for status in statuses), statuses
    assert {200, 404} <= set(statuses)
    echoed = reflected(answers)
    assert not echoed, echoed[:3]


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_it_in_one_line(watched: Watched, stop: int, code: int) -> None:
    with previewing(watched.release, "--keystore", watched.keystore, stop=stop) as served:
        assert served.get("/preview.json")[0] == 200
    assert served.returncode == code
    assert served.stderr.splitlines() == [
        "cdnpack: interrupted" if stop == signal.SIGINT else "cdnpack: terminated"]
    assert json.loads(served.lines[-1]) == {**json.loads(served.lines[-1]), "event": "stopped",
                                            "requests": 1}
