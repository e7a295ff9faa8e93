"""`cdnpack preview` in Chromium, used as a release engineer uses it: the page plays the
encrypted, steered, localized release from its own files (ClearKey from the keystore; the
CDNs it names are gone), follows the region picked to that region's first pathway, switches the
audio language, shows a subtitle cue and a thumbnail on the seek bar, plays trick play from the
I-frame playlists, and asks nothing of anything but the preview; an AES-128 TS release plays
with its key from the preview; `demo --serve` plays the demo's release through its edges. Each
case photographs the page (tmp dir)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from testbed.clips import make_clip
from testbed.subtitles import LINES, TIMES
from tests.browser.harness import Browser
from tests.interrupts import descendants
from tests.preview.serving import CLIP, Previewing, Watched, previewing

#: The third Arabic cue (3.0-3.5 s): shown after a paused seek into it.
CUE = {"time": (TIMES[2][0] + TIMES[2][1]) / 2000, "text": LINES["ar"][2]}
ADVANCE = 1.5
HOVER = 0.5  # the middle of the 6 s seek bar: 3 s, the first sheet's second thumbnail
#: 2x2 sheets of 160x90 thumbnails (tests/preview/serving.py THUMBNAILS).
SHEET_WIDTH = 2 * 160


def case(served: Previewing, fmt: str, shot: Path, **steps: Any) -> str:
    return json.dumps({"url": f"{served.url}/?format={fmt}", "advance": ADVANCE,
                       "timeout": 90, "screenshot": str(shot), **steps})


def explain(result: dict[str, Any]) -> str:
    shown = {k: v for k, v in result.items() if k != "requests"}
    requests = result.get("requests") or []
    return f"{json.dumps(shown, ensure_ascii=False)[:3000]} requests={requests[-15:]}"


def check_page_photographed(result: dict[str, Any], shot: Path) -> None:
    assert result["screenshot"] == str(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 50_000  # a page with a video frame in it, not a blank one


@pytest.mark.parametrize(("fmt", "region", "first"), [("hls", "eu", "beta"),
                                                     ("dash", "jpkr", "alpha")])
def test_the_page_plays_the_release_from_its_own_files(
        preview_browser: Browser, watched: Watched, tmp_path: Path, fmt: str, region: str,
        first: str) -> None:
    shot = tmp_path / f"preview-{fmt}.png"
    steps: dict[str, Any] = {
        "region": region, "audio": "fr", "audio_expect": "/audio_fr_dub_",
        "text": {"language": "ar", "forced": False}, "cue": CUE, "hover": HOVER}
    if fmt == "hls":  # I-frame playlists are HLS's (DASH trick play plays every frame)
        steps["trick"] = 4
    with previewing(watched.release, "--keystore", watched.keystore, "--config",
                    watched.config, "--results", watched.results) as served:
        result = preview_browser.ask(case(served, fmt, shot, **steps), 90)
    assert result["ok"], explain(result)
    first_frames, frames = result["frames"]
    assert 0 < first_frames < frames, explain(result)
    assert result["media_keys"], explain(result)  # decrypted through EME (ClearKey)
    # The region picked: its order's first pathway is where segments come from.
    assert result["pathways"][-1] == first, explain(result)
    assert any(f"/pathway/{first}/" in u and "/seg_" in u for u in result["requests"])
    assert result["audio"]["active"] == ["fr"], explain(result)
    assert result["audio"]["fetched"] > 0, explain(result)
    assert CUE["text"] in result["cue"]["text"], explain(result)
    thumbnail = result["thumbnail"]
    assert thumbnail["visible"], explain(result)
    assert thumbnail["src"].endswith("/thumbnails_90p/tile_00001.jpg"), explain(result)
    assert thumbnail["natural_width"] == SHEET_WIDTH, explain(result)
    if fmt == "hls":
        assert any(u.endswith("/iframes.m3u8") for u in result["iframes"]), explain(result)
    # Nothing but the preview was asked for anything (the CDNs it names are gone).
    assert all(u.startswith(served.url + "/") for u in result["requests"]), explain(result)
    assert result["console"] == [], explain(result)
    check_page_photographed(result, shot)


@pytest.fixture(scope="module")
def ts_release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An AES-128 MPEG-TS release whose key URI names a key server that does not exist."""
    base = tmp_path_factory.mktemp("aes")
    source = make_clip(base / "source.mp4", CLIP)
    key = f"{'0b5e1e5a1b7c4d2e9f3a6b8c0d1e2f30'}:{'6c2f0e9d8a7b4c3d2e1f0a9b8c7d6e5f'}"
    done = subprocess.run(
        [sys.executable, "-m", "cli", "package", str(source), "-o", str(base / "release"),
         "--ladder", "compact", "--segment-duration", "2", "--encrypt", "aes-128",
         "--key-uri", "https://keys.invalid/k", "--format", "hls", "--thumbnails", "2s:2x2:90"],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, check=False,
        env={**os.environ, "CDNPACK_KEY": key})
    assert done.returncode == 0, done.stderr
    return base / "release", key


def test_an_aes_128_release_plays_with_its_key_from_the_preview(
        preview_browser: Browser, ts_release: tuple[Path, str], tmp_path: Path) -> None:
    release, key = ts_release
    shot = tmp_path / "preview-aes.png"
    with previewing(release, "--key", key) as served:
        result = preview_browser.ask(case(served, "hls", shot, hover=HOVER), 90)
    assert result["ok"], explain(result)
    assert 0 < result["frames"][0] < result["frames"][1], explain(result)
    assert f"{served.url}/keys/aes-128.key" in result["requests"]
    assert all(u.startswith(served.url + "/") for u in result["requests"]), explain(result)
    check_page_photographed(result, shot)


@contextmanager
def demo_served(work: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """`cdnpack demo --serve` until its preview listens; then the test's, until Ctrl-C."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "demo", "--serve", "--duration", "4", "-o", str(work),
         "--listen", "127.0.0.1:0", "--json"], cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "1000"})
    try:
        assert proc.stdout is not None
        # Read from the pipe itself: select() on the buffered stream after a readline misses
        # the lines that readline buffered with it (the demo's result and `listening` came in
        # one burst, and the test waited out select's timeout with the line in the buffer).
        fd, pending = proc.stdout.fileno(), b""
        event: dict[str, Any] = {}
        deadline = time.monotonic() + 600
        while not event:
            while b"\n" not in pending:
                ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
                chunk = os.read(fd, 65536) if ready else b""
                if not chunk:
                    proc.kill()
                    raise AssertionError(
                        f"demo --serve did not serve: {proc.communicate()[1][-3000:]}")
                pending += chunk
            line, pending = pending.split(b"\n", 1)
            if line.startswith(b'{"event":"listening"'):
                event = json.loads(line)
        yield proc, event
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)


def test_demo_serve_plays_the_release_through_its_edges(preview_browser: Browser,
                                                        tmp_path: Path) -> None:
    shot = tmp_path / "demo-serve.png"
    with demo_served(tmp_path / "demo") as (proc, event):
        children = descendants(proc.pid)
        assert children  # the origin and the edges are still up
        result = preview_browser.ask(json.dumps({
            "url": f"{event['url']}/?format=hls", "advance": ADVANCE, "timeout": 90,
            "region": "eu", "screenshot": str(shot)}), 90)
        assert result["ok"], explain(result)
        assert result["media_keys"], explain(result)
        page = json.loads(urllib.request.urlopen(f"{event['url']}/preview.json").read())
        edges = {urlsplit(p["base_url"]).netloc: p["id"] for p in page["steering"]["pathways"]}
        steering = urlsplit(page["steering"]["servers"]["hls"]).netloc
        # Every segment through an edge of the region's first pathway (the demo's plan), the
        # steering server asked for that region, the keys from the preview.
        media = [urlsplit(u) for u in result["requests"] if "/seg_" in u]
        assert media, explain(result)
        eu = next(r for r in page["steering"]["regions"] if r["region"] == "eu")
        assert {edges.get(u.netloc) for u in media} == {eu["order"][0]}, explain(result)
        assert any(urlsplit(u).netloc == steering and "region=eu" in u
                   for u in result["requests"]), explain(result)
        assert f"{event['url']}/keys/clearkey.json" in result["requests"]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "cdnpack: interrupted"  # the stop summary: stdout
    assert json.loads(out.strip().splitlines()[-1])["event"] == "stopped"
    assert not descendants(proc.pid)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]
    check_page_photographed(result, shot)
