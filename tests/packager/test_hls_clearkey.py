"""ClearKey signalling in HLS, for the two players that read it: KEYFORMAT="identity" (RFC 8216
§4.3.2.4) in Shaka Packager's form for shaka-player, and KEYFORMAT="org.w3.clearkey" for hls.js;
the identity line left out of cbcs playlists where shaka-player has another key format to read,
as hls.js cannot play fMP4 under a cbcs identity line (tests/browser/test_playback.py and
test_codecs.py play these playlists in both players)."""

from __future__ import annotations

import base64
import re

import pytest

from packager.drm import pssh as drm
from packager.drm.protection import TrackProtection
from packager.drm.signalling import identity_key_attributes, track_key_attributes
from packager.drm.systems import pssh_systems
from packager.keys.model import ContentKey

KID = bytes.fromhex("0b5e1e5a1b7c4d2e9f3a6b8c0d1e2f30")
KEY = bytes.fromhex("6c2f0e9d8a7b4c3d2e1f0a9b8c7d6e5f")
IV = bytes.fromhex("830a150a10f0f6cc640d1d5269c272cf")
ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')
KID_URI = f"data:text/plain;base64,{base64.b64encode(KID).decode()}"
METHODS = {"cbcs": "SAMPLE-AES", "cenc": "SAMPLE-AES-CTR"}


def protection(scheme: str, systems: tuple[str, ...] = ()) -> TrackProtection:
    """A track's protection: `systems` signalled with their pssh boxes (none: ClearKey alone,
    the common pssh without --drm)."""
    key = ContentKey(KID, KEY)
    boxes = tuple(drm.pssh_boxes([key], scheme, pssh_systems(systems), for_track=key))
    ivs = (0, IV, 1, 9) if scheme == "cbcs" else (8, b"", 0, 0)
    return TrackProtection(scheme, KID, *ivs, drm.common_pssh([KID]), systems, boxes)


def attributes(line: str) -> dict[str, str]:
    """An attribute list (RFC 8216 §4.2): quoted values may hold commas."""
    return {m[1]: m[2].strip('"') for m in ATTRIBUTE.finditer(line)}


def keyformats(lines: list[str]) -> list[str]:
    return [attributes(line)["KEYFORMAT"] for line in lines]


@pytest.mark.parametrize("systems", [(), ("clearkey",)], ids=["common-only", "drm-clearkey"])
@pytest.mark.parametrize("scheme", ["cbcs", "cenc"])
def test_clearkey_alone_is_identity_then_org_w3_clearkey(
    scheme: str, systems: tuple[str, ...]
) -> None:
    """Both lines name the KID as a data: URI; identity as Shaka Packager writes it (no KEYID, no
    KEYFORMATVERSIONS), org.w3.clearkey as the other EME key formats (KEYID, version 1)."""
    identity, clearkey = track_key_attributes(protection(scheme, systems))
    assert attributes(identity) == {
        "METHOD": METHODS[scheme], "URI": KID_URI, "KEYFORMAT": "identity",
        **({"IV": f"0x{IV.hex()}"} if scheme == "cbcs" else {})}
    assert attributes(clearkey) == {
        "METHOD": METHODS[scheme], "URI": KID_URI, "KEYID": f"0x{KID.hex()}",
        "KEYFORMAT": "org.w3.clearkey", "KEYFORMATVERSIONS": "1",
        **({"IV": f"0x{IV.hex()}"} if scheme == "cbcs" else {})}
    assert identity == identity_key_attributes(protection(scheme, systems))


@pytest.mark.parametrize(("scheme", "systems", "expected"), [
    ("cbcs", ("widevine", "playready", "clearkey", "fairplay"),
     ["urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed", "com.microsoft.playready",
      "org.w3.clearkey", "com.apple.streamingkeydelivery"]),
    ("cbcs", ("clearkey", "fairplay"), ["org.w3.clearkey", "com.apple.streamingkeydelivery"]),
    ("cenc", ("widevine", "playready", "clearkey"),
     ["urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed", "com.microsoft.playready", "identity",
      "org.w3.clearkey"]),
])
def test_cbcs_leaves_identity_out_when_another_system_is_signalled(
    scheme: str, systems: tuple[str, ...], expected: list[str]
) -> None:
    """hls.js takes a cbcs (SAMPLE-AES) identity line as the key of every segment, which its
    fMP4 demuxer cannot use, whatever other key formats are there; shaka-player reads the
    Widevine, PlayReady or FairPlay line instead. hls.js ignores identity with SAMPLE-AES-CTR,
    so cenc keeps it."""
    assert keyformats(track_key_attributes(protection(scheme, systems))) == expected


def test_no_line_carries_the_key() -> None:
    lines = track_key_attributes(protection("cbcs"))
    for form in (KEY.hex(), KEY.hex().upper(), base64.b64encode(KEY).decode()):
        assert all(form not in line for line in lines)


def test_no_urn_key_format_is_written_for_clearkey() -> None:
    """The common system's URN made shaka-player refuse the playlist (error 4026)."""
    lines = track_key_attributes(protection("cbcs", ("clearkey",)))
    assert all("urn:uuid:1077efec" not in line for line in lines)
