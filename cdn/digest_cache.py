"""Digests of release files remembered from one push to the next, while the file is unchanged.

Before a push, every file of the release is read and hashed: its sha256 must be release.json's
(nothing tampered with goes up) and its MD5 is the ETag the listing is compared with. On a
re-push (a catalog re-run is hundreds of them) that is all the work there is, the whole
release read again, on the cores the origin needs to answer the listing.

A file's digests are taken from the last push when the file system says it has not changed
since: same device, inode, size, modification time and inode change time (ctime). ctime moves
with any write, rename or chmod, and no call sets it back (touch -d sets mtime, not ctime), so a
changed file is always read again, as git's index does. The one gap is a write within the same
clock tick as the write before (timestamps come from a coarse clock): the read in between would
see the earlier bytes with the final timestamps. So a file is remembered only if its last change
is `settled` seconds older than the read, and its stat is the same before and after the read.

The cache is the user's ($XDG_CACHE_HOME/cdnpack/digests, one file per release directory), never
the release's or the bucket's; an unreadable or foreign cache file is ignored; it is replaced by
rename (a crash leaves the old one, or none), without fsync: losing it costs one hashing pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

#: Seconds since a file's last change before its digests are remembered (see the docstring).
SETTLED = 2.0
_VERSION = 1

#: (size, sha256, ETag) of a file, as cdn.s3.file_facts gives them.
Facts = tuple[int, str, str]


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """$XDG_CACHE_HOME/cdnpack/digests, else ~/.cache/cdnpack/digests (XDG Base Directory
    spec: a relative XDG_CACHE_HOME is invalid and ignored)."""
    env = os.environ if env is None else env
    cache_home = env.get("XDG_CACHE_HOME", "")
    base = Path(cache_home) if cache_home and Path(cache_home).is_absolute() else None
    if base is None:
        base = Path(env.get("HOME") or Path.home()) / ".cache"
    return base / "cdnpack" / "digests"


class DigestCache:
    """The remembered digests of one release directory's files, for one set of multipart
    settings (the ETag depends on them). Safe to use from several hashing threads."""

    def __init__(self, release_dir: Path, settings: tuple[int, int],
                 cache_dir: Path | None = None, settled: float = SETTLED) -> None:
        root = str(release_dir.resolve())
        self.path = (cache_dir or default_cache_dir()) / (
            hashlib.sha256(root.encode()).hexdigest()[:32] + ".json")
        self._header = {"version": _VERSION, "root": root, "settings": list(settings)}
        self._settled_ns = int(settled * 1e9)
        self._known = self._load()
        self._now: dict[str, list[Any]] = {}

    def _load(self) -> dict[str, list[Any]]:
        try:
            doc = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return {}
        if not isinstance(doc, dict) or any(doc.get(k) != v for k, v in self._header.items()):
            return {}
        files = doc.get("files")
        return files if isinstance(files, dict) else {}

    def facts(self, relative: str, path: str, compute: Callable[[str], Facts]) -> Facts:
        """The file's (size, sha256, ETag): remembered if it is unchanged, else `compute`d
        (and remembered when it had settled before it was read)."""
        before = os.stat(path)  # noqa: PTH116 (a str path: 2,000 files a push)
        identity = [before.st_dev, before.st_ino, before.st_size, before.st_mtime_ns,
                    before.st_ctime_ns]
        known = self._known.get(relative)
        if (isinstance(known, list) and len(known) == 7 and known[:5] == identity
                and isinstance(known[5], str) and isinstance(known[6], str)):
            self._now[relative] = known
            return before.st_size, known[5], known[6]
        started = time.time_ns()
        size, sha256, etag = compute(path)
        after = os.stat(path)  # noqa: PTH116
        settled = max(before.st_mtime_ns, before.st_ctime_ns) < started - self._settled_ns
        unchanged = [after.st_dev, after.st_ino, after.st_size, after.st_mtime_ns,
                     after.st_ctime_ns] == identity and size == before.st_size
        if settled and unchanged:
            self._now[relative] = [*identity, sha256, etag]
        return size, sha256, etag

    def save(self) -> None:
        """Keep what this pass saw and verified (files gone from the release are dropped);
        written only when it differs from what was loaded. A cache that cannot be written
        is no error: the next push hashes again."""
        if self._now == self._known:
            return
        payload = json.dumps({**self._header, "files": self._now}).encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".digests-",
                                        suffix=".part")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(payload)
                Path(temp).replace(self.path)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        except OSError:
            return
