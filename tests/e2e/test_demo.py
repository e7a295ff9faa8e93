"""`cdnpack demo`, the real command: the whole flow on one machine, and a clean Ctrl-C."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from packager.keys.keystore import Keystore
from tests.conftest import cdnpack_cli
from tests.interrupts import assert_stopped_cleanly, interrupt, start

ROOT = Path(__file__).resolve().parents[2]


def test_demo_releases_through_the_local_origin_and_two_cdns(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    done = cdnpack_cli("demo", "-o", work, "--duration", "6", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["package"]["protection"]["scheme"] == "cbcs"
    renditions = doc["package"]["renditions"]
    kinds = [r["kind"] for r in renditions]
    assert kinds.count("video") == 5  # 720p source: 720, 540, 480, 360, 240
    # A localized title: three audio languages, four subtitle languages (one right-to-left,
    # Thai), English forced narratives and captions.
    assert {r["language"] for r in renditions if r["kind"] == "audio"} == {"en", "es-419", "ja"}
    assert {r["language"] for r in renditions if r["role"] == "subtitle"} == {
        "ar", "th", "es-419", "ja"}
    assert {(r["language"], r["role"]) for r in renditions if r["kind"] == "text"} >= {
        ("en", "forced-subtitle"), ("en", "caption")}
    # Trick play: an I-frame playlist per video rendition, thumbnails every 2 s (three in 6 s).
    assert len(doc["package"]["iframes"]) == 5
    (thumbnails,) = doc["package"]["thumbnails"]
    assert (thumbnails["interval"], thumbnails["sheets"]) == (2.0, 1)
    assert (work / "release" / thumbnails["id"] / "tile_00001.jpg").stat().st_size > 0
    release = doc["release"]
    assert release["gate"]["passed"] is True
    assert len(release["gate"]["checks"]) == 6 * 2 * 4  # regions x CDNs x budgets
    assert {p["region"] for p in release["probes"]} == {"na", "eu", "jpkr", "sea", "latam", "me"}
    assert all(p["errors"] == 0 for p in release["probes"])
    # The probe's start fetched the default (English) audio and forced narratives too.
    results = work / "probes"
    steps = {(json.loads(line).get("step"), json.loads(line).get("rendition"))
             for path in results.glob("*.jsonl") for line in path.read_text().splitlines()}
    assert ("audio", "audio_en_aac_128k/playlist.m3u8") in steps
    assert ("text", "text_en_forced-subtitle/playlist.m3u8") in steps
    cells = [c for r in release["scorecard"]["regions"] for c in r["cells"]]
    assert {c["cdn"] for c in cells} == {"cloudfront", "fastly"}
    published = release["published"]
    # The multivariant playlists and MPDs, after the gate: the release's own and each of its
    # four grants'.
    grants = ("jpkr-sd", "latam", "na-eu", "sea")
    held = sorted([f"releases/demo/{name}" for name in ("manifest.mpd", "master.m3u8")]
                  + [f"releases/demo/{stem}.grant-{g}.{ext}" for g in grants
                     for stem, ext in (("manifest", "mpd"), ("master", "m3u8"))])
    assert published["uploaded"] == len(held)
    assert release["staged"]["held"] == held
    assert published["invalidations"][0]["status"].lower() == "completed"
    assert (work / "report.html").read_text().lower().startswith("<!doctype html>")
    # Steered: fastly, degraded in Europe and Southeast Asia, is not first there; the server
    # answered each region's order; the manifests name both pathways and the server.
    steering = doc["steering"]
    plan = {r["region"]: r["order"] for r in steering["plan"]["regions"]}
    assert plan["eu"][0] == plan["sea"][0] == "cloudfront"
    assert steering["served"] == plan
    assert release["steering"]["documents"]["hls/eu.json"] == plan["eu"]
    master = (work / "release" / "master.m3u8").read_text()
    assert f'#EXT-X-CONTENT-STEERING:SERVER-URI="{steering["server"]}/hls.json"' in master
    assert 'PATHWAY-ID="cloudfront"' in master
    assert 'PATHWAY-ID="fastly"' in master
    # Rights, enforced at the edge: each region's viewers through an edge running the
    # function `rights publish` put on the local CloudFront.
    rights = doc["rights"]
    assert rights["published"]["function"]["published"]
    assert rights["published"]["associated"]
    answers = {v["region"]: (v["manifest"], v["grant"], v["top"]) for v in rights["viewers"]}
    assert answers == {
        "na": (200, "na-eu", 200), "eu": (200, "na-eu", 200),
        "jpkr": (200, "jpkr-sd", 403),  # up to 480p: the 720p rung is refused
        "sea": (451, None, 451),  # its window closed last month
        "latam": (451, None, 451),  # its window opens in three months
        "me": (451, None, 451)}  # never licensed
    # Keys: in the keystore beside the release, never in it.
    keys = [stored.key for stored in Keystore(work / "keys")]
    assert keys
    for path in (work / "release").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(k.key in data or k.key.hex().encode() in data for k in keys), path


def encoding(work: Path) -> bool:
    """The ladder's ffmpeg is writing into the release's work directory (the origin and the
    edges are up)."""
    return any(any(p.rglob("*.mp4")) for p in work.glob(".release.work-*"))


def probing(work: Path) -> bool:
    """A region's probe results are written: the others are being probed, with the staged
    manifests on the origin (which the way out deletes)."""
    return any((work / "probes").glob("*.jsonl"))


@pytest.mark.parametrize(("moment", "sig"), [(encoding, signal.SIGTERM), (probing, signal.SIGINT)],
                         ids=["encode", "probe"])
def test_a_signal_stops_the_demo_and_everything_it_started(
        tmp_path: Path, moment: Callable[[Path], bool], sig: signal.Signals) -> None:
    """Ctrl-C reaches the whole process group, as from a terminal: the origin and the edges
    must still serve the demo's clean-up (the staged manifests deleted), then stop. (Staging
    and publishing are the release flow's: tests/e2e/test_release.py stops it there.)"""
    work = tmp_path / "demo"
    command = start(["demo", "-o", work, "--duration", "4", "--json"])
    command.wait_until(lambda: moment(work), moment.__name__, timeout=240)
    assert_stopped_cleanly(interrupt(command, sig), sig)
    assert not list(work.glob(".release.work-*"))
