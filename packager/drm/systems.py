"""The DRM systems cdnpack signals: one table of their names, system ids and signalling.

`--drm` names a system as people do (widevine, playready, clearkey, fairplay); a pssh box, a
DASH ContentProtection or a CPIX DRMSystem names it by its 16-byte system id. Every module that
needs either reads this table, so the names, ids and what each system is signalled with cannot
drift apart.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from packager.errors import InputError

#: The Common Encryption schemes the DRM systems are signalled for (ISO/IEC 23001-7 §10).
SCHEMES = ("cenc", "cbcs")

WIDEVINE_SYSTEM_ID = bytes.fromhex("edef8ba979d64acea3c827dcd51d21ed")
PLAYREADY_SYSTEM_ID = bytes.fromhex("9a04f07998404286ab92e65be0885f95")
FAIRPLAY_SYSTEM_ID = bytes.fromhex("94ce86fb07ff4f43adb893d2fa968ca2")
#: W3C "common" PSSH format (https://www.w3.org/TR/eme-initdata-cenc/): the ClearKey signal.
COMMON_SYSTEM_ID = bytes.fromhex("1077efecc0b24d02ace33c1e52e2fb4b")
COMMON_SYSTEM_URN = f"urn:uuid:{uuid.UUID(bytes=COMMON_SYSTEM_ID)}"
#: W3C ClearKey's DASH-IF system id; the common pssh (1077efec-...) is what it reads.
CLEARKEY_SCHEME = "urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e"


@dataclass(frozen=True)
class DrmSystem:
    """One `--drm` system: its system id, the pssh box it reads (None: FairPlay has none, it is
    signalled by its skd:// key URI only), what a SPEKE v2 request asks the key server to
    fill in for it (empty: not asked; ClearKey's signalling is the KIDs alone) and its HLS
    KEYFORMAT (RFC 8216 §4.3.2.4: the system's own name for it)."""

    name: str
    system_id: bytes
    pssh: str | None
    speke: tuple[str, ...]
    hls_keyformat: str


#: The one table, in the order `--drm` lists them.
SYSTEMS: dict[str, DrmSystem] = {
    s.name: s for s in (
        DrmSystem("widevine", WIDEVINE_SYSTEM_ID, "widevine", ("PSSH", "HLSSignalingData"),
                  f"urn:uuid:{uuid.UUID(bytes=WIDEVINE_SYSTEM_ID)}"),
        DrmSystem("playready", PLAYREADY_SYSTEM_ID, "playready", ("PSSH", "HLSSignalingData"),
                  "com.microsoft.playready"),
        # ClearKey's KEYFORMAT as hls.js reads it (its KeySystemFormats.CLEARKEY): no registry
        # names one, and shaka-player reads ClearKey as "identity" (packager/drm/signalling.py).
        DrmSystem("clearkey", COMMON_SYSTEM_ID, "common", (), "org.w3.clearkey"),
        DrmSystem("fairplay", FAIRPLAY_SYSTEM_ID, None, ("URIExtXKey", "HLSSignalingData"),
                  "com.apple.streamingkeydelivery"),
    )
}
#: DRM systems `--drm` can signal.
DRM_SYSTEMS = tuple(SYSTEMS)
#: The pssh boxes pssh_boxes writes, in the order Shaka Packager writes them into moov
#: whatever order --protection_systems names them in.
PSSH_SYSTEMS = ("common", "playready", "widevine")
PSSH_SYSTEM_IDS = {s.pssh: s.system_id for s in SYSTEMS.values() if s.pssh is not None}


def pssh_systems(names: tuple[str, ...] | list[str]) -> list[str]:
    """The pssh boxes (PSSH_SYSTEMS names) that `--drm` systems read."""
    return [p for n in names if (p := SYSTEMS[n].pssh) is not None]


def default_systems(scheme: str) -> tuple[str, ...]:
    """--drm by default: Widevine, PlayReady and ClearKey, and FairPlay too for cbcs."""
    base = ("widevine", "playready", "clearkey")
    return (*base, "fairplay") if scheme == "cbcs" else base


def parse_systems(text: str) -> tuple[str, ...]:
    """'widevine,playready' -> ('widevine', 'playready'), lower-cased, without repeats."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise InputError(f"--drm names one or more of {', '.join(DRM_SYSTEMS)}")
    return tuple(dict.fromkeys(names))
