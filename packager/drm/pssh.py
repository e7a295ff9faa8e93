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
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from Crypto.Cipher import AES

from packager.encryption.cenc import COMMON_SYSTEM_ID, SCHEMES, TrackProtection
from packager.errors import InputError
from packager.keys.model import ContentKey
from packager.mp4 import isobmff

WIDEVINE_SYSTEM_ID = bytes.fromhex("edef8ba979d64acea3c827dcd51d21ed")
PLAYREADY_SYSTEM_ID = bytes.fromhex("9a04f07998404286ab92e65be0885f95")
#: The systems this module signals, in the order their boxes are returned: the order Shaka
#: Packager writes them into moov whatever order --protection_systems names them in.
SYSTEMS = ("common", "playready", "widevine")
SYSTEM_IDS = {
    "widevine": WIDEVINE_SYSTEM_ID,
    "playready": PLAYREADY_SYSTEM_ID,
    "common": COMMON_SYSTEM_ID,
}
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
    systems: Sequence[str] = SYSTEMS,
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
    unknown = [s for s in systems if s not in SYSTEM_IDS]
    if unknown:
        raise InputError(
            f"unknown DRM system {unknown[0]!r}; known systems: {', '.join(SYSTEMS)}"
        )
    kids = _unique_kids(keys)
    if for_track is not None and for_track.kid not in kids:
        raise InputError(f"the track's KID {for_track.kid_uuid} is not among the release's keys")
    out: list[SystemPssh] = []
    for system in (s for s in SYSTEMS if s in systems):
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


# --- manifest signaling (consumed by hls.py and dash.py) ---------------------------------------

#: `--drm` names -> the pssh systems of pssh_boxes (ClearKey reads the W3C common box;
#: FairPlay has no pssh: it is signalled by its skd:// key URI only).
PSSH_SYSTEM_OF = {"widevine": "widevine", "playready": "playready", "clearkey": "common"}
#: HLS METHOD per Common Encryption scheme (Apple HLS authoring spec; RFC 8216bis §4.4.4.4).
HLS_METHODS = {"cbcs": "SAMPLE-AES", "cenc": "SAMPLE-AES-CTR"}
PLAYREADY_KEYFORMAT = "com.microsoft.playready"
FAIRPLAY_KEYFORMAT = "com.apple.streamingkeydelivery"
MSPR_NS = "urn:microsoft:playready"
CENC_NS = "urn:mpeg:cenc:2013"
#: W3C ClearKey's DASH-IF system id; the common pssh (1077efec-...) is what it reads.
CLEARKEY_SCHEME = "urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e"


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
    wanted = [PSSH_SYSTEM_OF[s] for s in systems if s in PSSH_SYSTEM_OF]
    if not wanted:
        return ()
    return tuple(
        pssh_boxes(release_keys, scheme, wanted, content_id=content_id, la_url=la_url,
                   for_track=track_key)
    )


def hls_key_attributes(protection: TrackProtection) -> list[str]:
    """EXT-X-KEY / EXT-X-SESSION-KEY attribute lists of a protected track, one per DRM system.

    - Widevine: its pssh box as a data: URI, KEYFORMAT its system URN (Shaka Packager's form).
    - PlayReady: the PlayReady Object as a UTF-16 data: URI, KEYFORMAT com.microsoft.playready.
    - ClearKey: KEYFORMAT="identity", as Shaka Packager (see identity_key_attributes).
    - FairPlay (cbcs only): METHOD=SAMPLE-AES, URI skd://<KID hex> (or the key server's
      URIExtXKey, protection.fairplay_uri), KEYID, the Apple KEYFORMAT; no IV (as Shaka
      Packager: FairPlay takes the IV from tenc). KEYID is not in RFC 8216 and Apple clients
      ignore it (unknown attributes are ignored, §4.2), but hls.js reads a FairPlay key's KID
      only from KEYID: without it, and without a Widevine or PlayReady line to borrow from, it
      cannot match the key to its session.
    KEYID is the KID, never a key; the cbcs constant IV (public, it is in tenc) is given as IV.
    """
    method = HLS_METHODS[protection.scheme]
    tail = [f"KEYID=0x{protection.kid.hex()}"]
    if protection.constant_iv:
        tail.append(f"IV=0x{protection.constant_iv.hex()}")
    by_system = {p.system: p for p in protection.drm}
    out: list[str] = []
    for system in protection.systems:
        if system == "fairplay":
            uri = protection.fairplay_uri or f"skd://{protection.kid.hex()}"
            out.append(
                f'METHOD=SAMPLE-AES,URI="{uri}",{tail[0]},'
                f'KEYFORMAT="{FAIRPLAY_KEYFORMAT}",KEYFORMATVERSIONS="1"'
            )
            continue
        if system == "clearkey":
            out.append(identity_key_attributes(protection))
            continue
        found = by_system.get(PSSH_SYSTEM_OF[system])
        if found is None:
            continue
        if system == "playready":
            uri = f"data:text/plain;charset=UTF-16;base64,{_b64(found.data)}"
            keyformat = PLAYREADY_KEYFORMAT
        else:
            uri = f"data:text/plain;base64,{_b64(found.box)}"
            keyformat = found.system_urn
        out.append(",".join([
            f"METHOD={method}", f'URI="{uri}"', *tail,
            f'KEYFORMAT="{keyformat}"', 'KEYFORMATVERSIONS="1"',
        ]))
    return out


def identity_key_attributes(protection: TrackProtection) -> str:
    """ClearKey (the W3C common system) in HLS: KEYFORMAT="identity", the key format RFC 8216
    §4.3.2.4 defines, in the form Shaka Packager writes for the common system
    (simple_hls_notifier.cc): URI a data: URI of the KID, never of the key (the player gets the
    key out of band, e.g. shaka-player's drm.clearKeys, and the KID is also in tenc); no KEYID
    and no KEYFORMATVERSIONS. There is no URN key format for ClearKey in HLS: shaka-player's
    HLS parser knows identity, Widevine, PlayReady, WisePlay and FairPlay only, and refuses an
    encrypted playlist whose key formats it does not know (error 4026,
    HLS_KEYFORMATS_NOT_SUPPORTED), which is what the common system's URN got."""
    attrs = [f"METHOD={HLS_METHODS[protection.scheme]}",
             f'URI="data:text/plain;base64,{_b64(protection.kid)}"']
    if protection.constant_iv:
        attrs.append(f"IV=0x{protection.constant_iv.hex()}")
    attrs.append('KEYFORMAT="identity"')
    return ",".join(attrs)


def dash_content_protection(adaptation: ET.Element, protection: TrackProtection) -> None:
    """One ContentProtection per DRM system after the mp4protection one (DASH-IF IOP §7.7.2,
    in Shaka Packager's order): schemeIdUri the system URN with `cenc:pssh` (the base64 box);
    PlayReady also `mspr:pro` (the PlayReady Object); ClearKey as the common-format system
    and the W3C ClearKey scheme, both with the common pssh. The MPD root must declare the
    cenc (CENC_NS) and mspr (MSPR_NS) prefixes."""
    for found in protection.drm:
        if found.system == "common":
            for scheme, value in ((found.system_urn, None), (CLEARKEY_SCHEME, "ClearKey1.0")):
                element = ET.SubElement(adaptation, "ContentProtection", {"schemeIdUri": scheme})
                if value:
                    element.set("value", value)
                ET.SubElement(element, "cenc:pssh").text = _b64(found.box)
            continue
        element = ET.SubElement(
            adaptation, "ContentProtection", {"schemeIdUri": found.system_urn}
        )
        if found.system == "playready":
            element.set("value", "MSPR 2.0")
        ET.SubElement(element, "cenc:pssh").text = _b64(found.box)
        if found.system == "playready":
            ET.SubElement(element, "mspr:pro").text = _b64(found.data)



def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
