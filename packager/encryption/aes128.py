"""Whole-segment AES-128 of MPEG-TS segments for legacy HLS devices (RFC 8216 §4.3.2.4)."""

from __future__ import annotations

from packager.encryption.aes import AES
from packager.keys.model import ContentKey

BLOCK = 16


def encrypt_segment(key: ContentKey, iv: bytes, payload: bytes) -> bytes:
    """A whole media segment in AES-128-CBC with PKCS#7 padding (RFC 8216 §4.3.2.4)."""
    pad = BLOCK - len(payload) % BLOCK
    return AES.new(key.key, AES.MODE_CBC, iv=iv).encrypt(payload + bytes([pad]) * pad)
