"""The content keys a preview plays an encrypted release with: every KID release.json names,
from `--key` or the keystore, which is only read (a preview writes nothing).

The keys go to one place only: the page the preview serves on a loopback address, which hands
them to its player (ClearKey for cenc and cbcs; the AES-128 key for TS releases, as an HLS key
server would). They never enter the release tree, a log line or the command's output; only
their KIDs do.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from packager.encryption.spec import AES_128
from packager.errors import InputError
from packager.keys.keystore import Keystore
from packager.keys.model import ContentKey, parse_kid
from packager.keys.source import parse_key
from packager.output.release import Release

#: How the page's player gets the keys, per scheme.
DELIVERY = {"cenc": "clearkey", "cbcs": "clearkey", AES_128: "aes-128 key"}


@dataclass(frozen=True)
class PreviewKeys:
    scheme: str
    keys: tuple[ContentKey, ...]  # one per KID of the release, in release.json's order
    source: str  # where they were found: "--key" or "keystore DIR"

    @property
    def delivery(self) -> str:
        return DELIVERY[self.scheme]

    @property
    def kids(self) -> list[str]:
        return [k.kid_uuid for k in self.keys]

    def clearkey_table(self) -> bytes:
        """{KID hex: key hex}: shaka-player's `drm.clearKeys`."""
        return json.dumps({k.kid.hex(): k.key.hex() for k in self.keys}).encode()

    def aes_key(self) -> bytes:
        """The 16 bytes an HLS AES-128 key URI answers (RFC 8216 §5.2)."""
        return self.keys[0].key


def load_keys(release: Release, keystore: Path | None, key: str | None,
              key_from_env: bool = False) -> PreviewKeys | None:
    """The keys of an encrypted release (None for a clear one): `key` (KID:KEY) first, then the
    keystore for the rest. A KID found nowhere is refused in one line naming it. A key from the
    environment (CDNPACK_KEY, left there for `package`) of another release is no mistake of
    this command's, and is passed over."""
    protection = release.protection
    if protection is None:
        return None
    if protection.scheme not in DELIVERY:
        raise InputError(f"encryption scheme {protection.scheme!r}: the preview plays "
                         f"{', '.join(DELIVERY)}")
    wanted = [parse_kid(k) for k in protection.kids]
    given = parse_key(key) if key is not None else None
    if given is not None and key_from_env and given.kid not in wanted:
        given = None
    found: dict[bytes, ContentKey] = {}
    sources = []
    if given is not None:
        if given.kid not in wanted:
            raise InputError(f"--key: KID {given.kid_uuid} is not one of this release's "
                             f"({', '.join(protection.kids)})")
        found[given.kid] = given
        sources.append("--key")
    missing = [kid for kid in wanted if kid not in found]
    if missing:
        store = Keystore.existing(keystore)
        for kid in missing:
            try:
                found[kid] = store.get(kid).key
            except InputError:
                continue
        sources.append(f"keystore {store.root}")
        missing = [kid for kid in wanted if kid not in found]
        if missing:
            names = ", ".join(str(uuid.UUID(bytes=kid)) for kid in missing)
            raise InputError(f"keystore {store.root} has no key for KID {names} of this "
                             f"{protection.scheme} release (give --keystore DIR or --key "
                             "KID:KEY)")
    return PreviewKeys(protection.scheme, tuple(found[kid] for kid in wanted),
                       " and ".join(sources))
