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
PLAYREADY_KEYFORMAT = "com.microsoft.playready"
FAIRPLAY_KEYFORMAT = "com.apple.streamingkeydelivery"
MSPR_NS = "urn:microsoft:playready"
CENC_NS = "urn:mpeg:cenc:2013"
MP4_PROTECTION_SCHEME = "urn:mpeg:dash:mp4protection:2011"


def track_key_attributes(protection: TrackProtection) -> list[str]:
    """Every EXT-X-KEY of a protected track: one per DRM system chosen with --drm. Without
    --drm the init segments carry only the W3C common pssh (ClearKey), whose HLS signalling is
    KEYFORMAT="identity" (identity_key_attributes)."""
    if protection.systems:
        return hls_key_attributes(protection)
    return [identity_key_attributes(protection)]


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
        pssh_name = SYSTEMS[system].pssh
        found = by_system.get(pssh_name) if pssh_name else None
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
