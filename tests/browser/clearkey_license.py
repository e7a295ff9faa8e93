"""A W3C ClearKey license server for the browser tests: aiohttp on 127.0.0.1, its own thread.

hls.js gets ClearKey keys only from a license server (`drmSystems['org.w3.clearkey'].licenseUrl`:
it POSTs the CDM's license request and hands the answer to MediaKeySession.update), so the
keys reach its page the way they would in production: from an origin of their own, never from
the bucket. The server does the exchange honestly (W3C EME §9.1.3 "License Request Format",
§9.1.4 "License Format"): it reads the KIDs the CDM asks for and answers a JSON Web Key Set
with the keys it holds for those KIDs and no others. Each path is a key table of its own
(`/license/NAME`), so a wrong-key case is a URL, not another server.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping

from aiohttp import web

from testbed.loopthread import LoopThread

CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type"}


def b64url(data: bytes) -> str:
    """base64url without padding, as JWK (RFC 7517) and the EME license request write it."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def license_for(request: bytes, keys: Mapping[bytes, bytes]) -> bytes:
    """The JWK Set answering an EME ClearKey license request ({"kids": [...], "type": ...}):
    one octet-sequence key per asked KID the table holds, in the order asked."""
    doc = json.loads(request)
    kids = [unb64url(k) for k in doc["kids"]]
    found = [{"kty": "oct", "kid": b64url(kid), "k": b64url(keys[kid])}
             for kid in kids if kid in keys]
    return json.dumps({"keys": found, "type": doc.get("type", "temporary")}).encode()


class ClearKeyLicenseServer(LoopThread):
    """`tables` maps a name to {KID: key}; POST /license/NAME answers from that table."""

    def __init__(self, tables: Mapping[str, Mapping[str, str]]) -> None:
        super().__init__()
        self.tables = {name: {bytes.fromhex(k): bytes.fromhex(v) for k, v in table.items()}
                       for name, table in tables.items()}

    async def _license(self, request: web.Request) -> web.Response:
        if request.method == "OPTIONS":
            return web.Response(status=204, headers=CORS)
        table = self.tables.get(request.match_info["name"])
        if table is None:
            return web.Response(status=404, headers=CORS)
        body = await request.read()
        try:
            answer = license_for(body, table)
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400, headers=CORS)
        return web.Response(body=answer, content_type="application/json", headers=CORS)

    async def _serve(self, stop: asyncio.Event) -> None:
        app = web.Application()
        for method in ("POST", "OPTIONS"):  # OPTIONS: a CORS preflight, should one come
            app.router.add_route(method, "/license/{name}", self._license)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self.ready()
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
