"""The IV schedule of a release: which IV each track, sample and segment is encrypted with.

An IV must never repeat under one key: cenc counter blocks would overlap and leak the XOR of two
plaintexts, and two AES-128 segments with the same IV would show where they begin alike. So the
release draws one IV origin (or takes the user's --iv), and every track and segment takes its
IV at a fixed distance from it:
- cbcs: one constant IV for every track (ISO/IEC 23001-7 §10.4; one EXT-X-SESSION-KEY);
- cenc: 8-byte per-sample IVs counting up from the origin, tracks 2^40 samples apart (§10.1);
- aes-128: one IV per TS segment counting up from the origin, renditions 2^32 segments apart.
"""

from __future__ import annotations

import os
from dataclasses import replace

from packager.encryption.spec import EncryptionSpec

#: Samples between two cenc tracks' IV origins: more than any track has, so their counter
#: blocks never meet.
CENC_TRACK_STRIDE = 1 << 40
#: Segments between two AES-128 renditions' IV origins.
TS_RENDITION_STRIDE = 1 << 32


def with_release_iv(spec: EncryptionSpec) -> EncryptionSpec:
    """The spec with its IV drawn once for the whole release when the user gave none: one cbcs
    constant IV for every track (one EXT-X-SESSION-KEY), one cenc IV origin that tracks then
    offset (TrackEncryptor), one aes-128 origin for the segment IVs."""
    if spec.iv is not None:
        return spec
    return replace(spec, iv=os.urandom(8 if spec.scheme == "cenc" else 16))


def cenc_first_iv(spec: EncryptionSpec, track_index: int) -> int:
    """The first per-sample IV of a cenc track, as a 64-bit counter: the release's origin
    (the user's --iv, else drawn by with_release_iv) plus the track's stride."""
    start = int.from_bytes(spec.iv[:8], "big") if spec.iv is not None else int.from_bytes(
        os.urandom(8), "big")
    return (start + track_index * CENC_TRACK_STRIDE) % (1 << 64)


def cbcs_constant_iv(spec: EncryptionSpec) -> bytes:
    """The cbcs constant IV: the release's (the user's --iv, else drawn once)."""
    return spec.iv if spec.iv is not None else os.urandom(16)


def ts_segment_iv(spec: EncryptionSpec, rendition_index: int, number: int) -> bytes:
    """The AES-128 IV of TS segment `number` (1-based) of a rendition: the first segment of the
    first rendition uses the user's --iv itself. Written explicitly into EXT-X-KEY (RFC 8216
    §5.2 would otherwise take the media sequence number)."""
    assert spec.iv is not None, "with_release_iv draws the origin before any segment"
    origin = int.from_bytes(spec.iv, "big")
    value = origin + rendition_index * TS_RENDITION_STRIDE + number - 1
    return (value % (1 << 128)).to_bytes(16, "big")
