"""Key model and keystore rules: keys are masked, never lost, never replaced, never torn."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from packager.errors import InputError
from packager.keys.keystore import Keystore, KeystoreError, default_keystore_dir
from packager.keys.model import ClassThresholds, ContentKey, KeyConflictError, KeySet, TrackClass

ROOT = Path(__file__).resolve().parents[2]
KID = bytes.fromhex("00112233445566778899aabbccddeeff")
KEY = bytes.fromhex("0123456789abcdef0123456789abcdef")

#: A child writer: KIDs from its name and a counter, keys derived from a salt and the KID (so the
#: parent can check every stored key); prints "started" once the first put is done, and at the
#: end the KIDs it stored (a put refused as a conflict is not printed).
WRITER = """
import hashlib, sys
from pathlib import Path
from packager.keys.model import ContentKey, KeyConflictError
from packager.keys.keystore import Keystore
store = Keystore(Path(sys.argv[1]))
name, count, salt = sys.argv[2], int(sys.argv[3]), sys.argv[4].encode()
stored = []
for i in range(count):
    kid = hashlib.sha256(f"{name}/{i}".encode()).digest()[:16]
    try:
        if store.put(ContentKey(kid, hashlib.sha256(salt + kid).digest()[:16]), name):
            stored.append(kid.hex())
    except KeyConflictError:
        pass
    if i == 0:
        print("started", flush=True)
print(" ".join(stored))
"""


def derived_key(kid: bytes, salt: bytes = b"key") -> bytes:
    return hashlib.sha256(salt + kid).digest()[:16]


def writer(store: Path, name: str, count: int, salt: str = "key") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(store), name, str(count), salt],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )


def assert_only_complete_keys(root: Path, check_keys: bool = True) -> int:
    """Every key file parses and holds the key its writer derived; the rest is lock/temp."""
    store = Keystore(root)
    stored = list(store)
    for entry in stored:
        assert not check_keys or entry.key.key == derived_key(entry.key.kid)
    names = {p.name for p in root.iterdir()}
    key_files = {n for n in names if n.endswith(".json") and not n.startswith(".")}
    assert key_files == {f"{s.key.kid.hex()}.json" for s in stored}
    assert all(n == ".lock" or n.startswith(".tmp-") for n in names - key_files)
    return len(stored)


# -- ContentKey ---------------------------------------------------------------------------


def test_key_bytes_never_appear_in_repr_or_str() -> None:
    key = ContentKey(KID, KEY, iv=bytes(16))
    keyset = KeySet.single("movie", key)
    for text in (repr(key), str(key), f"{key}", repr(keyset), str(keyset), repr([key])):
        assert KEY.hex() not in text
        assert repr(KEY) not in text
        assert "00112233-4455-6677-8899-aabbccddeeff" in text


def test_content_key_sizes_are_checked() -> None:
    with pytest.raises(InputError):
        ContentKey(KID[:15], KEY)
    with pytest.raises(InputError):
        ContentKey(KID, KEY + b"\0")
    with pytest.raises(InputError):
        ContentKey(KID, KEY, iv=bytes(12))
    assert ContentKey(KID, KEY, iv=bytes(8)).iv == bytes(8)


def test_generated_keys_are_random_and_distinct() -> None:
    keys = [ContentKey.generate() for _ in range(64)]
    assert len({k.kid for k in keys}) == 64
    assert len({k.key for k in keys}) == 64
    assert all(k.kid != k.key for k in keys)


# -- KeySet -------------------------------------------------------------------------------


def test_single_key_set_uses_one_key_for_every_track() -> None:
    key = ContentKey(KID, KEY)
    keyset = KeySet.single("movie", key)
    assert not keyset.per_class
    assert keyset.distinct_keys == (key,)
    assert keyset.key_for("audio") == keyset.key_for("video", 2160) == key


def test_per_class_keys_follow_height_thresholds() -> None:
    keyset = KeySet.generate("movie", per_class=True)
    assert keyset.per_class
    assert len(keyset.distinct_keys) == 4
    assert keyset.key_for("audio") == keyset.keys[TrackClass.AUDIO]
    assert keyset.track_class("video", 360) is TrackClass.SD
    assert keyset.track_class("video", 576) is TrackClass.SD
    assert keyset.track_class("video", 720) is TrackClass.HD
    assert keyset.track_class("video", 1080) is TrackClass.HD
    assert keyset.track_class("video", 1440) is TrackClass.UHD
    custom = KeySet.generate("movie", True, ClassThresholds(sd_max_height=480, hd_max_height=1440))
    assert custom.track_class("video", 576) is TrackClass.HD
    assert custom.track_class("video", 1440) is TrackClass.HD
    assert custom.track_class("video", 2160) is TrackClass.UHD


def test_key_set_rules() -> None:
    key = ContentKey(KID, KEY)
    with pytest.raises(InputError, match="no key for SD, HD, UHD"):
        KeySet("movie", {TrackClass.AUDIO: key})
    with pytest.raises(KeyConflictError):
        KeySet("movie", {**dict.fromkeys(TrackClass, key), TrackClass.UHD: ContentKey(KID, KID)})
    with pytest.raises(InputError):
        ClassThresholds(sd_max_height=1080, hd_max_height=720)
    with pytest.raises(InputError):
        KeySet.single("  ", key)
    with pytest.raises(InputError):
        KeySet.single("movie", key).track_class("text")


# -- Keystore -----------------------------------------------------------------------------


def test_default_keystore_follows_xdg_data_home() -> None:
    assert default_keystore_dir({"XDG_DATA_HOME": "/d", "HOME": "/h"}) == Path(
        "/d/cdnpack/keys"
    )
    assert default_keystore_dir({"XDG_DATA_HOME": "rel", "HOME": "/h"}) == Path(
        "/h/.local/share/cdnpack/keys"
    )
    assert default_keystore_dir({"HOME": "/h"}) == Path("/h/.local/share/cdnpack/keys")


def test_round_trip(tmp_path: Path) -> None:
    store = Keystore(tmp_path / "keys")
    key = ContentKey(KID, KEY, iv=bytes(range(16)))
    assert store.put(key, content_id="movie")
    again = Keystore(tmp_path / "keys").get(KID)
    assert again.key == key
    assert again.content_id == "movie"
    generated = store.generate("trailer")
    assert store.get(generated.kid).key == generated
    assert {s.key.kid for s in store} == {KID, generated.kid}
    with pytest.raises(InputError, match="no key with KID"):
        store.get(bytes(16))


def test_key_sets_round_trip(tmp_path: Path) -> None:
    store = Keystore(tmp_path)
    per_class = KeySet.generate("movie", per_class=True)
    single = KeySet.generate("trailer")
    store.put_keyset(per_class)
    store.put_keyset(single)
    assert store.keyset("movie").keys == per_class.keys
    assert store.keyset("trailer").keys == single.keys
    assert len(list(store)) == 5
    with pytest.raises(InputError, match="no key set"):
        store.keyset("other")


def test_existing_kid_is_never_overwritten(tmp_path: Path) -> None:
    store = Keystore(tmp_path)
    assert store.put(ContentKey(KID, KEY))
    path = store.path_for(KID)
    before = path.read_bytes(), path.stat().st_ino
    assert not store.put(ContentKey(KID, KEY))  # the same key again: a no-op
    other = bytes.fromhex("ffeeddccbbaa99887766554433221100")
    with pytest.raises(KeyConflictError) as caught:
        store.put(ContentKey(KID, other))
    assert caught.value.exit_code == 2
    assert other.hex() not in str(caught.value)
    assert KEY.hex() not in str(caught.value)
    with pytest.raises(KeyConflictError):
        store.put(ContentKey(KID, KEY, iv=bytes(16)))
    assert (path.read_bytes(), path.stat().st_ino) == before
    assert store.get(KID).key.key == KEY


def test_a_key_set_with_one_conflicting_kid_stores_nothing(tmp_path: Path) -> None:
    store = Keystore(tmp_path)
    per_class = KeySet.generate("movie", per_class=True)
    clash = per_class.distinct_keys[-1]
    store.put(ContentKey(clash.kid, bytes(16)))  # that KID already holds another key
    with pytest.raises(KeyConflictError):
        store.put_keyset(per_class)
    assert [stored.key.kid for stored in store] == [clash.kid]


def test_files_are_0600_and_directory_0700(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        store = Keystore(tmp_path / "a" / "keys")
        store.put(ContentKey(KID, KEY))
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path_for(KID).stat().st_mode) == 0o600
    assert stat.S_IMODE((store.root / ".lock").stat().st_mode) == 0o600
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    assert stat.S_IMODE(Keystore(loose).root.stat().st_mode) == 0o700


def test_damaged_entry_is_one_clear_error_without_the_key(tmp_path: Path) -> None:
    store = Keystore(tmp_path)
    store.path_for(KID).write_text(json.dumps({"kid": KID.hex(), "key": KEY.hex()[:30]}))
    with pytest.raises(KeystoreError, match="damaged keystore entry") as caught:
        store.get(KID)
    assert KEY.hex()[:30] not in str(caught.value)
    assert caught.value.exit_code == 3


def test_keystore_must_be_outside_the_output_tree(tmp_path: Path) -> None:
    store = Keystore(tmp_path / "out" / ".keys")
    with pytest.raises(InputError, match="outside the output tree"):
        store.ensure_outside(tmp_path / "out")
    with pytest.raises(InputError):
        store.ensure_outside(tmp_path / "out" / ".keys" / "release")
    store.ensure_outside(tmp_path / "release")


def test_kill_9_during_writes_leaves_only_complete_keys(tmp_path: Path) -> None:
    """A writer killed at random moments: each key file is either absent or complete; a
    killed writer's temp file is never listed as a key and the next writer removes it."""
    root = tmp_path / "keys"
    rng = random.Random(4)
    for round_ in range(10):
        child = writer(root, f"round{round_}", 100_000)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "started"
        time.sleep(rng.uniform(0.0, 0.1))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        assert_only_complete_keys(root)
    # A temp file as a killed writer leaves it, then one more write: cleaned up, keys intact.
    (root / ".tmp-killed.part").write_bytes(b'{"kid": "00')
    count = assert_only_complete_keys(root)
    assert count >= 10
    Keystore(root).put(ContentKey(KID, derived_key(KID)))
    assert not list(root.glob(".tmp-*"))
    assert assert_only_complete_keys(root) == count + 1


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "keys"
    children = [writer(root, name, 200) for name in ("alpha", "beta")]
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        assert out.split()[0] == "started"
        assert len(out.split()) == 201
    assert assert_only_complete_keys(root) == 400
    store = Keystore(root)
    for name in ("alpha", "beta"):
        kids = {hashlib.sha256(f"{name}/{i}".encode()).digest()[:16] for i in range(200)}
        assert {s.key.kid for s in store if s.content_id == name} == kids


def test_two_processes_racing_on_the_same_kids_agree(tmp_path: Path) -> None:
    """Both write the same 200 KIDs with the same keys: every put after the first is a
    no-op, none fails, and each file is written once."""
    root = tmp_path / "keys"
    children = [writer(root, "shared", 200) for _ in range(2)]
    for child in children:
        child.communicate(timeout=120)
        assert child.returncode == 0
    assert assert_only_complete_keys(root) == 200


def test_two_processes_racing_with_different_keys_never_overwrite(tmp_path: Path) -> None:
    """Same 200 KIDs, different keys: for every KID exactly one writer wins and its key is the
    one stored; the other is refused (the lock makes check-and-write one step)."""
    root = tmp_path / "keys"
    children = [writer(root, "shared", 200, salt) for salt in ("a", "b")]
    outputs = [child.communicate(timeout=120)[0].split()[1:] for child in children]
    assert all(child.returncode == 0 for child in children)
    won_a, won_b = ({bytes.fromhex(k) for k in out} for out in outputs)
    assert not won_a & won_b
    assert len(won_a | won_b) == 200
    assert assert_only_complete_keys(root, check_keys=False) == 200
    store = Keystore(root)
    for kid in won_a:
        assert store.get(kid).key.key == derived_key(kid, b"a")
    for kid in won_b:
        assert store.get(kid).key.key == derived_key(kid, b"b")
