"""The keys a preview plays with: every KID of the release, from --key or the keystore, which is
only read (a missing keystore is not created); a KID found nowhere is one line naming it."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from packager.errors import InputError
from packager.keys.keystore import Keystore
from packager.keys.model import ContentKey
from packager.output.pipeline import PackageResult
from packager.output.release import ProtectionSummary, Release, read_release
from preview.keys import load_keys

KEYS = [ContentKey(bytes.fromhex(f"{i:032x}"), bytes.fromhex(f"{i + 100:032x}"))
        for i in (1, 2)]


def encrypted(packaged: PackageResult, scheme: str, keys: list[ContentKey]) -> Release:
    """The session's release as release.json describes an encrypted one."""
    kids = [k.kid_uuid for k in keys]
    return replace(read_release(packaged.output), protection=ProtectionSummary(
        scheme, kids, ["clearkey"] if scheme != "aes-128" else [], {"video_240p": kids[0]}))


def test_a_clear_release_needs_no_keys(packaged: PackageResult, tmp_path: Path) -> None:
    assert load_keys(read_release(packaged.output), tmp_path / "none", None) is None
    assert not (tmp_path / "none").exists()


def test_every_kid_comes_from_the_keystore(packaged: PackageResult, tmp_path: Path) -> None:
    store = Keystore(tmp_path / "keys")
    for key in KEYS:
        store.put(key)
    keys = load_keys(encrypted(packaged, "cbcs", KEYS), store.root, None)
    assert keys is not None
    assert keys.delivery == "clearkey"
    assert json.loads(keys.clearkey_table()) == {k.kid.hex(): k.key.hex() for k in KEYS}
    assert keys.source == f"keystore {store.root}"
    assert "key=<masked>" in repr(keys)  # a key never reaches a log line by repr


def test_key_option_and_keystore_together(packaged: PackageResult, tmp_path: Path) -> None:
    store = Keystore(tmp_path / "keys")
    store.put(KEYS[1])
    given = f"{KEYS[0].kid.hex()}:{KEYS[0].key.hex()}"
    keys = load_keys(encrypted(packaged, "cenc", KEYS), store.root, given)
    assert keys is not None
    assert [k.key for k in keys.keys] == [k.key for k in KEYS]
    assert keys.source == f"--key and keystore {store.root}"


def test_aes_128_hands_over_the_key_itself(packaged: PackageResult, tmp_path: Path) -> None:
    given = f"{KEYS[0].kid.hex()}:{KEYS[0].key.hex()}"
    keys = load_keys(encrypted(packaged, "aes-128", KEYS[:1]), tmp_path / "none", given)
    assert keys is not None
    assert keys.delivery == "aes-128 key"
    assert keys.aes_key() == KEYS[0].key
    assert not (tmp_path / "none").exists()  # every KID given: the keystore is not opened


def test_a_kid_found_nowhere_is_named(packaged: PackageResult, tmp_path: Path) -> None:
    store = Keystore(tmp_path / "keys")
    store.put(KEYS[0])
    with pytest.raises(InputError) as caught:
        load_keys(encrypted(packaged, "cbcs", KEYS), store.root, None)
    assert str(caught.value) == (
        f"keystore {store.root} has no key for KID {uuid.UUID(bytes=KEYS[1].kid)} of this cbcs "
        "release (give --keystore DIR or --key KID:KEY)")


def test_a_missing_keystore_is_refused_not_created(packaged: PackageResult,
                                                    tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such directory"):
        load_keys(encrypted(packaged, "cbcs", KEYS), tmp_path / "keys", None)
    assert not (tmp_path / "keys").exists()


def test_another_releases_key(packaged: PackageResult, tmp_path: Path) -> None:
    """--key of another release is a mistake; the same left in CDNPACK_KEY by `package` is
    passed over (the keystore has this release's)."""
    store = Keystore(tmp_path / "keys")
    store.put(KEYS[0])
    other = ContentKey(bytes(range(16)), bytes(16))
    release = encrypted(packaged, "cbcs", KEYS[:1])
    given = f"{other.kid.hex()}:{other.key.hex()}"
    with pytest.raises(InputError, match=f"KID {other.kid_uuid} is not one of this release's"):
        load_keys(release, store.root, given)
    keys = load_keys(release, store.root, given, key_from_env=True)
    assert keys is not None
    assert keys.keys == (KEYS[0],)
