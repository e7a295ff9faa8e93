"""Content keys, key sets per track class, and the durable local keystore that never loses one.

A key that is lost makes every release encrypted with it unplayable; a key that leaks makes the
protection worthless. So: key bytes never appear in repr()/str() or in error messages, keys come
from the operating system's CSPRNG, and the keystore writes each key once, atomically and
durably (temp file, fsync, rename, fsync of the directory), mode 0600 in a 0700 directory, under
an exclusive lock so that two processes writing at once cannot lose or tear a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from packager.errors import CdnpackError, InputError
from packager.files import write_durably

log = logging.getLogger(__name__)

KEY_BYTES = 16
#: One file per KID: '<32 lowercase hex digits>.json'. Anything else in the directory (the lock
#: file, a writer's temp file) is not a key.
_KEY_FILE = re.compile(r"^[0-9a-f]{32}\.json$")
_TEMP_PREFIX = ".tmp-"
_LOCK_NAME = ".lock"
_FORMAT_VERSION = 1


class KeyConflictError(InputError):
    """A KID already in the keystore was offered with a different key: refusing to replace it,
    since content already encrypted with the stored key would become unplayable."""


class KeystoreError(CdnpackError):
    """The keystore directory cannot be used (permissions, a damaged file): an environment
    problem, not bad input."""

    exit_code = 3


@dataclass(frozen=True)
class ContentKey:
    """A 128-bit content key, its 128-bit key ID and optionally a fixed IV (8 or 16 bytes).

    repr() and str() show the KID only: the key is masked so that it cannot reach logs, error
    messages or tracebacks by accident.
    """

    kid: bytes
    key: bytes = field(repr=False)
    iv: bytes | None = None

    def __post_init__(self) -> None:
        if len(self.kid) != KEY_BYTES or len(self.key) != KEY_BYTES:
            raise InputError("a content key and its KID are 16 bytes (32 hex digits) each")
        if self.iv is not None and len(self.iv) not in (8, 16):
            raise InputError("an IV is 8 or 16 bytes (16 or 32 hex digits)")

    @classmethod
    def generate(cls) -> ContentKey:
        """A fresh random KID and key from the OS CSPRNG (secrets, i.e. os.urandom)."""
        return cls(secrets.token_bytes(KEY_BYTES), secrets.token_bytes(KEY_BYTES))

    @property
    def kid_uuid(self) -> str:
        h = self.kid.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def __repr__(self) -> str:
        iv = "None" if self.iv is None else self.iv.hex()
        return f"ContentKey(kid={self.kid_uuid}, key=<masked>, iv={iv})"

    __str__ = __repr__


class TrackClass(StrEnum):
    """The track classes DRM licence policies key separately (Widevine/PlayReady output
    protection rules differ for SD, HD and UHD video; audio is usually least protected)."""

    AUDIO = "AUDIO"
    SD = "SD"
    HD = "HD"
    UHD = "UHD"


@dataclass(frozen=True)
class ClassThresholds:
    """Where video classes begin, by frame height: SD up to sd_max_height, HD up to
    hd_max_height, UHD above. The defaults follow the usual licence policy split (576p SD,
    720p/1080p HD, anything larger UHD)."""

    sd_max_height: int = 576
    hd_max_height: int = 1080

    def __post_init__(self) -> None:
        if not 0 < self.sd_max_height < self.hd_max_height:
            raise InputError("track class thresholds need 0 < SD max height < HD max height")

    @classmethod
    def parse(cls, text: str) -> ClassThresholds:
        """'SD=576,HD=1080': the largest frame height of each class (either may be left out
        for its default); UHD is everything above HD."""
        heights: dict[str, int] = {}
        for item in (part.strip() for part in text.split(",")):
            name, sep, value = item.partition("=")
            name = name.strip().upper()
            if not sep or name not in ("SD", "HD") or name in heights:
                raise InputError(f"--class-thresholds: {item!r} is not SD=HEIGHT or HD=HEIGHT "
                                 "(each once, e.g. SD=576,HD=1080)")
            try:
                heights[name] = int(value)
            except ValueError:
                raise InputError(f"--class-thresholds: {value.strip()!r} is not a height in "
                                 "pixels") from None
        defaults = cls()
        return cls(heights.get("SD", defaults.sd_max_height),
                   heights.get("HD", defaults.hd_max_height))

    def video_class(self, height: int) -> TrackClass:
        if height <= self.sd_max_height:
            return TrackClass.SD
        if height <= self.hd_max_height:
            return TrackClass.HD
        return TrackClass.UHD


@dataclass(frozen=True)
class KeySet:
    """The keys of one piece of content: one key for every track, or one per track class."""

    content_id: str
    keys: Mapping[TrackClass, ContentKey] = field(hash=False)
    thresholds: ClassThresholds = field(default_factory=ClassThresholds)

    def __post_init__(self) -> None:
        if not self.content_id.strip():
            raise InputError("a key set needs a non-empty content id")
        missing = [c.value for c in TrackClass if c not in self.keys]
        if missing:
            raise InputError(f"key set {self.content_id!r} has no key for {', '.join(missing)}")
        by_kid: dict[bytes, ContentKey] = {}
        for key in self.keys.values():
            if by_kid.setdefault(key.kid, key) != key:
                raise KeyConflictError(f"key set {self.content_id!r}: KID {key.kid_uuid} is "
                                       "given two different keys")
        # Frozen all the way down: nobody swaps a key after the set is built.
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))

    @classmethod
    def single(
        cls, content_id: str, key: ContentKey, thresholds: ClassThresholds | None = None
    ) -> KeySet:
        """One key for all tracks."""
        return cls(content_id, dict.fromkeys(TrackClass, key), thresholds or ClassThresholds())

    @classmethod
    def generate(
        cls, content_id: str, per_class: bool = False, thresholds: ClassThresholds | None = None
    ) -> KeySet:
        """Fresh random keys: one for everything, or one per track class."""
        if per_class:
            keys = {c: ContentKey.generate() for c in TrackClass}
        else:
            keys = dict.fromkeys(TrackClass, ContentKey.generate())
        return cls(content_id, keys, thresholds or ClassThresholds())

    @property
    def per_class(self) -> bool:
        return len(self.distinct_keys) > 1

    @property
    def distinct_keys(self) -> tuple[ContentKey, ...]:
        """Each key once, in track class order (what a PSSH lists as its key_ids)."""
        seen: dict[bytes, ContentKey] = {}
        for c in TrackClass:
            seen.setdefault(self.keys[c].kid, self.keys[c])
        return tuple(seen.values())

    def track_class(self, kind: str, height: int = 0) -> TrackClass:
        """The class of a track: kind is 'audio' or 'video' (for video, its frame height)."""
        if kind == "audio":
            return TrackClass.AUDIO
        if kind == "video":
            return self.thresholds.video_class(height)
        raise InputError(f"no key class for a {kind!r} track (audio or video)")

    def key_for(self, kind: str, height: int = 0) -> ContentKey:
        return self.keys[self.track_class(kind, height)]

    def __repr__(self) -> str:
        kids = ", ".join(f"{c.value}={k.kid_uuid}" for c, k in self.keys.items())
        return f"KeySet(content_id={self.content_id!r}, {kids})"

    __str__ = __repr__


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
                classes = tuple(c for c in TrackClass if keyset.keys[c].kid == key.kid)
                self._write_new(self.path_for(key.kid), _entry(key, keyset.content_id, classes))
        for key in new:
            log.info("stored key %s in %s", key.kid_uuid, self.root)

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
