"""Digests remembered between pushes: an unchanged file is not read again; a changed one always
is, whatever its size and modification time say; a file changed too recently to be told apart
is never remembered; a cache of other settings or damaged is ignored."""

from __future__ import annotations

import os
import time
from pathlib import Path

from cdn.digest_cache import DigestCache, Facts
from cdn.s3 import Transfer, file_facts

SETTINGS = (Transfer().multipart_threshold, Transfer().multipart_chunksize)


class Reads:
    """file_facts, counting the files it reads."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, path: str) -> Facts:
        self.paths.append(path)
        return file_facts(path, Transfer())


def release(tmp_path: Path) -> Path:
    root = tmp_path / "release"
    root.mkdir()
    (root / "seg_00001.m4s").write_bytes(b"segment one " * 1000)
    return root


def facts_after_save(root: Path, cache_dir: Path, reads: Reads, settled: float = 0.0) -> Facts:
    first = DigestCache(root, SETTINGS, cache_dir, settled=settled)
    first.facts("seg_00001.m4s", str(root / "seg_00001.m4s"), Reads())
    first.save()
    again = DigestCache(root, SETTINGS, cache_dir, settled=settled)
    return again.facts("seg_00001.m4s", str(root / "seg_00001.m4s"), reads)


def test_an_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    root = release(tmp_path)
    reads = Reads()
    facts = facts_after_save(root, tmp_path / "cache", reads)
    assert reads.paths == []
    assert facts == file_facts(root / "seg_00001.m4s", Transfer())


def test_a_changed_file_is_read_again_with_its_old_size_and_modification_time(
    tmp_path: Path
) -> None:
    """Rewritten in place, same length, mtime set back: its inode change time moved, which no
    call sets back, so the new bytes are read."""
    root = release(tmp_path)
    segment = root / "seg_00001.m4s"
    cache = DigestCache(root, SETTINGS, tmp_path / "cache", settled=0.0)
    cache.facts(segment.name, str(segment), Reads())
    cache.save()
    stat = segment.stat()
    # A later clock tick than the first write (settled=0 waives the wait that guards this).
    time.sleep(0.05)
    segment.write_bytes(b"SEGMENT ONE " * 1000)
    os.utime(segment, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert segment.stat().st_size == stat.st_size
    assert segment.stat().st_mtime_ns == stat.st_mtime_ns
    reads = Reads()
    facts = DigestCache(root, SETTINGS, tmp_path / "cache", settled=0.0).facts(
        segment.name, str(segment), reads)
    assert reads.paths == [str(segment)]
    assert facts == file_facts(segment, Transfer())


def test_a_file_changed_within_the_settle_time_is_not_remembered(tmp_path: Path) -> None:
    """A write in the same clock tick as the one before would leave its timestamps as they
    were: a file changed less than `settled` seconds before it is read is read every time."""
    root = release(tmp_path)
    reads = Reads()
    facts_after_save(root, tmp_path / "cache", reads, settled=3600.0)
    assert reads.paths == [str(root / "seg_00001.m4s")]


def test_other_settings_or_a_damaged_cache_are_ignored(tmp_path: Path) -> None:
    root = release(tmp_path)
    cache_dir = tmp_path / "cache"
    saved = DigestCache(root, SETTINGS, cache_dir, settled=0.0)
    saved.facts("seg_00001.m4s", str(root / "seg_00001.m4s"), Reads())
    saved.save()
    reads = Reads()
    DigestCache(root, (8 * 2**20, 8 * 2**20), cache_dir, settled=0.0).facts(
        "seg_00001.m4s", str(root / "seg_00001.m4s"), reads)
    assert len(reads.paths) == 1  # the ETag of other multipart settings is another
    saved.path.write_bytes(b"\x00garbage")
    DigestCache(root, SETTINGS, cache_dir, settled=0.0).facts(
        "seg_00001.m4s", str(root / "seg_00001.m4s"), reads)
    assert len(reads.paths) == 2
