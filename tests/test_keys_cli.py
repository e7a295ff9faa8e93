"""`cdnpack keys`: new, list, show, export --cpix, import; keys printed only with --reveal."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

from packager.keys.cpix import export_cpix, read_cpix
from packager.keys.keystore import Keystore
from packager.keys.model import ContentKey, KeySet, TrackClass
from tests.conftest import cdnpack_cli


def secret_forms(key: bytes) -> list[str]:
    """Every way a key could leak as text: hex (both cases) and base64."""
    return [key.hex(), key.hex().upper(), base64.b64encode(key).decode()]


def assert_no_key_in(result: subprocess.CompletedProcess[str], keys: list[bytes]) -> None:
    for key in keys:
        for form in secret_forms(key):
            assert form not in result.stdout
            assert form not in result.stderr


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A keystore with per-class keys for 'film-1', made by the real command."""
    store = tmp_path_factory.mktemp("keys") / "store"
    result = cdnpack_cli("keys", "new", "film-1", "--per-class", "--keystore", store, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [k["track_class"] for k in doc["keys"]] == ["AUDIO", "SD", "HD", "UHD"]
    assert len({k["kid"] for k in doc["keys"]}) == 4
    assert_no_key_in(result, [s.key.key for s in Keystore(store)])
    return store


def stored_keys(store: Path) -> list[bytes]:
    return [s.key.key for s in Keystore(store)]


def test_new_stores_a_key_set_and_prints_no_key(populated: Path) -> None:
    keyset = Keystore(populated).keyset("film-1")
    assert keyset.per_class
    again = cdnpack_cli("keys", "new", "film-1", "--keystore", populated)
    assert again.returncode == 2
    assert again.stderr.strip().endswith("content id 'film-1' already has keys")


def test_list_json_names_kids_and_classes_without_keys(populated: Path) -> None:
    result = cdnpack_cli("keys", "list", "--keystore", populated, "--json")
    assert result.returncode == 0, result.stderr
    docs = json.loads(result.stdout)
    assert sorted(c for d in docs for c in d["track_classes"]) == sorted(c.value
                                                                          for c in TrackClass)
    assert all(set(d) == {"kid", "content_id", "track_classes", "created"} for d in docs)
    assert_no_key_in(result, stored_keys(populated))
    table = cdnpack_cli("keys", "list", "--keystore", populated)
    assert table.returncode == 0, table.stderr
    assert all(d["kid"] in table.stdout for d in docs)
    assert_no_key_in(table, stored_keys(populated))


def test_show_prints_the_key_only_with_reveal(populated: Path) -> None:
    stored = next(iter(Keystore(populated)))
    kid = stored.key.kid_uuid
    for args in (["--json"], []):
        hidden = cdnpack_cli("keys", "show", kid, "--keystore", populated, *args)
        assert hidden.returncode == 0, hidden.stderr
        assert kid in hidden.stdout
        assert_no_key_in(hidden, stored_keys(populated))
    shown = cdnpack_cli("keys", "show", stored.key.kid.hex(), "--reveal", "--json",
                        "--keystore", populated)
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["kid"] == kid
    assert doc["key"] == stored.key.key.hex()
    text = cdnpack_cli("keys", "show", kid, "--reveal", "--keystore", populated)
    assert f"key: {stored.key.key.hex()}" in text.stdout


def test_show_of_an_unknown_or_malformed_kid_is_a_usage_error(populated: Path) -> None:
    for kid, expected in ((str(uuid.UUID(int=7)), "no key with KID"),
                          ("xyz", "KID 'xyz' is not 32 hex digits or a UUID")):
        result = cdnpack_cli("keys", "show", kid, "--keystore", populated)
        assert result.returncode == 2
        assert expected in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_export_writes_a_private_cpix_that_imports_elsewhere(
    populated: Path, tmp_path: Path
) -> None:
    cpix = tmp_path / "film-1.cpix.xml"
    result = cdnpack_cli("keys", "export", "film-1", "--cpix", cpix, "--keystore", populated,
                         "--json")
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(cpix.stat().st_mode) == 0o600
    assert_no_key_in(result, stored_keys(populated))
    assert read_cpix(cpix).keyset == Keystore(populated).keyset("film-1")

    other = tmp_path / "other-store"
    imported = cdnpack_cli("keys", "import", cpix, "--keystore", other, "--json")
    assert imported.returncode == 0, imported.stderr
    doc = json.loads(imported.stdout)
    assert len(doc["imported"]) == 4
    assert doc["keyset"] is True
    assert_no_key_in(imported, stored_keys(populated))
    assert Keystore(other).keyset("film-1") == Keystore(populated).keyset("film-1")
    # The same document again: nothing to do, not a conflict.
    again = cdnpack_cli("keys", "import", cpix, "--keystore", other, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["already_present"] == doc["imported"]


def test_import_conflict_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    store = Keystore(tmp_path / "store")
    kid = bytes.fromhex("00112233445566778899aabbccddeeff")
    store.put(ContentKey(kid, bytes(16)), "mine")
    audio = ContentKey(bytes.fromhex("0f" * 16), bytes.fromhex("a5" * 16))
    clash = ContentKey(kid, bytes.fromhex("5a" * 16))
    theirs = KeySet("theirs", {TrackClass.AUDIO: audio, TrackClass.SD: clash,
                               TrackClass.HD: clash, TrackClass.UHD: clash})
    cpix = tmp_path / "theirs.xml"
    cpix.write_bytes(export_cpix(theirs))
    result = cdnpack_cli("keys", "import", cpix, "--keystore", store.root)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"cdnpack: error: {cpix}: KID {clash.kid_uuid} is already in keystore {store.root} "
        "with a different key; nothing imported"
    )
    assert_no_key_in(result, [audio.key, clash.key, bytes(16)])
    assert [s.key for s in store] == [ContentKey(kid, bytes(16))]  # audio was not written


def test_import_of_a_malformed_document_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text('<CPIX xmlns="urn:dashif:org:cpix"><ContentKeyList/></CPIX>')
    result = cdnpack_cli("keys", "import", bad, "--keystore", tmp_path / "store")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"cdnpack: error: {bad}: cpix:ContentKeyList holds no cpix:ContentKey"
    )
