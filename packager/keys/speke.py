"""SPEKE v2.0 key source: ask a key server for a title's content keys over HTTP(S) with CPIX.

The encryptor (we) chooses the KIDs and POSTs a CPIX 2.3 request (cpix.request_cpix) with the
SPEKE v2.0 headers; the key server answers the same document with each key in
pskc:PlainValue and the DRM signaling it was asked for (AWS "SPEKE API v2": customizations and
constraints, standard payload components, encryption contract). Optional AWS Signature V4
(service execute-api) for key servers behind API Gateway with IAM authorization.

The answer is checked before anything is used or stored: same content id, a key for every
KID asked and none other, DRMSystem data only for asked KIDs, each PSSH one box of its
systemId. Keys are then stored in the keystore like generated ones (a release's keys are never
lost) and the release's signaling is derived from them by drm.py, as for every key source.

Errors and exit codes (one line, never a key's bytes):
- 2 (KeyServerRefusedError): the server refused the request: 4xx except 408/429 (a wrong
  URL, credentials, signing region or content id: the invocation must change), or a redirect.
- 3 (KeyServerError): unreachable, timeout, 408/429/5xx: the environment; retrying may help.
- 3 (KeyServerAnswerError): a 200 answer that is not a usable CPIX document (not XML, another
  content id, missing or extra KIDs, encrypted keys we cannot decrypt, a broken PSSH): the
  key server misbehaves, which is not the user's input and not our bug.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from urllib.parse import urlsplit, urlunsplit

from packager.drm.systems import FAIRPLAY_SYSTEM_ID, SYSTEMS
from packager.errors import BitstreamError, EndpointError, InputError
from packager.interrupts import run_async
from packager.keys.cpix import CpixDrmSystem, parse_cpix, request_cpix
from packager.keys.keystore import Keystore
from packager.keys.model import KEY_BYTES, ClassThresholds, KeyConflictError, KeySet, TrackClass
from packager.mp4 import isobmff

log = logging.getLogger(__name__)

SPEKE_VERSION = "2.0"
DEFAULT_TIMEOUT = 30.0
#: A CPIX answer for a handful of keys is a few kB; anything this large is not one.
_MAX_ANSWER = 4 << 20
_RETRYABLE = (408, 429)


class KeyServerRefusedError(InputError):
    """The key server refused the request (4xx): the URL, credentials or request must change."""


class KeyServerError(EndpointError):
    """The key server is unreachable, too slow, or failing (5xx): exit 3, retrying may help."""


class KeyServerAnswerError(KeyServerError):
    """The key server answered 200 with something that is not the CPIX document asked for."""


@dataclass(frozen=True)
class KeyServer:
    """Where and how to ask: the SPEKE endpoint URL, a total timeout for the exchange, and
    the AWS region to SigV4-sign for (None: no signing)."""

    url: str
    timeout: float = DEFAULT_TIMEOUT
    sigv4_region: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"--keys speke: {self.label!r} is not an http(s) URL")
        if not self.timeout > 0:
            raise InputError("--key-server-timeout must be more than 0 seconds")
        if self.sigv4_region is not None and not self.sigv4_region.strip():
            raise InputError("--speke-sigv4-region needs a region name, e.g. us-east-1")

    @property
    def label(self) -> str:
        """The URL for messages: no user info, no query (either may hold a secret)."""
        parts = urlsplit(self.url)
        netloc = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class SpekeAnswer:
    """The keys of the answer as a KeySet (classes as we asked) and its DRM system data."""

    keyset: KeySet
    drm_systems: tuple[CpixDrmSystem, ...]


def new_kids(per_class: bool) -> dict[TrackClass, bytes]:
    """Fresh random KIDs (OS CSPRNG): one for every track class, or one shared by all. The
    encryptor picks KIDs in SPEKE v2; the key server picks the keys."""
    if per_class:
        return {c: secrets.token_bytes(KEY_BYTES) for c in TrackClass}
    return dict.fromkeys(TrackClass, secrets.token_bytes(KEY_BYTES))


def request_keys(
    server: KeyServer,
    content_id: str,
    scheme: str,
    systems: Sequence[str],
    kids: Mapping[TrackClass, bytes],
    thresholds: ClassThresholds | None = None,
) -> SpekeAnswer:
    """One SPEKE v2.0 exchange: the keys of `kids` (track class → KID) for content_id."""
    t = thresholds or ClassThresholds()
    # What the key server fills in per system (SPEKE v2 DRMSystem children); ClearKey is not
    # asked for: its signalling is the KIDs alone and key servers do not know it.
    signaling = {SYSTEMS[s].system_id: SYSTEMS[s].speke for s in systems if SYSTEMS[s].speke}
    body = request_cpix(content_id, kids, scheme, signaling, t)
    headers = {
        "Content-Type": "application/xml",
        "X-Speke-Version": SPEKE_VERSION,
        "X-Speke-User-Agent": f"cdnpack/{_version()}",
    }
    if server.sigv4_region is not None:
        headers = sigv4_headers(server.url, body, headers, server.sigv4_region)
    log.info("asking key server %s for %d key(s) of %r", server.label,
             len(set(kids.values())), content_id)
    status, reason, data = run_async(_post(server, body, headers))
    _check_status(server, status, reason, data)
    return parse_answer(data, server, content_id, kids, t)


def sigv4_headers(
    url: str, body: bytes, headers: Mapping[str, str], region: str
) -> dict[str, str]:
    """The headers with AWS Signature V4 for API Gateway (service execute-api), credentials
    from botocore's usual chain (environment, profile, container or instance role)."""
    # Imported here, like aiohttp in _post: only `--keys speke:` pays for them at start-up.
    from botocore.auth import SigV4Auth  # noqa: PLC0415
    from botocore.awsrequest import AWSRequest  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError  # noqa: PLC0415
    from botocore.session import get_session  # noqa: PLC0415

    try:
        credentials = get_session().get_credentials()
        frozen = None if credentials is None else credentials.get_frozen_credentials()
    except BotoCoreError as exc:
        raise InputError(f"--speke-sigv4-region: cannot load AWS credentials ({exc})") from None
    if frozen is None or not frozen.access_key:
        raise InputError("--speke-sigv4-region needs AWS credentials (environment, profile or "
                         "instance role); none were found")
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    SigV4Auth(frozen, "execute-api", region).add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}


async def _post(
    server: KeyServer, body: bytes, headers: Mapping[str, str]
) -> tuple[int, str, bytes]:
    import aiohttp  # noqa: PLC0415

    timeout = aiohttp.ClientTimeout(total=server.timeout)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(server.url, data=body, headers=dict(headers),
                         allow_redirects=False) as response,
        ):
            data = await response.content.read(_MAX_ANSWER + 1)
            return response.status, response.reason or "", data
    except TimeoutError:
        raise KeyServerError(f"key server {server.label}: no answer within "
                             f"{server.timeout:g} s (--key-server-timeout)") from None
    except aiohttp.ClientConnectorError as exc:
        why = exc.os_error.strerror or str(exc.os_error)
        raise KeyServerError(f"key server {server.label}: unreachable ({why})") from None
    except aiohttp.ClientError as exc:
        raise KeyServerError(f"key server {server.label}: {type(exc).__name__}: {exc}") from None


def _check_status(server: KeyServer, status: int, reason: str, data: bytes) -> None:
    if status == 200:
        if len(data) > _MAX_ANSWER:
            raise KeyServerAnswerError(f"key server {server.label}: answer over "
                                       f"{_MAX_ANSWER >> 20} MiB; not a CPIX document")
        return
    said = f"{status} {reason}".strip() + _snippet(data)
    if 300 <= status < 400:
        raise KeyServerRefusedError(f"key server {server.label}: redirects ({said}); "
                                    "give the final URL")
    if 400 <= status < 500 and status not in _RETRYABLE:
        hint = ""
        if status in (401, 403):
            hint = "; check the credentials" + (
                " and --speke-sigv4-region" if server.sigv4_region else
                " (API Gateway with IAM auth needs --speke-sigv4-region)")
        raise KeyServerRefusedError(f"key server {server.label}: refused the request "
                                    f"({said}){hint}")
    raise KeyServerError(f"key server {server.label}: failed ({said}); try again later")


def _snippet(data: bytes) -> str:
    """The start of an error body, on one line (API Gateway says why in it); nothing that
    looks like a key document."""
    text = " ".join(data[:400].decode("utf-8", "replace").split())
    if not text or "PlainValue" in text:
        return ""
    return f": {text[:120]}"


def parse_answer(
    data: bytes,
    server: KeyServer,
    content_id: str,
    kids: Mapping[TrackClass, bytes],
    thresholds: ClassThresholds,
) -> SpekeAnswer:
    """The answer's keys for the KIDs asked, as a KeySet with the classes we asked for."""
    source = f"key server {server.label}"
    try:
        doc = parse_cpix(data, source, thresholds)
    except InputError as exc:
        if "EncryptedValue" in str(exc):
            raise KeyServerAnswerError(
                f"{source}: answered with encrypted content keys (pskc:EncryptedValue); cdnpack "
                "asks for keys in the clear (no cpix:DeliveryDataList) and cannot decrypt them"
            ) from None
        raise KeyServerAnswerError(str(exc)) from None
    if doc.content_id != content_id:
        raise KeyServerAnswerError(f"{source}: answered for content id {doc.content_id!r}, "
                                   f"not {content_id!r}")
    asked = set(kids.values())
    by_kid = {key.kid: key for key in doc.keys}
    missing = [k for k in kids.values() if k not in by_kid]
    if missing:
        raise KeyServerAnswerError(f"{source}: no key for KID {_uuid(missing[0])}")
    extra = [k for k in by_kid if k not in asked]
    if extra:
        raise KeyServerAnswerError(f"{source}: a key for KID {_uuid(extra[0])}, which was not "
                                   "asked for")
    for system in doc.drm_systems:
        where = f"{source}: DRMSystem {uuid.UUID(bytes=system.system_id)} for KID " \
                f"{_uuid(system.kid)}"
        if system.kid not in asked:
            raise KeyServerAnswerError(f"{where}: KID was not asked for")
        if system.pssh is not None:
            try:
                box_system = isobmff.read_pssh_system_id(system.pssh)
            except BitstreamError as exc:
                raise KeyServerAnswerError(f"{where}: cpix:PSSH is {exc}") from None
            if box_system != system.system_id:
                raise KeyServerAnswerError(f"{where}: cpix:PSSH is a pssh of system "
                                           f"{uuid.UUID(bytes=box_system)}")
        uri = system.uri_ext_x_key
        if system.system_id == FAIRPLAY_SYSTEM_ID and uri is not None and (
                not uri.startswith("skd://") or any(c in uri for c in '"\r\n')):
            raise KeyServerAnswerError(f"{where}: cpix:URIExtXKey {uri[:80]!r} is not an "
                                       "skd:// URI that can be quoted in HLS")
    keyset = KeySet(content_id, {c: by_kid[kid] for c, kid in kids.items()}, thresholds)
    return SpekeAnswer(keyset, doc.drm_systems)


def fetch_keyset(
    server: KeyServer,
    store: Keystore,
    content_id: str,
    scheme: str,
    systems: Sequence[str],
    per_class: bool,
    thresholds: ClassThresholds | None = None,
) -> SpekeAnswer:
    """The key set of content_id from the key server (with the answer's DRM system data),
    stored in the keystore before it is returned. A title the keystore already knows is asked
    for again with its stored KIDs, and the server must answer the stored keys (content
    already packaged with them would become unplayable otherwise): nothing is stored then, a
    mismatch is a KeyConflictError."""
    t = thresholds or ClassThresholds()
    if any(stored.content_id == content_id for stored in store):
        known = store.keyset(content_id, t)
        if known.per_class != per_class:
            held = "one key per track class" if known.per_class else "a single key"
            raise InputError(f"keystore {store.root}: content id {content_id!r} already has "
                             f"{held}; match --per-class to it or choose another --content-id")
        answer = request_keys(server, content_id, scheme, systems,
                              {c: k.kid for c, k in known.keys.items()}, t)
        for c in TrackClass:
            if answer.keyset.keys[c] != known.keys[c]:
                raise KeyConflictError(
                    f"key server {server.label}: KID {known.keys[c].kid_uuid} of {content_id!r} "
                    f"has another key than the one in keystore {store.root}; refusing it"
                )
        return SpekeAnswer(known, answer.drm_systems)
    answer = request_keys(server, content_id, scheme, systems, new_kids(per_class), t)
    try:
        store.put_keyset(answer.keyset)
    except KeyConflictError as exc:
        raise KeyConflictError(f"key server {server.label}: {exc}; nothing stored") from None
    return answer


def fairplay_uris(answer: SpekeAnswer) -> tuple[tuple[bytes, str], ...]:
    """(KID, skd:// URI) for each key the server gave a FairPlay URIExtXKey: the URI is the
    licence server's convention (a KID, an asset id, a query), not derivable from the key."""
    return tuple((s.kid, s.uri_ext_x_key) for s in answer.drm_systems
                 if s.system_id == FAIRPLAY_SYSTEM_ID and s.uri_ext_x_key)


def _uuid(kid: bytes) -> str:
    return str(uuid.UUID(bytes=kid)) if len(kid) == KEY_BYTES else kid.hex()


def _version() -> str:
    try:
        return metadata.version("cdnpack")
    except metadata.PackageNotFoundError:
        return "0"
