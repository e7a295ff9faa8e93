"""ClearKey signaling in HLS: KEYFORMAT="identity" (RFC 8216 §4.3.2.4) in Shaka Packager's form,
the only ClearKey form shaka-player's HLS parser maps (tests/browser plays it); a URN key format
made it refuse the playlist (error 4026, HLS_KEYFORMATS_NOT_SUPPORTED)."""

from __future__ import annotations

import base64
import re

import pytest

from packager.drm import pssh as drm
from packager.drm.protection import TrackProtection
from packager.drm.signalling import identity_key_attributes, track_key_attributes

KID = bytes.fromhex("0b5e1e5a1b7c4d2e9f3a6b8c0d1e2f30")
KEY = bytes.fromhex("6c2f0e9d8a7b4c3d2e1f0a9b8c7d6e5f")
IV = bytes.fromhex("830a150a10f0f6cc640d1d5269c272cf")
ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def protection(scheme: str, systems: tuple[str, ...] = ()) -> TrackProtection:
    if scheme == "cbcs":
        return TrackProtection("cbcs", KID, 0, IV, 1, 9, drm.common_pssh([KID]), systems)
    return TrackProtection("cenc", KID, 8, b"", 0, 0, drm.common_pssh([KID]), systems)


def attributes(line: str) -> dict[str, str]:
    """An attribute list (RFC 8216 §4.2): quoted values may hold commas."""
    return {m[1]: m[2].strip('"') for m in ATTRIBUTE.finditer(line)}


@pytest.mark.parametrize("systems", [(), ("clearkey",)], ids=["common-only", "drm-clearkey"])
@pytest.mark.parametrize(("scheme", "method"), [("cbcs", "SAMPLE-AES"),
                                                 ("cenc", "SAMPLE-AES-CTR")])
def test_clearkey_is_keyformat_identity_with_the_kid_as_a_data_uri(
    scheme: str, method: str, systems: tuple[str, ...]
) -> None:
    (line,) = track_key_attributes(protection(scheme, systems))
    attrs = attributes(line)
    assert attrs["METHOD"] == method
    assert attrs["KEYFORMAT"] == "identity"
    assert attrs["URI"].startswith("data:text/plain;base64,")
    assert base64.b64decode(attrs["URI"].split(",", 1)[1]) == KID
    # As Shaka Packager: no KEYID and no KEYFORMATVERSIONS with identity.
    assert "KEYID" not in attrs
    assert "KEYFORMATVERSIONS" not in attrs


def test_the_cbcs_constant_iv_is_given_and_cenc_has_none() -> None:
    assert attributes(identity_key_attributes(protection("cbcs")))["IV"] == f"0x{IV.hex()}"
    assert "IV" not in attributes(identity_key_attributes(protection("cenc")))


def test_the_identity_line_never_carries_the_key() -> None:
    line = identity_key_attributes(protection("cbcs"))
    for form in (KEY.hex(), KEY.hex().upper(), base64.b64encode(KEY).decode()):
        assert form not in line


def test_no_urn_key_format_is_written_for_clearkey() -> None:
    lines = track_key_attributes(protection("cbcs", ("clearkey",)))
    assert all("urn:uuid:1077efec" not in line for line in lines)
