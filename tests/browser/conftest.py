"""Browser-test fixtures: one Chromium, and the releases pushed to the local S3 origin and served
through a CORS edge, with the player page on another origin, the AES-128 key on a third and a
ClearKey license server (hls.js's keys) on a fourth."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from testbed.clips import ClipSpec, make_clip
from testbed.edges import Edges, EdgeSpec, edge_process
from testbed.origin import origin_bucket
from tests.browser.clearkey_license import ClearKeyLicenseServer
from tests.browser.harness import (
    DRIVER,
    NODE_MODULES,
    PAGE,
    PLAYER_BUILDS,
    PREVIEW_DRIVER,
    Browser,
    BrowserError,
    chromium_path,
    missing_parts,
    unavailable,
)
from tests.conftest import cdnpack_cli
from tests.moto import FAKE_CREDENTIALS, MotoServer, moto_server

#: Ten seconds of 426x240: the compact ladder keeps one 240p rung, so a player has one
#: rendition to pick and 5 s of playback needs only three 2 s segments.
CLIP = ClipSpec(duration=10.0, width=426, height=240, frame_rate="25")
SEGMENT_SECONDS = "2"
KID = "0b5e1e5a1b7c4d2e9f3a6b8c0d1e2f30"
KEY = "6c2f0e9d8a7b4c3d2e1f0a9b8c7d6e5f"
WRONG_KEY = "00000000000000000000000000000001"
BUCKET = "cdnpack-browser"
#: Release name -> extra `cdnpack package` arguments.
RELEASES: dict[str, tuple[str, ...]] = {
    "clear": (),
    "cbcs": ("--encrypt", "cbcs", "--keys", "raw", "--drm", "clearkey"),
    "cenc": ("--encrypt", "cenc", "--keys", "raw", "--drm", "clearkey"),
    "aes-128": ("--encrypt", "aes-128", "--format", "hls"),
    # Trick play: thumbnails every 2 s in 2x2 sheets (the 10 s clip: two full sheets, one
    # with a single thumbnail), besides the I-frame playlists every CMAF release has.
    "thumbnails": ("--thumbnails", "2s:2x2:90"),
    # The video encoded in five chunks (one a segment) joined on the coordinator, then
    # encrypted: 5 s of playback cross the joins at 2 s and 4 s.
    "chunked-cenc": ("--encrypt", "cenc", "--keys", "raw", "--drm", "clearkey",
                     "--chunks", "5"),
    # AV1 beside H.264 (tests/browser/test_codecs.py): a player picks AV1 and falls back.
    "av1": ("--codec", "h264", "--codec", "av1"),
    # cbcs with the default --drm (Widevine, PlayReady, ClearKey, FairPlay), played with
    # ClearKey: hls.js plays cbcs HLS only beside another DRM system, as a ClearKey-only cbcs
    # playlist needs the identity key line that stops it (packager/drm/signalling.py); "cbcs"
    # is that ClearKey-only release, for shaka-player and dash.js.
    "av1-cbcs": ("--codec", "h264", "--codec", "av1", "--encrypt", "cbcs", "--keys", "raw"),
    "av1-cenc": ("--codec", "h264", "--codec", "av1", "--encrypt", "cenc", "--keys", "raw",
                 "--drm", "clearkey"),
}
#: The releases whose samples are encrypted (a player needs the ClearKey key).
SAMPLE_ENCRYPTED = frozenset({"cenc", "cbcs", "chunked-cenc"})


@dataclass(frozen=True)
class Stage:
    edges: Edges
    #: The S3 origin's endpoint (moto_server) and work directory: more releases can be pushed
    #: onto the stage (tests/browser/test_localized.py does).
    origin: str = ""
    work: Path = Path()
    licenses: str = ""  # the ClearKey license server's URL

    def license(self, key: str = KEY) -> str:
        """The license URL that answers KID with `key` (KEY or WRONG_KEY)."""
        return f"{self.licenses}/license/{'right' if key == KEY else 'wrong'}"

    @property
    def page(self) -> str:
        return self.edges.url("page", "/player.html")

    def manifest(self, release: str, name: str) -> str:
        return self.edges.url("media", f"/{release}/{name}")

    def key(self, name: str) -> str:
        return self.edges.url("keys", f"/{name}")


def edge_specs(moto: MotoServer, page_root: Path, key_root: Path) -> list[EdgeSpec]:
    """The media CDN (pulls from the bucket), the player page's origin, the AES-128 key server:
    three origins, so every media and key request is cross-origin (CORS) as in production."""
    return [
        EdgeSpec(name="media", origin=f"{moto.url}/{BUCKET}/", cache="none"),
        EdgeSpec(name="page", root=str(page_root), cache="none"),
        EdgeSpec(name="keys", root=str(key_root), cache="none"),
    ]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    yield from chromium_driver(DRIVER)


@pytest.fixture(scope="session")
def preview_browser() -> Iterator[Browser]:
    """A Chromium driven through `cdnpack preview`'s page (preview.mjs)."""
    yield from chromium_driver(PREVIEW_DRIVER)


def chromium_driver(driver: Path) -> Iterator[Browser]:
    missing = missing_parts()
    if missing:
        unavailable(f"missing {', '.join(missing)}")
    chromium = chromium_path()
    assert chromium is not None
    try:
        started = Browser(chromium, driver=driver)
    except BrowserError as exc:
        unavailable(str(exc))
    try:
        yield started
    finally:
        started.close()


@pytest.fixture(scope="session")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    """Its own moto_server: the shared one is reset by tests that use `moto_s3`, and the edge
    would then answer 404 for any object it has not cached yet."""
    base = tmp_path_factory.mktemp("browser")
    page_root, key_root, work = base / "page", base / "keys", base / "work"
    for directory in (page_root, key_root, work):
        directory.mkdir()
    shutil.copy(PAGE, page_root / PAGE.name)
    for build in PLAYER_BUILDS:  # copies: the edge refuses paths (and symlinks) outside root
        shutil.copy(NODE_MODULES / build, page_root / Path(build).name)
    # The AES-128 key lives on its own server, never in the bucket.
    (key_root / "aes.key").write_bytes(bytes.fromhex(KEY))
    (key_root / "wrong.key").write_bytes(bytes.fromhex(WRONG_KEY))
    licenses = ClearKeyLicenseServer({"right": {KID: KEY}, "wrong": {KID: WRONG_KEY}})
    with (moto_server() as moto,
          edge_process(edge_specs(moto, page_root, key_root), work) as edges, licenses):
        origin_bucket(moto.client("s3"), BUCKET)  # the edges read it unsigned, as through an OAC
        stage = Stage(edges, moto.url, base, licenses.url)
        source = make_clip(base / "source.mp4", CLIP)
        env = {**os.environ, **FAKE_CREDENTIALS, "CDNPACK_KEY": f"{KID}:{KEY}"}

        def publish(name: str) -> None:
            out = base / "releases" / name
            extra = RELEASES[name]
            if name == "aes-128":
                extra = (*extra, "--key-uri", stage.key("aes.key"))
            # --no-vmaf: playback is what these releases are for. With SCORE (the measured
            # VMAF), hls.js starts on the codec set whose best variant scores highest
            # (getStartCodecTier), which here is not the codec preference under test.
            done = cdnpack_cli("package", source, "-o", out, "--ladder", "compact",
                               "--segment-duration", SEGMENT_SECONDS, "--no-vmaf", *extra,
                               "--json", env=env)
            assert done.returncode == 0, done.stderr
            done = cdnpack_cli("push", out, f"s3://{BUCKET}/{name}", "--endpoint-url", moto.url,
                               "--json", env=env)
            assert done.returncode == 0, done.stderr

        with ThreadPoolExecutor(len(RELEASES)) as pool:  # small CLI runs side by side
            list(pool.map(publish, RELEASES))
        yield stage
