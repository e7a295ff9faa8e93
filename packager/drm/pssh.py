"""Per-DRM-system PSSH boxes (Widevine, PlayReady, W3C common/ClearKey) for a set of content keys.

Each DRM system reads its own pssh box (ISO/IEC 23001-7 §8.1) from the init segment or from the
manifest (`cenc:pssh`, `mspr:pro`). The boxes here are byte for byte what Shaka Packager v3
writes for the same keys and scheme, so players and licence servers that accept its output
accept ours. Only PlayReady needs the key itself (for the header CHECKSUM); no key byte ever
appears in a box, and nothing here logs or writes files.
"""

from __future__ import annotations

import base64
import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from packager.drm.systems import (
    COMMON_SYSTEM_ID,
    PLAYREADY_SYSTEM_ID,
    PSSH_SYSTEM_IDS,
    PSSH_SYSTEMS,
    SCHEMES,
    WIDEVINE_SYSTEM_ID,
    pssh_systems,
)
from packager.errors import InputError
from packager.keys.model import ContentKey
from packager.mp4 import isobmff

PLAYREADY_HEADER_NS = "http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader"
#: PlayReady Object record type 1: a rights management header (WRMHEADER), UTF-16LE.
_PLAYREADY_RECORD_WRMHEADER = 1
#: WidevinePsshData (widevine_pssh_data.proto) field numbers; fields are written in this order.
_WV_KEY_ID = 2
_WV_CONTENT_ID = 4
_WV_PROTECTION_SCHEME = 9
_LENGTH_DELIMITED = 2
_VARINT = 0


@dataclass(frozen=True)
class SystemPssh:
    """One DRM system's pssh box and the KIDs it signals (for the manifests' ContentProtection)."""

    system: str  # "widevine" | "playready" | "common"
    system_id: bytes
    kids: tuple[bytes, ...]
    #: The box's Data field (for PlayReady the PlayReady Object, i.e. what `mspr:pro` holds).
    data: bytes
    box: bytes

    @property
    def system_urn(self) -> str:
        """The DASH ContentProtection@schemeIdUri of the system (DASH-IF IOP §7.5.2)."""
        return f"urn:uuid:{uuid.UUID(bytes=self.system_id)}"


def pssh_boxes(
    keys: Sequence[ContentKey],
    scheme: str,
    systems: Sequence[str] = PSSH_SYSTEMS,
    *,
    content_id: bytes | None = None,
    la_url: str | None = None,
    for_track: ContentKey | None = None,
) -> list[SystemPssh]:
    """The pssh boxes of every asked system for a release's keys, as Shaka Packager writes them
    (and in its order: common, PlayReady, Widevine).

    Widevine and common list all KIDs, in the order given, in one box each (Shaka Packager
    orders them by key label). A PlayReady header holds one KID, so PlayReady gets one box per
    key; `for_track` (a track's own key) keeps only that track's box, which is what goes into
    its init segment, while the manifest level signals them all.
    """
    _check_scheme(scheme)
    if not keys:
        raise InputError("DRM signaling needs at least one content key")
    unknown = [s for s in systems if s not in PSSH_SYSTEM_IDS]
    if unknown:
        raise InputError(
            f"unknown DRM system {unknown[0]!r}; known systems: {', '.join(PSSH_SYSTEMS)}"
        )
    kids = _unique_kids(keys)
    if for_track is not None and for_track.kid not in kids:
        raise InputError(f"the track's KID {for_track.kid_uuid} is not among the release's keys")
    out: list[SystemPssh] = []
    for system in (s for s in PSSH_SYSTEMS if s in systems):
        if system == "widevine":
            data = widevine_pssh_data(kids, scheme, content_id)
            box = _pssh_v0(WIDEVINE_SYSTEM_ID, data)
            out.append(SystemPssh(system, WIDEVINE_SYSTEM_ID, tuple(kids), data, box))
        elif system == "playready":
            for key in _unique_keys(keys):
                if for_track is not None and key.kid != for_track.kid:
                    continue
                data = playready_object(key, scheme, la_url)
                box = _pssh_v0(PLAYREADY_SYSTEM_ID, data)
                out.append(SystemPssh(system, PLAYREADY_SYSTEM_ID, (key.kid,), data, box))
        elif system == "common":
            box = common_pssh(kids)
            out.append(SystemPssh(system, COMMON_SYSTEM_ID, tuple(kids), b"", box))
    return out


# --- W3C common format (ClearKey) -------------------------------------------------------------


def common_pssh(kids: Sequence[bytes]) -> bytes:
    """The W3C common-format pssh (https://www.w3.org/TR/eme-initdata-cenc/): version 1, the KIDs,
    empty Data. The one builder lives in isobmff.py; this only names it for the system table."""
    return isobmff.pssh_box(COMMON_SYSTEM_ID, list(kids))


# --- Widevine ---------------------------------------------------------------------------------


def widevine_pssh_data(
    kids: Sequence[bytes], scheme: str, content_id: bytes | None = None
) -> bytes:
    """WidevinePsshData, protobuf-encoded by hand: repeated key_id (2), content_id (4) when
    given, protection_scheme (9) as the scheme's four-character code read as a big-endian
    uint32 ('cenc' = 0x63656e63). Fields in field-number order, as protobuf serializes."""
    _check_scheme(scheme)
    out = bytearray()
    for kid in kids:
        _check_kid(kid)
        out += _field(_WV_KEY_ID, _LENGTH_DELIMITED) + _varint(len(kid)) + kid
    if content_id is not None:
        if not content_id:
            raise InputError("a Widevine content id, when given, must not be empty")
        out += _field(_WV_CONTENT_ID, _LENGTH_DELIMITED) + _varint(len(content_id)) + content_id
    fourcc = int.from_bytes(scheme.encode("ascii"), "big")
    out += _field(_WV_PROTECTION_SCHEME, _VARINT) + _varint(fourcc)
    return bytes(out)


def widevine_pssh(
    kids: Sequence[bytes], scheme: str, content_id: bytes | None = None
) -> bytes:
    """A version 0 Widevine pssh: the KIDs are inside the protobuf, not in the box (version 0
    is what Shaka Packager writes "for backward compatibility" with older CDMs)."""
    return _pssh_v0(WIDEVINE_SYSTEM_ID, widevine_pssh_data(kids, scheme, content_id))


def _field(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _varint(value: int) -> bytes:
    """Protobuf base-128 varint: 7 bits a byte, least significant group first."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# --- PlayReady --------------------------------------------------------------------------------


def kid_guid_bytes(kid: bytes) -> bytes:
    """The KID as PlayReady stores it: a little-endian GUID (first three fields byte-swapped;
    PlayReady Header Specification, "KID")."""
    _check_kid(kid)
    return uuid.UUID(bytes=kid).bytes_le


def playready_checksum(key: ContentKey) -> str:
    """The WRMHEADER CHECKSUM for an AESCTR key: the first 8 bytes of AES-128-ECB(key, KID as
    little-endian GUID), base64 (PlayReady Header Specification, "CHECKSUM")."""
    from packager.encryption.aes import AES  # only PlayReady's cenc header needs a cipher
    encrypted = AES.new(key.key, AES.MODE_ECB).encrypt(kid_guid_bytes(key.kid))
    return base64.b64encode(encrypted[:8]).decode("ascii")


def playready_header(key: ContentKey, scheme: str, la_url: str | None = None) -> str:
    """The WRMHEADER XML for one key.

    - cenc (AES-CTR): version 4.0.0.0 with PROTECTINFO KEYLEN 16 / ALGID AESCTR, the KID and its
      CHECKSUM: every PlayReady client since 1.0 reads it.
    - cbcs (AES-CBC): version 4.3.0.0, the first version that knows ALGID AESCBC; the spec
      defines no CHECKSUM for AESCBC keys, so there is none.
    LA_URL (the licence server) follows, XML-escaped. The text is canonical: no whitespace, the
    element order and forms Shaka Packager uses (`<KID ...></KID>`, not `<KID .../>`).
    """
    _check_scheme(scheme)
    kid = base64.b64encode(kid_guid_bytes(key.kid)).decode("ascii")
    extra = ""
    if la_url is not None:
        if not la_url.strip():
            raise InputError("a PlayReady LA_URL, when given, must not be empty")
        from xml.sax.saxutils import escape  # imports urllib.request: 18 ms, for LA_URL only
        extra = f"<LA_URL>{escape(la_url)}</LA_URL>"
    head = f'<WRMHEADER xmlns="{PLAYREADY_HEADER_NS}" '
    if scheme == "cenc":
        return (
            f'{head}version="4.0.0.0"><DATA>'
            "<PROTECTINFO><KEYLEN>16</KEYLEN><ALGID>AESCTR</ALGID></PROTECTINFO>"
            f"<KID>{kid}</KID><CHECKSUM>{playready_checksum(key)}</CHECKSUM>"
            f"{extra}</DATA></WRMHEADER>"
        )
    return (
        f'{head}version="4.3.0.0"><DATA><PROTECTINFO><KIDS>'
        f'<KID ALGID="AESCBC" VALUE="{kid}"></KID>'
        f"</KIDS></PROTECTINFO>{extra}</DATA></WRMHEADER>"
    )


def playready_object(key: ContentKey, scheme: str, la_url: str | None = None) -> bytes:
    """A PlayReady Object (PlayReady Header Specification §1-2, all integers little-endian):
    u32 total length, u16 record count (1), then one record: u16 type 1, u16 length, the
    WRMHEADER in UTF-16LE without BOM. The same bytes go into the pssh Data and `mspr:pro`."""
    header = playready_header(key, scheme, la_url).encode("utf-16-le")
    if len(header) > 0xFFFF:
        raise InputError("the PlayReady header is too long (LA_URL over ~32000 characters)")
    record = struct.pack("<HH", _PLAYREADY_RECORD_WRMHEADER, len(header)) + header
    return struct.pack("<IH", 4 + 2 + len(record), 1) + record


def playready_pssh(key: ContentKey, scheme: str, la_url: str | None = None) -> bytes:
    """A version 0 PlayReady pssh whose Data is the PlayReady Object (as Shaka Packager)."""
    return _pssh_v0(PLAYREADY_SYSTEM_ID, playready_object(key, scheme, la_url))


# --- shared -----------------------------------------------------------------------------------


def _pssh_v0(system_id: bytes, data: bytes) -> bytes:
    """A version 0 pssh (ISO/IEC 23001-7 §8.1.1): SystemID, DataSize, Data; no KID list."""
    return isobmff.full_box(b"pssh", 0, 0, system_id, struct.pack(">I", len(data)), data)


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise InputError(f"DRM signaling needs a scheme among {', '.join(SCHEMES)}, not {scheme!r}")


def _check_kid(kid: bytes) -> None:
    if len(kid) != 16:
        raise InputError("a KID is 16 bytes (32 hex digits)")


def _unique_kids(keys: Sequence[ContentKey]) -> list[bytes]:
    return [key.kid for key in _unique_keys(keys)]


def _unique_keys(keys: Sequence[ContentKey]) -> list[ContentKey]:
    """Keys in first-seen order with repeated KIDs dropped; one KID with two keys is refused."""
    seen: dict[bytes, ContentKey] = {}
    for key in keys:
        known = seen.setdefault(key.kid, key)
        if known.key != key.key:
            raise InputError(f"KID {key.kid_uuid} is given with two different keys")
    return list(seen.values())


def track_pssh(
    release_keys: Sequence[ContentKey],
    scheme: str,
    systems: Sequence[str],
    track_key: ContentKey,
    content_id: bytes | None = None,
    la_url: str | None = None,
) -> tuple[SystemPssh, ...]:
    """The pssh boxes one track's init segment carries for the `--drm` systems, in Shaka
    Packager's order (common, PlayReady, Widevine): Widevine and common list every KID of the
    release, PlayReady only the track's own."""
    wanted = pssh_systems(list(systems))
    if not wanted:
        return ()
    return tuple(
        pssh_boxes(release_keys, scheme, wanted, content_id=content_id, la_url=la_url,
                   for_track=track_key)
    )
