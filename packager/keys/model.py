"""Content keys and key sets per track class: what a key is, never where it is kept.

A key that leaks makes the protection worthless, so key bytes never appear in repr()/str() or in
error messages, and keys come from the operating system's CSPRNG. Storing them is
packager/keys/keystore.py's job.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from packager.errors import InputError

KEY_BYTES = 16


class KeyConflictError(InputError):
    """A KID already in the keystore was offered with a different key: refusing to replace it,
    since content already encrypted with the stored key would become unplayable."""


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
        """A fresh random KID and key from the OS CSPRNG (os.urandom, what secrets.token_bytes
        returns; secrets itself would load hmac and random into every `package`)."""
        return cls(os.urandom(KEY_BYTES), os.urandom(KEY_BYTES))

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

    def classes_of(self, kid: bytes) -> tuple[TrackClass, ...]:
        """The track classes a key of the set serves, in class order."""
        return tuple(c for c in TrackClass if self.keys[c].kid == kid)

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


def parse_kid(text: str) -> bytes:
    """A KID as people write it: 32 hex digits or a UUID (dashes, braces, any case)."""
    try:
        return uuid.UUID(text.strip()).bytes
    except ValueError:
        raise InputError(f"KID {text!r} is not 32 hex digits or a UUID") from None
