"""What a title's release is made from, as release.json records it: the source's size and
version (an S3 ETag, or a file's sha256), every other input file's sha256, the title's options
and the cdnpack version. Equal inputs make an equal release, so a catalog skips a title whose
published release.json records its current inputs.

Hashing a two-hour mezzanine takes minutes, so a file's sha256 is kept in a cache beside the
user's other caches ($XDG_CACHE_HOME/cdnpack/file-hashes.json), valid while the file's size,
modification time and inode are those it was hashed at; a cache that cannot be read is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from contextlib import suppress
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from cdn.objects import head
from packager.encoding.ladder import PRESETS
from packager.errors import InputError
from packager.files import write_atomic
from packager.output.release import ReleaseInputs
from release.catalog_file import TitleSpec


def cdnpack_version() -> str:
    try:
        return version("cdnpack")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def cache_path() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "cdnpack" / "file-hashes.json"


class HashCache:
    """sha256 of local files, remembered by (size, mtime, inode); thread-safe."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_path()
        self._lock = threading.Lock()
        self._changed = False
        try:
            doc = json.loads(self.path.read_text())
            self._entries: dict[str, Any] = doc if isinstance(doc, dict) else {}
        except (OSError, ValueError):
            self._entries = {}

    def sha256(self, path: Path) -> str:
        try:
            stat = path.stat()
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})") from None
        identity = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        with self._lock:
            entry = self._entries.get(str(path))
        if isinstance(entry, dict) and entry.get("identity") == identity:
            return str(entry["sha256"])
        digest = hashlib.sha256()
        try:
            with path.open("rb") as f:
                while chunk := f.read(1 << 22):
                    digest.update(chunk)
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})") from None
        with self._lock:
            self._entries[str(path)] = {"identity": identity, "sha256": digest.hexdigest()}
            self._changed = True
        return digest.hexdigest()

    def save(self) -> None:
        with self._lock:
            if not self._changed:
                return
            text = json.dumps(self._entries, indent=1, sort_keys=True)
            self._changed = False
        with suppress(InputError):  # a cache not written costs a hash next time, nothing else
            write_atomic(self.path, text)


@dataclass(frozen=True)
class SourceFacts:
    size: int
    version: str  # "etag:..." or "sha256:..."


def source_facts(spec: TitleSpec, s3: Any, hashes: HashCache) -> SourceFacts:
    """An S3 source's size and ETag (HEAD: a missing object is exit 2), or a file's size and
    sha256."""
    if spec.remote_source:
        facts = head(s3, spec.source)
        return SourceFacts(facts.size, f"etag:{facts.etag}")
    path = Path(spec.source)
    return SourceFacts(path.stat().st_size, f"sha256:{hashes.sha256(path)}")


def input_files(spec: TitleSpec) -> list[Path]:
    """Every local file besides the source the release is made from."""
    files = [f.path for f in spec.title.side_files]
    if spec.title_file is not None:
        files.append(spec.title_file)
    if spec.ladder not in PRESETS:
        files.append(Path(spec.ladder))
    if spec.encrypt and spec.keys.startswith("cpix:"):
        files.append(Path(spec.keys.removeprefix("cpix:")))
    return sorted(set(files))


def title_inputs(spec: TitleSpec, source: SourceFacts, hashes: HashCache) -> ReleaseInputs:
    return ReleaseInputs(
        source=spec.source, source_bytes=source.size, source_version=source.version,
        files={str(p): f"sha256:{hashes.sha256(p)}" for p in input_files(spec)},
        options={k: json.dumps(v, sort_keys=True) for k, v in sorted(spec.options().items())},
        cdnpack=cdnpack_version(),
    )
