"""What a title's release is made from, as release.json records it: the source's size and
version (an S3 ETag, or a file's sha256), every other input file's sha256, the title's options
and the cdnpack version. Equal inputs make an equal release, so a catalog skips a title whose
published release.json records its current inputs.

Hashing a two-hour mezzanine takes minutes, so a file's sha256 is remembered from one run to
the next while the file is unchanged, in the user's cache as a push remembers its files'
(cdn/digest_cache.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from cdn.digest_cache import DigestCache
from cdn.objects import head
from cdn.s3 import Transfer, file_facts
from packager.encoding.ladder import PRESETS
from packager.errors import InputError
from packager.output.release import ReleaseInputs
from release.catalog_file import TitleSpec


def cdnpack_version() -> str:
    try:
        return version("cdnpack")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


class InputHashes:
    """sha256 of a catalog's local input files, remembered from one run to the next while a
    file is unchanged (cdn/digest_cache.py: the push's own cache, same rules, one cache file
    per catalog); thread-safe."""

    def __init__(self, catalog: Path, cache_dir: Path | None = None) -> None:
        transfer = Transfer()
        self._transfer = transfer
        self._cache = DigestCache(catalog, (transfer.multipart_threshold,
                                            transfer.multipart_chunksize), cache_dir)

    def sha256(self, path: Path) -> str:
        try:
            return self._cache.facts(str(path), str(path),
                                     lambda p: file_facts(p, self._transfer))[1]
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})") from None

    def save(self) -> None:
        self._cache.save()


@dataclass(frozen=True)
class SourceFacts:
    size: int
    version: str  # "etag:..." or "sha256:..."


def source_facts(spec: TitleSpec, s3: Any, hashes: InputHashes) -> SourceFacts:
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


def title_inputs(spec: TitleSpec, source: SourceFacts, hashes: InputHashes) -> ReleaseInputs:
    return ReleaseInputs(
        source=spec.source, source_bytes=source.size, source_version=source.version,
        files={str(p): f"sha256:{hashes.sha256(p)}" for p in input_files(spec)},
        options={k: json.dumps(v, sort_keys=True) for k, v in sorted(spec.options().items())},
        cdnpack=cdnpack_version(),
    )
