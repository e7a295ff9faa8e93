"""`cdnpack preview`: a release, the page that plays it and the page's keys, until Ctrl-C.

    GET /                      the page (page/index.html): shaka-player's UI and the panels
    GET /static/NAME           its script and styles and the vendored player (assets.py)
    GET /preview.json          what the page shows (summary.py); never a key
    GET /release/PATH          a file release.json lists, Range requests included (I-frame
                               playlists address byte ranges of segments); a steered release's
                               top manifests with their pathways on /pathway/ (pathways.py)
    GET /pathway/ID/PATH       the same files, under each pathway of a steered release
    GET /steering/hls.json     each region's pathway order (?region=ID; regions.py),
    GET /steering/dash.json    the preview's stand-in for the release's steering server
    GET /keys/clearkey.json    {KID: key} for the page's ClearKey player (cenc, cbcs)
    GET /keys/aes-128.key      the 16-byte key (HLS AES-128), as a key server answers it

Keys go only to a loopback peer that named a loopback host: a web page whose DNS name is
rebound to 127.0.0.1 sends its own host name and is refused. Key answers carry no CORS header
(no other origin can read them) and are never cached; every answer is same-origin only
(Cross-Origin-Resource-Policy). Nothing is logged per request and nothing is written. Error
pages are fixed texts (probes/serving.QuietServer): nothing a request carries comes back.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.web_request import BaseRequest

from packager.errors import InputError
from packager.interrupts import loop_stops_on_signals
from packager.output.release import CONTENT_TYPES
from preview.assets import PAGE, STATIC, Asset, load_assets
from preview.contents import read_contents
from preview.keys import load_keys
from preview.pathways import (
    PATHWAY_PREFIX,
    STEERING_PREFIX,
    local_mpd,
    local_multivariant,
    read_steering,
)
from preview.regions import RegionOrder, order_for, steering_document
from preview.summary import (
    AES_KEY_PATH,
    CLEARKEY_PATH,
    PUBLISHED,
    RELEASE_PREFIX,
    Preview,
    page_doc,
)
from probes.serving import Listen, fixed, parse_listen, start_quiet

SAME_ORIGIN = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
#: A release being previewed may be rebuilt under the same names: always revalidate.
FILE_HEADERS = {**SAME_ORIGIN, "Cache-Control": "no-cache"}
SECRET_HEADERS = {**SAME_ORIGIN, "Cache-Control": "no-store"}
TEXT_HEADERS = {**SAME_ORIGIN, "Content-Type": "text/plain; charset=utf-8"}
JSON = "application/json"
LOOPBACK_NAMES = frozenset({"localhost", "localhost."})
STEERING_PATHS = {f"{STEERING_PREFIX}hls.json": "hls.json",
                  f"{STEERING_PREFIX}dash.json": "dash.json"}


@dataclass(frozen=True)
class PreviewRequest:
    preview: Preview
    host: str = "127.0.0.1"
    port: int = 8800


@dataclass(frozen=True)
class PreviewResult:
    url: str
    requests: int
    seconds: float
    signal: int | None  # the signal that stopped it


def preview_request(release_dir: Path, listen: str, keystore: Path | None, key: str | None,
                    source: str, plan: Callable[[], tuple[RegionOrder, ...]] | None = None,
                    key_from_env: bool = False) -> PreviewRequest:
    """Everything a preview serves, checked before anything listens (one line, exit 2, on a
    mistake): the address, the release, its keys, its pathways, and (`plan`, asked once the
    release is known to be steered) each region's order."""
    check_listen(listen, keys=False)  # a typo is reported before the release is read
    contents = read_contents(release_dir)
    keys = load_keys(contents.release, keystore, key, key_from_env)
    address = check_listen(listen, keys=keys is not None)
    steered = read_steering(contents)
    if plan is not None and steered is None:
        raise InputError(f"{release_dir}: not steered; --config and --results plan pathways "
                         "of steered releases")
    if source == PUBLISHED and steered is None:
        raise InputError(f"{release_dir}: not steered, its manifests name no CDN to play it "
                         "from as published")
    regions = plan() if plan is not None else ()
    return PreviewRequest(Preview(contents, keys, steered, regions, source), address.host,
                          address.port)


def check_listen(listen: str, keys: bool) -> Listen:
    """`--listen`, a loopback address when the page gets keys."""
    address = parse_listen(listen, "127.0.0.1:8800")
    if keys and not is_loopback(address.host):
        raise InputError(f"--listen {listen}: the preview hands this release's keys to its "
                         "page, so it listens on a loopback address only (127.0.0.1, ::1)")
    return address


def is_loopback(host: str) -> bool:
    """A loopback address or name (127.0.0.0/8, ::1, localhost), as a listen address or a Host
    header's host."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _host_of(header: str) -> str:
    """The host part of a Host header (`[::1]:8800`, `127.0.0.1:8800`, `localhost`); "" for
    one that is not a host (an unclosed `[`: urlsplit refuses it)."""
    try:
        return urlsplit(f"//{header}").hostname or ""
    except ValueError:
        return ""


def content_type(path: str) -> str:
    return CONTENT_TYPES.get(PurePosixPath(path).suffix, "application/octet-stream")


def page_headers(preview: Preview) -> dict[str, str]:
    """The page's Content-Security-Policy: scripts and styles from this preview only, fetches
    too, except that a steered release played as published reaches its CDNs, whose hosts a
    steering document may change (PATHWAY-CLONES replace the host per region)."""
    remote = " http: https:" if preview.steered is not None else ""
    policy = (f"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
              f"img-src 'self' blob: data:{remote}; media-src 'self' blob: data:; "
              f"connect-src 'self'{remote}; frame-ancestors 'none'; base-uri 'none'; "
              "form-action 'none'")
    return {**FILE_HEADERS, "Content-Security-Policy": policy}


class PreviewService:
    """Answers every request of one preview, from what was read at start."""

    def __init__(self, preview: Preview, assets: dict[str, Asset]) -> None:
        self.preview = preview
        self.assets = assets
        self.requests = 0
        self.paths = preview.contents.paths
        self.doc = json.dumps(page_doc(preview), ensure_ascii=False).encode()
        self.page_headers = page_headers(preview)
        self.pathways = set(preview.steered.ids) if preview.steered is not None else set()
        self.regions = {r.region for r in preview.regions}
        #: Release path -> the top manifest as played locally (steered releases only).
        self.local: dict[str, bytes] = {}
        steered = preview.steered
        if steered is not None:
            contents = preview.contents
            for fmt, path in contents.manifests.items():
                text = (contents.root / path).read_text()
                self.local[path] = (local_multivariant(text, steered, self.paths)
                                    if fmt == "hls" else local_mpd(text, steered)).encode()

    async def handle(self, request: BaseRequest) -> web.StreamResponse:
        self.requests += 1
        if request.method not in ("GET", "HEAD"):
            return fixed(405, {**TEXT_HEADERS, "Allow": "GET, HEAD"})
        path = request.path
        if path in ("/", "/index.html"):
            return self.asset(PAGE, self.page_headers)
        if path.startswith("/static/"):
            name = path.removeprefix("/static/")
            return self.asset(name, FILE_HEADERS) if name in STATIC else fixed(404, TEXT_HEADERS)
        if path == "/preview.json":
            return web.Response(body=self.doc, content_type=JSON, headers=FILE_HEADERS)
        if path.startswith(RELEASE_PREFIX):
            return self.release_file(path.removeprefix(RELEASE_PREFIX))
        if path.startswith(PATHWAY_PREFIX):
            pathway, _, rest = path.removeprefix(PATHWAY_PREFIX).partition("/")
            if pathway not in self.pathways:
                return fixed(404, TEXT_HEADERS)
            return self.release_file(rest)
        if path in STEERING_PATHS:
            return self.steering(request, STEERING_PATHS[path])
        if path in (CLEARKEY_PATH, AES_KEY_PATH):
            return self.key(request, path)
        return fixed(404, TEXT_HEADERS)

    def asset(self, name: str, headers: dict[str, str]) -> web.Response:
        asset = self.assets[name]
        return web.Response(body=asset.body, headers={**headers,
                                                      "Content-Type": asset.content_type})

    def release_file(self, path: str) -> web.StreamResponse:
        """A file the release lists (nothing else under its root: not release.json's
        neighbours, not a path that climbs out of it); a steered release's top manifests as
        played from this preview (played as published, the page loads them from a CDN)."""
        if path not in self.paths:
            return fixed(404, TEXT_HEADERS)
        headers = {**FILE_HEADERS, "Content-Type": content_type(path)}
        if path in self.local:
            return web.Response(body=self.local[path], headers=headers)
        return web.FileResponse(self.preview.contents.root / path, headers=headers)

    def steering(self, request: BaseRequest, name: str) -> web.StreamResponse:
        steered = self.preview.steered
        if steered is None:
            return fixed(404, TEXT_HEADERS)
        try:
            region = request.query.get("region")
        except ValueError:  # an undecodable query string: as if it named no region
            region = None
        order = order_for(self.preview.regions, region if region in self.regions else None,
                          steered.ids)
        return web.Response(body=steering_document(name, order), content_type=JSON,
                            headers={**SAME_ORIGIN, "Cache-Control": "no-store"})

    def key(self, request: BaseRequest, path: str) -> web.StreamResponse:
        keys = self.preview.keys
        wanted = "clearkey" if path == CLEARKEY_PATH else "aes-128 key"
        if keys is None or keys.delivery != wanted:
            return fixed(404, TEXT_HEADERS)
        if not (is_loopback(request.remote or "")
                and is_loopback(_host_of(request.headers.get("Host", "")))):
            return fixed(403, TEXT_HEADERS)
        if path == CLEARKEY_PATH:
            return web.Response(body=keys.clearkey_table(), content_type=JSON,
                                headers=SECRET_HEADERS)
        return web.Response(body=keys.aes_key(), content_type="application/octet-stream",
                            headers=SECRET_HEADERS)


async def serve(request: PreviewRequest, on_ready: Callable[[str], None],
                stop: asyncio.Event) -> PreviewResult:
    """Listen and answer until `stop` is set; then close everything."""
    started = time.monotonic()
    service = PreviewService(request.preview, load_assets())
    runner, url = await start_quiet(service.handle, request.host, request.port, TEXT_HEADERS,
                                    backlog=128, shutdown_timeout=1.0)
    try:
        on_ready(url)
        await stop.wait()
    finally:
        await runner.cleanup()
    return PreviewResult(url, service.requests, time.monotonic() - started, None)


def run(request: PreviewRequest, on_ready: Callable[[str], None]) -> PreviewResult:
    """`serve` on a fresh event loop until SIGINT or SIGTERM (the result names which), the
    signals taken over as `steer serve` takes them (packager/interrupts.py)."""
    async def main() -> PreviewResult:
        stop = asyncio.Event()
        with loop_stops_on_signals(asyncio.get_running_loop(), stop) as stopped:
            result = await serve(request, on_ready, stop)
        return PreviewResult(result.url, result.requests, result.seconds, stopped.signum)

    with asyncio.Runner() as runner:
        return runner.run(main())
