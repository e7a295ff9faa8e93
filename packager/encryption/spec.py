"""What the user asked to be protected and how: scheme, key or key set, IV, DRM systems."""

from __future__ import annotations

from dataclasses import dataclass

from packager.drm.pssh import SystemPssh
from packager.drm.systems import DRM_SYSTEMS, SCHEMES
from packager.errors import InputError
from packager.keys.model import ContentKey, KeySet

#: Whole-segment AES-128-CBC of MPEG-TS segments (RFC 8216 §4.3.2.4), for legacy HLS devices.
AES_128 = "aes-128"
ALL_SCHEMES = (*SCHEMES, AES_128)


@dataclass(frozen=True)
class EncryptionSpec:
    """What the user asked for: scheme, key, and optionally a fixed IV and key URI."""

    scheme: str  # "cenc" | "cbcs" | "aes-128"
    key: ContentKey
    #: cbcs: the constant IV; cenc: the first sample's IV; aes-128: the first segment's IV.
    iv: bytes | None = None
    #: aes-128: where players fetch the key (the key itself is never in the release).
    key_uri: str | None = None
    #: Per-track-class keys (each track encrypted with keyset.key_for(kind, height)); None:
    #: `key` for every track.
    keyset: KeySet | None = None
    #: DRM systems to signal (DRM_SYSTEMS); empty: the common-format pssh only, as before.
    systems: tuple[str, ...] = ()
    #: Set per track by the pipeline: the pssh boxes of `systems` for this track's key.
    drm: tuple[SystemPssh, ...] = ()
    #: PlayReady licence acquisition URL written into its WRMHEADER (LA_URL).
    la_url: str | None = None
    #: Widevine content_id field of WidevinePsshData (None: not written, as Shaka Packager).
    widevine_content_id: bytes | None = None
    #: FairPlay key URIs a key server gave, as (KID, URI) pairs (SPEKE URIExtXKey); a KID
    #: without one gets skd://<KID hex>. Pairs, not a mapping: the spec goes to worker processes.
    fairplay_uris: tuple[tuple[bytes, str], ...] = ()

    def __post_init__(self) -> None:
        if self.scheme not in ALL_SCHEMES:
            raise InputError(f"encryption scheme must be one of {', '.join(ALL_SCHEMES)}")
        unknown = [s for s in self.systems if s not in DRM_SYSTEMS]
        if unknown:
            raise InputError(
                f"unknown DRM system {unknown[0]!r}; --drm takes {', '.join(DRM_SYSTEMS)}"
            )
        if self.systems and self.scheme == AES_128:
            raise InputError("--drm needs --encrypt cenc or cbcs (aes-128 has no DRM systems)")
        if "fairplay" in self.systems and self.scheme != "cbcs":
            raise InputError("FairPlay needs --encrypt cbcs (it cannot decrypt AES-CTR)")
        if self.iv is not None and self.scheme in ("cbcs", AES_128) and len(self.iv) != 16:
            raise InputError(f"{self.scheme} uses a 16-byte IV (32 hex digits)")
        if self.scheme == AES_128 and not self.key_uri:
            raise InputError("--encrypt aes-128 needs --key-uri: where players fetch the key")
        if self.key_uri and any(c in self.key_uri for c in '",\n'):
            raise InputError("--key-uri must not contain quotes, commas or newlines")
        if self.la_url is not None and "playready" not in self.systems:
            raise InputError("--playready-la-url needs playready among the --drm systems")
        if self.widevine_content_id is not None and "widevine" not in self.systems:
            raise InputError("--widevine-content-id needs widevine among the --drm systems")
        for _, uri in self.fairplay_uris:
            if not uri.startswith("skd://") or any(c in uri for c in '"\r\n'):
                raise InputError(f"FairPlay key URI {uri[:80]!r} is not an skd:// URI that "
                                 "can be quoted in HLS")
