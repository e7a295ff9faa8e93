"""A local SPEKE v2.0 key server for tests: aiohttp on 127.0.0.1, a random port, its own thread.

It does the server side honestly: reads the request CPIX (content id, KIDs, scheme, DRM systems
and what each asks for), derives each key from its KID with a key seed (HMAC-SHA256, the way
real key providers derive keys), and answers the same document with the keys in
pskc:PlainValue, a real PSSH per system and the FairPlay skd:// URI. The path picks how it
behaves: /ok, /sigv4 (verifies the AWS SigV4 signature with botocore and answers 403 when it
does not match), or a misbehaviour: /401, /500, /429, /slow, /garbage, /wrong-kid,
/wrong-content-id, /encrypted, /bad-pssh, /bad-uri, /other-seed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from packager.drm import pssh as drm
from packager.drm.systems import WIDEVINE_SYSTEM_ID
from packager.keys.cpix import CPIX_NS, PSKC_NS
from packager.keys.model import ContentKey

SEED = b"speke-test-key-seed"
#: The only credentials /sigv4 accepts, and the region/service it expects in the scope.
ACCESS_KEY = "AKIDSPEKETEST"
SECRET_KEY = "speke-test-secret"
REGION = "eu-west-1"
FAIRPLAY_SYSTEM_ID = "94ce86fb-07ff-4f43-adb8-93d2fa968ca2"
C = f"{{{CPIX_NS}}}"
P = f"{{{PSKC_NS}}}"

ET.register_namespace("cpix", CPIX_NS)
ET.register_namespace("pskc", PSKC_NS)


def fairplay_uri(kid: bytes) -> str:
    """The server's FairPlay key URI convention (not cdnpack's default skd://<hex>)."""
    return f"skd://speke-test/{uuid.UUID(bytes=kid)}?asset=1"


def key_for(kid: bytes, seed: bytes = SEED) -> bytes:
    """The content key the server hands out for a KID."""
    return hmac.new(seed, kid, hashlib.sha256).digest()[:16]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class SpekeServer:
    port: int = 0
    #: Every request, in order (tests look at what the client sent).
    requests: list[Received] = field(default_factory=list)

    def url(self, mode: str = "ok") -> str:
        return f"http://127.0.0.1:{self.port}/{mode}"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        mode = request.match_info["mode"]
        self.requests.append(Received(mode, dict(request.headers), body))
        if mode in ("401", "500", "429"):
            return web.json_response({"message": "no keys for you"}, status=int(mode))
        if mode == "slow":
            await asyncio.sleep(5)
        if mode == "garbage":
            return web.Response(text="<html><body>maintenance</body></html>",
                                content_type="text/html")
        if mode == "sigv4" and not verify_sigv4(request, body):
            return web.json_response({"message": "The request signature we calculated does "
                                                 "not match the signature you provided."},
                                     status=403)
        if request.headers.get("X-Speke-Version") != "2.0" or \
                request.headers.get("Content-Type") != "application/xml":
            return web.json_response({"message": "not a SPEKE v2.0 request"}, status=400)
        return web.Response(body=answer(body, mode), content_type="application/xml")


def answer(body: bytes, mode: str) -> bytes:
    """The request document filled in: keys, PSSH, URIExtXKey, HLSSignalingData."""
    root = ET.fromstring(body)
    seed = b"another seed" if mode == "other-seed" else SEED
    for element in root.iter(f"{C}ContentKey"):
        kid = uuid.UUID(element.get("kid", "")).bytes
        secret = ET.SubElement(ET.SubElement(element, f"{C}Data"), f"{P}Secret")
        value = ET.SubElement(secret, f"{P}EncryptedValue" if mode == "encrypted"
                              else f"{P}PlainValue")
        value.text = base64.b64encode(key_for(kid, seed)).decode()
    scheme = next(root.iter(f"{C}ContentKey")).get("commonEncryptionScheme", "cenc")
    for system in root.iter(f"{C}DRMSystem"):
        kid = uuid.UUID(system.get("kid", "")).bytes
        key = ContentKey(kid, key_for(kid, seed))
        system_id = system.get("systemId", "")
        for child in system:
            if child.tag == f"{C}PSSH":
                if system_id == str(uuid.UUID(bytes=WIDEVINE_SYSTEM_ID)):
                    box = drm.widevine_pssh([kid], scheme)
                else:
                    box = drm.playready_pssh(key, scheme)
                if mode == "bad-pssh":
                    box = drm.common_pssh([kid])
                child.text = base64.b64encode(box).decode()
            elif child.tag == f"{C}URIExtXKey":
                uri = 'skd://x",URI="https://evil/' if mode == "bad-uri" else fairplay_uri(kid)
                child.text = base64.b64encode(uri.encode()).decode()
            elif child.tag == f"{C}HLSSignalingData":
                line = f'#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://{kid.hex()}"'
                child.text = base64.b64encode(line.encode()).decode()
    if mode == "wrong-kid":  # a key (and its rule and signaling) for a KID nobody asked for
        asked, other = next(root.iter(f"{C}ContentKey")).get("kid"), str(uuid.uuid4())
        for element in root.iter():
            if element.get("kid") == asked:
                element.set("kid", other)
    if mode == "wrong-content-id":
        root.set("contentId", "someone-else")
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def verify_sigv4(request: web.Request, body: bytes) -> bool:
    """Recompute the request's AWS SigV4 signature with botocore over the headers it says it
    signed, with our own credentials, and compare."""
    authorization = request.headers.get("Authorization", "")
    algorithm, _, rest = authorization.partition(" ")
    fields = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)
    if algorithm != "AWS4-HMAC-SHA256" or set(fields) != {"Credential", "SignedHeaders",
                                                          "Signature"}:
        return False
    access_key, date, region, service, terminal = fields["Credential"].split("/")
    if (access_key, region, service, terminal) != (ACCESS_KEY, REGION, "execute-api",
                                                   "aws4_request"):
        return False
    signed = fields["SignedHeaders"].split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return False
    headers = {name: request.headers.get(name, "") for name in signed}
    aws = AWSRequest(method=request.method, url=str(request.url), data=body, headers=headers)
    aws.context["timestamp"] = headers["x-amz-date"]
    if not headers["x-amz-date"].startswith(date):
        return False
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "execute-api", REGION)
    expected = signer.signature(signer.string_to_sign(aws, signer.canonical_request(aws)), aws)
    return hmac.compare_digest(expected, fields["Signature"])


@contextmanager
def speke_server() -> Iterator[SpekeServer]:
    server = SpekeServer()
    app = web.Application()
    app.router.add_post("/{mode}", server.handle)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    server.port = int(runner.addresses[0][1])
    thread = threading.Thread(target=loop.run_forever, name="speke-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(_stop(runner), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


async def _stop(runner: web.AppRunner) -> None:
    """Close the server, then cancel handlers still running (/slow), on the server's loop."""
    await runner.cleanup()
    pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
