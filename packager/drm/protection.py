"""What tenc and the manifests say about a protected track: scheme, KID, IVs, pattern, pssh."""

from __future__ import annotations

from dataclasses import dataclass

from packager.drm.pssh import SystemPssh


@dataclass(frozen=True)
class TrackProtection:
    """What tenc and the manifests say about a protected track (ISO/IEC 23001-7 §8.2)."""

    scheme: str
    kid: bytes
    per_sample_iv_size: int  # 8 for cenc, 0 for cbcs (constant IV)
    constant_iv: bytes  # 16 bytes for cbcs, empty for cenc
    crypt_byte_block: int
    skip_byte_block: int
    pssh: bytes  # the pssh boxes written into moov (the common-format one without --drm)
    #: DRM systems signalled for the track (empty: common pssh only) and their pssh boxes.
    systems: tuple[str, ...] = ()
    drm: tuple[SystemPssh, ...] = ()
    #: The FairPlay key URI of the track's KID when a key server gave one (else skd://<hex>).
    fairplay_uri: str | None = None

    @property
    def kid_uuid(self) -> str:
        h = self.kid.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
