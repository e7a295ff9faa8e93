"""The durable local keystore: one file per KID, written once, never replaced, never torn.

A key that is lost makes every release encrypted with it unplayable. So the keystore writes each
key once, atomically and durably (temp file, fsync, rename, fsync of the directory), mode 0600 in
a 0700 directory, under an exclusive lock so that two processes writing at once cannot lose or
tear a file. It is the only module that writes keys to disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packager.errors import CdnpackError, InputError
from packager.files import write_durably
from packager.keys.model import ClassThresholds, ContentKey, KeyConflictError, KeySet, TrackClass

log = logging.getLogger(__name__)

#: One file per KID: '<32 lowercase hex digits>.json'. Anything else in the directory (the lock
#: file, a writer's temp file) is not a key.
_KEY_FILE = re.compile(r"^[0-9a-f]{32}\.json$")
_TEMP_PREFIX = ".tmp-"
_LOCK_NAME = ".lock"
_FORMAT_VERSION = 1


class KeystoreError(CdnpackError):
    """The keystore directory cannot be used (permissions, a damaged file): an environment
    problem, not bad input."""

    exit_code = 3


@dataclass(frozen=True)
class StoredKey:
    """One keystore entry: the key and what it was stored for."""

    key: ContentKey
    content_id: str | None
    #: The track classes of content_id this key serves (all four for a single-key set).
    track_classes: tuple[TrackClass, ...]
    created: str


def default_keystore_dir(env: Mapping[str, str] | None = None) -> Path:
    """$XDG_DATA_HOME/cdnpack/keys, else ~/.local/share/cdnpack/keys (XDG Base Directory spec:
    a relative XDG_DATA_HOME is invalid and ignored)."""
    env = os.environ if env is None else env
    data_home = env.get("XDG_DATA_HOME", "")
    base = Path(data_home) if data_home and Path(data_home).is_absolute() else None
    if base is None:
        base = Path(env.get("HOME") or Path.home()) / ".local" / "share"
    return base / "cdnpack" / "keys"


class Keystore:
    """A directory of keys, one JSON file per KID, written once and never replaced.

    Writers take an exclusive flock on '.lock' around check-and-write, so the "never overwrite
    with a different key" rule holds across processes; a reader needs no lock because a key file
    appears only by rename(2), complete and fsync'ed. A writer killed mid-write leaves at most a
    '.tmp-*' file, which is never read as a key and is removed by the next writer.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root if root is not None else default_keystore_dir()).expanduser()
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self.root.stat().st_mode & 0o077:
                self.root.chmod(0o700)
        except OSError as exc:
            raise KeystoreError(f"keystore {self.root}: cannot use it ({exc.strerror})") from exc
        if not self.root.is_dir():
            raise KeystoreError(f"keystore {self.root}: not a directory")

    @classmethod
    def existing(cls, root: Path | None = None) -> Keystore:
        """A keystore that must already be there, opened to read: a command that only reads
        keys (`preview`) creates no empty keystore and changes no mode."""
        path = (root if root is not None else default_keystore_dir()).expanduser()
        if not path.is_dir():
            raise InputError(f"keystore {path}: no such directory")
        store = cls.__new__(cls)
        store.root = path
        return store

    def path_for(self, kid: bytes) -> Path:
        return self.root / f"{kid.hex()}.json"

    def put(
        self,
        key: ContentKey,
        content_id: str | None = None,
        track_classes: tuple[TrackClass, ...] = (),
    ) -> bool:
        """Store a key durably. True when written, False when the same key was already there
        (a no-op); KeyConflictError when the KID is stored with a different key."""
        with self._locked():
            self._remove_stale_temps()
            if self._known(key):
                return False
            self._write_new(self.path_for(key.kid), _entry(key, content_id, track_classes))
        log.info("stored key %s in %s", key.kid_uuid, self.root)
        return True

    def _known(self, key: ContentKey) -> bool:
        """True when the KID is stored with this key; KeyConflictError when with another."""
        existing = self._read(key.kid)
        if existing is None:
            return False
        if existing.key.key != key.key or existing.key.iv != key.iv:
            raise KeyConflictError(
                f"keystore {self.root}: KID {key.kid_uuid} is already stored with a "
                "different key; refusing to overwrite it"
            )
        return True

    def put_keyset(self, keyset: KeySet) -> None:
        """Every key of a set, once per KID, tagged with its content id and track classes.

        All or nothing: every KID is checked under the lock before any is written, so a set
        with one conflicting key (from a CPIX file or a key server) leaves the store as it was.
        """
        with self._locked():
            self._remove_stale_temps()
            new = [key for key in keyset.distinct_keys if not self._known(key)]
            for key in new:
                classes = keyset.classes_of(key.kid)
                self._write_new(self.path_for(key.kid), _entry(key, keyset.content_id, classes))
        for key in new:
            log.info("stored key %s in %s", key.kid_uuid, self.root)

    def import_keys(
        self,
        keys: Sequence[ContentKey],
        content_id: str | None,
        classes: Mapping[bytes, tuple[TrackClass, ...]],
        source: Path | str,
    ) -> list[ContentKey]:
        """Keys from outside the keystore (a CPIX document, `keys import`, `--keys cpix:`),
        stored all or nothing: every KID is checked under the lock before any is written, and
        one KID already stored with another key refuses the whole import, naming `source`.
        Returns the keys newly written; the others were already stored with the same key."""
        with self._locked():
            self._remove_stale_temps()
            new: list[ContentKey] = []
            for key in keys:
                existing = self._read(key.kid)
                if existing is None:
                    new.append(key)
                elif existing.key.key != key.key or existing.key.iv != key.iv:
                    raise KeyConflictError(
                        f"{source}: KID {key.kid_uuid} is already in keystore {self.root} "
                        "with a different key; nothing imported")
            for key in new:
                entry = _entry(key, content_id, classes.get(key.kid, ()))
                self._write_new(self.path_for(key.kid), entry)
        for key in new:
            log.info("stored key %s in %s", key.kid_uuid, self.root)
        return new

    def new_keyset(self, content_id: str, per_class: bool) -> KeySet:
        """Fresh keys for a title that has none yet (`keys new`), stored before they are
        returned; a title that already has keys is refused, never given a second set."""
        if any(s.content_id == content_id for s in self):
            raise InputError(f"keystore {self.root}: content id {content_id!r} already has keys")
        keyset = KeySet.generate(content_id, per_class=per_class)
        self.put_keyset(keyset)
        return keyset

    def generate(self, content_id: str | None = None) -> ContentKey:
        """A new random key, stored before it is returned (a key is never used unsaved)."""
        key = ContentKey.generate()
        self.put(key, content_id)
        return key

    def get(self, kid: bytes) -> StoredKey:
        stored = self._read(kid)
        if stored is None:
            raise InputError(f"keystore {self.root}: no key with KID {_uuid(kid)}")
        return stored

    def __iter__(self) -> Iterator[StoredKey]:
        """Every stored key, by KID order."""
        for path in sorted(self.root.iterdir()):
            if _KEY_FILE.match(path.name):
                stored = self._read(bytes.fromhex(path.name[:32]))
                if stored is not None:
                    yield stored

    def keyset(self, content_id: str, thresholds: ClassThresholds | None = None) -> KeySet:
        """The key set stored for a content id (see put_keyset)."""
        keys = {c: s.key for s in self if s.content_id == content_id for c in s.track_classes}
        if not keys:
            raise InputError(f"keystore {self.root}: no key set for content id {content_id!r}")
        return KeySet(content_id, keys, thresholds or ClassThresholds())

    def ensure_outside(self, tree: Path) -> None:
        """Refuse an output tree that contains the keystore (or lies inside it): keys must
        never be published with a release."""
        store, out = self.root.resolve(), tree.resolve()
        if store == out or out in store.parents or store in out.parents:
            raise InputError(f"keystore {self.root} must be outside the output tree {tree}")

    # -- internals --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            fd = os.open(self.root / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise KeystoreError(f"keystore {self.root}: cannot lock it ({exc.strerror})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _remove_stale_temps(self) -> None:
        """Temp files left by a killed writer. Safe under the lock: only a lock holder writes."""
        for path in self.root.glob(f"{_TEMP_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _write_new(self, target: Path, payload: bytes) -> None:
        try:
            write_durably(target, payload, temp_prefix=_TEMP_PREFIX)
        except OSError as exc:
            raise KeystoreError(f"keystore {self.root}: cannot write ({exc.strerror})") from exc

    def _read(self, kid: bytes) -> StoredKey | None:
        path = self.path_for(kid)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise KeystoreError(f"{path}: cannot read ({exc.strerror})") from exc
        try:
            doc: Any = json.loads(raw)
            key = ContentKey(
                bytes.fromhex(doc["kid"]),
                bytes.fromhex(doc["key"]),
                bytes.fromhex(doc["iv"]) if doc.get("iv") else None,
            )
            content_id = doc.get("content_id")
            classes = tuple(TrackClass(c) for c in doc.get("track_classes") or ())
            created = str(doc.get("created", ""))
        except (ValueError, KeyError, TypeError, InputError) as exc:
            # The message names the file only: its text may hold a key.
            raise KeystoreError(f"{path}: damaged keystore entry") from exc
        if key.kid != kid:
            raise KeystoreError(f"{path}: holds KID {key.kid_uuid}, not {_uuid(kid)}")
        return StoredKey(key, content_id if isinstance(content_id, str) else None, classes, created)


def _entry(key: ContentKey, content_id: str | None, classes: tuple[TrackClass, ...]) -> bytes:
    doc = {
        "version": _FORMAT_VERSION,
        "kid": key.kid.hex(),
        "key": key.key.hex(),
        "iv": key.iv.hex() if key.iv is not None else None,
        "content_id": content_id,
        "track_classes": [c.value for c in classes],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


def _uuid(kid: bytes) -> str:
    h = kid.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def keystore_outside(keystore: Path | None, output: Path) -> Keystore:
    """The keystore (default: under the user's data dir), refused when it lies inside the
    output tree or contains it: keys are never published with a release. Checked on the paths
    first: opening a keystore inside the output would create it there."""
    root = (keystore if keystore is not None else default_keystore_dir()).expanduser()
    store_path, out_path = root.resolve(), output.resolve()
    if store_path == out_path or out_path in store_path.parents or store_path in out_path.parents:
        raise InputError(f"keystore {root} must be outside the output tree {output}")
    store = Keystore(root)
    store.ensure_outside(output)
    return store
