"""How a protected track is signalled in HLS and DASH: EXT-X-KEY attributes, ContentProtection.

Both manifests say the same things: the scheme, the KID, and per DRM system the pssh box (or, for
FairPlay, its key URI). This module reads them from a TrackProtection; it never sees a key.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

from packager.drm.protection import TrackProtection
from packager.drm.systems import CLEARKEY_SCHEME, COMMON_SYSTEM_URN, SYSTEMS

#: HLS METHOD per Common Encryption scheme (Apple HLS authoring spec; RFC 8216bis §4.4.4.4).
HLS_METHODS = {"cbcs": "SAMPLE-AES", "cenc": "SAMPLE-AES-CTR"}
MSPR_NS = "urn:microsoft:playready"
CENC_NS = "urn:mpeg:cenc:2013"
MP4_PROTECTION_SCHEME = "urn:mpeg:dash:mp4protection:2011"


def track_key_attributes(protection: TrackProtection) -> list[str]:
    """EXT-X-KEY / EXT-X-SESSION-KEY attribute lists of a protected track: one or more per DRM
    system chosen with --drm, in that order (without --drm the init segments carry only the
    W3C common pssh: ClearKey). Several key formats for one key are allowed (RFC 8216 §4.3.2.4);
    a player uses the one it knows.

    - Widevine: its pssh box as a data: URI, KEYFORMAT its system URN (Shaka Packager's form).
    - PlayReady: the PlayReady Object as a UTF-16 data: URI, KEYFORMAT com.microsoft.playready.
    - ClearKey: see clearkey_key_attributes.
    - FairPlay (cbcs only): METHOD=SAMPLE-AES, URI skd://<KID hex> (or the key server's
      URIExtXKey, protection.fairplay_uri), KEYID, the Apple KEYFORMAT; no IV (as Shaka
      Packager: FairPlay takes the IV from tenc). KEYID is not in RFC 8216 and Apple clients
      ignore it (unknown attributes are ignored, §4.2), but hls.js reads a FairPlay key's KID
      only from KEYID: without it, and without a Widevine or PlayReady line to borrow from, it
      cannot match the key to its session.
    KEYID is the KID, never a key; the cbcs constant IV (public, it is in tenc) is given as IV.
    """
    systems = protection.systems or ("clearkey",)
    by_system = {p.system: p for p in protection.drm}
    out: list[str] = []
    for system in systems:
        keyformat = SYSTEMS[system].hls_keyformat
        if system == "fairplay":
            uri = protection.fairplay_uri or f"skd://{protection.kid.hex()}"
            out.append(f'METHOD=SAMPLE-AES,URI="{uri}",KEYID=0x{protection.kid.hex()},'
                       f'KEYFORMAT="{keyformat}",KEYFORMATVERSIONS="1"')
        elif system == "clearkey":
            out += clearkey_key_attributes(protection, alone=len(systems) == 1)
        elif (found := by_system.get(SYSTEMS[system].pssh or "")) is not None:
            uri = (f"data:text/plain;charset=UTF-16;base64,{_b64(found.data)}"
                   if system == "playready" else f"data:text/plain;base64,{_b64(found.box)}")
            out.append(_eme_key_attributes(protection, uri, keyformat))
    return out


def clearkey_key_attributes(protection: TrackProtection, alone: bool) -> list[str]:
    """ClearKey (the W3C common system) in HLS, for the two players that read it, in two lines
    for the same key; neither names the key itself (the player gets it out of band, and the
    KID is also in tenc):

    - KEYFORMAT="identity" (identity_key_attributes), for shaka-player, whose HLS parser reads
      ClearKey only so and refuses an encrypted playlist with no key format it knows (error
      4026, HLS_KEYFORMATS_NOT_SUPPORTED).
    - KEYFORMAT="org.w3.clearkey", for hls.js's EME support (drmSystems['org.w3.clearkey'] with
      a license server): the KID as a data: URI and as KEYID (hls.js keys a session by its
      URI and matches it to the CDM's key statuses by KID), KEYFORMATVERSIONS="1", the cbcs
      IV; the form of the other EME key formats' lines.

    hls.js (1.7) ignores identity with SAMPLE-AES-CTR but takes identity with SAMPLE-AES as
    the key of every segment whatever other formats are there (RFC 8216's meaning: the URI is
    the key, for its own SAMPLE-AES decryption of MPEG-TS), and its fMP4 demuxer cannot do
    that ("The MP4 demuxer does not support SAMPLE-AES decryption"): a cbcs identity line
    stops hls.js for every key system. So for cbcs the identity line is written only when
    ClearKey is `alone` (shaka-player has no other key format to read: a ClearKey-only cbcs
    HLS plays in shaka-player, not in hls.js); with Widevine, PlayReady or FairPlay beside it,
    shaka-player reads those (its drm.clearKeys then replaces their DRM info with ClearKey's)
    and hls.js gets org.w3.clearkey. Shaka Packager (simple_hls_notifier.cc) writes the
    identity line for cbcs beside any other system, none for cenc ("Skipping
    KEYFORMAT=identity for CENC content") and no org.w3.clearkey line: we differ for the
    players' sake."""
    out = [identity_key_attributes(protection)] if alone or protection.scheme == "cenc" else []
    uri = f"data:text/plain;base64,{_b64(protection.kid)}"
    out.append(_eme_key_attributes(protection, uri, SYSTEMS["clearkey"].hls_keyformat))
    return out


def _eme_key_attributes(protection: TrackProtection, uri: str, keyformat: str) -> str:
    """An EME key system's line in Shaka Packager's form for Widevine: METHOD, URI, KEYID, the
    cbcs IV, KEYFORMAT, KEYFORMATVERSIONS="1"."""
    attrs = [f"METHOD={HLS_METHODS[protection.scheme]}", f'URI="{uri}"',
             f"KEYID=0x{protection.kid.hex()}"]
    if protection.constant_iv:
        attrs.append(f"IV=0x{protection.constant_iv.hex()}")
    attrs += [f'KEYFORMAT="{keyformat}"', 'KEYFORMATVERSIONS="1"']
    return ",".join(attrs)


def identity_key_attributes(protection: TrackProtection) -> str:
    """ClearKey as KEYFORMAT="identity", the key format RFC 8216 §4.3.2.4 defines, in the form
    Shaka Packager writes for the common system (simple_hls_notifier.cc): URI a data: URI of
    the KID, never of the key; no KEYID and no KEYFORMATVERSIONS. There is no URN key format
    for ClearKey that shaka-player reads: its HLS parser knows identity, Widevine, PlayReady,
    WisePlay and FairPlay only (the common system's URN got error 4026)."""
    attrs = [f"METHOD={HLS_METHODS[protection.scheme]}",
             f'URI="data:text/plain;base64,{_b64(protection.kid)}"']
    if protection.constant_iv:
        attrs.append(f"IV=0x{protection.constant_iv.hex()}")
    attrs.append('KEYFORMAT="identity"')
    return ",".join(attrs)


def content_protection(adaptation: ET.Element, protection: TrackProtection | None) -> None:
    """ContentProtection for a protected AdaptationSet (ISO/IEC 23009-1 §5.8.4.1, DASH-IF IOP
    §7.7.2): the mp4protection descriptor with the scheme and cenc:default_KID, then one
    element per DRM system with its pssh (without --drm: the common-format one, as Shaka
    Packager writes, and W3C ClearKey). They precede Role and Representation, as the schema
    orders them. A clear track (None) gets none."""
    if protection is None:
        return
    ET.SubElement(adaptation, "ContentProtection", {
        "schemeIdUri": MP4_PROTECTION_SCHEME,
        "value": protection.scheme,
        "cenc:default_KID": protection.kid_uuid,
    })
    if protection.systems:
        dash_content_protection(adaptation, protection)
        return
    _clearkey_protection(adaptation, protection.pssh)


def _clearkey_protection(adaptation: ET.Element, pssh: bytes) -> None:
    """The common-format system and the W3C ClearKey scheme, both with the common pssh."""
    for scheme, value in ((COMMON_SYSTEM_URN, None), (CLEARKEY_SCHEME, "ClearKey1.0")):
        element = ET.SubElement(adaptation, "ContentProtection", {"schemeIdUri": scheme})
        if value:
            element.set("value", value)
        ET.SubElement(element, "cenc:pssh").text = _b64(pssh)


def dash_content_protection(adaptation: ET.Element, protection: TrackProtection) -> None:
    """One ContentProtection per DRM system after the mp4protection one (DASH-IF IOP §7.7.2,
    in Shaka Packager's order): schemeIdUri the system URN with `cenc:pssh` (the base64 box);
    PlayReady also `mspr:pro` (the PlayReady Object); ClearKey as the common-format system
    and the W3C ClearKey scheme, both with the common pssh. The MPD root must declare the
    cenc (CENC_NS) and mspr (MSPR_NS) prefixes."""
    for found in protection.drm:
        if found.system == "common":
            _clearkey_protection(adaptation, found.box)
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
