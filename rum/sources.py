"""The log files an ingest reads: local files and directories, or an S3 prefix, with identities.

A file's identity is (name, size, version): the version is the S3 ETag, or a local file's
mtime in nanoseconds. The ledger in RUM.jsonl keeps the identities already ingested, so a
second ingest of the same files counts them once, and a file CloudFront rewrote (new ETag) is
read again. S3 objects are downloaded to a temporary directory one by one (DuckDB then reads
them locally; the download streams, so memory stays flat).
"""

from __future__ import annotations

import contextlib
import gzip
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.errors import EndpointError, InputError

_CHUNK = 1 << 20
#: What is read of a file's start: its header lines are well under 1 KiB.
_HEAD = 1 << 16


@dataclass(frozen=True)
class LogSource:
    source: str  # as the user named it: a path or an s3:// URL
    path: Path  # where DuckDB reads it
    name: str
    size: int
    version: str

    @property
    def identity(self) -> tuple[str, int, str]:
        return self.name, self.size, self.version


def local_sources(paths: Sequence[str]) -> list[LogSource]:
    """Files as given, and every regular file under a directory (sorted; dotfiles skipped)."""
    out: list[LogSource] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file()
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
        elif path.is_file():
            files = [path]
        else:
            raise InputError(f"{given}: no such file or directory")
        for f in files:
            stat = f.stat()
            out.append(LogSource(str(f), f.resolve(), f.name, stat.st_size,
                                 str(stat.st_mtime_ns)))
    return out


def list_s3(url: str, s3: Any) -> list[tuple[str, str, int, str]]:
    """(s3 URL, key, size, ETag) of every object under an s3://BUCKET/PREFIX."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    from cdn.s3 import parse_s3_url  # noqa: PLC0415
    location = parse_s3_url(url)
    prefix = location.key("") if location.prefix else ""
    out: list[tuple[str, str, int, str]] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket,
                                                                 Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if not key.endswith("/"):
                    out.append((f"s3://{location.bucket}/{key}", key, int(obj["Size"]),
                                str(obj["ETag"]).strip('"')))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            raise InputError(f"{url}: no such bucket {location.bucket!r}") from exc
        raise EndpointError(f"cannot list logs at {url}: {exc}") from exc
    except BotoCoreError as exc:
        raise EndpointError(f"cannot list logs at {url}: {exc}") from exc
    return out


@contextlib.contextmanager
def s3_sources(url: str, s3: Any, keep: set[tuple[str, int, str]]) -> Iterator[
        tuple[list[LogSource], list[LogSource]]]:
    """(new sources downloaded to a temp dir, sources already in the ledger) under a prefix."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415
    bucket = url[len("s3://"):].split("/", 1)[0]
    with tempfile.TemporaryDirectory(prefix="cdnpack-rum-") as tmp:
        fresh: list[LogSource] = []
        known: list[LogSource] = []
        for i, (where, key, size, etag) in enumerate(list_s3(url, s3)):
            name = key.rsplit("/", 1)[-1]
            source = LogSource(where, Path(tmp) / f"{i:06d}-{name}", name, size, etag)
            if source.identity in keep:
                known.append(source)
                continue
            try:
                s3.download_file(bucket, key, str(source.path))
            except (ClientError, BotoCoreError) as exc:
                raise EndpointError(f"cannot read {where}: {exc}") from exc
            fresh.append(source)
        yield fresh, known


def is_gzip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(2) == b"\x1f\x8b"


def head(path: Path, size: int = _HEAD) -> bytes:
    """The first `size` bytes of a (gzip or plain) log file, decompressed: enough for its
    header lines and to tell text from binary, bounded whatever the file holds. A gzip cut
    before then raises EOFError."""
    opener = gzip.open if is_gzip(path) else open
    with opener(path, "rb") as f:
        return f.read(size)


def salvage_gzip(path: Path, target: Path) -> int:
    """Decompress what a damaged gzip holds up to the damage into `target` (complete lines
    only); returns the number of lines kept. Concatenated gzip members are followed."""
    lines = 0
    tail = b""
    with path.open("rb") as src, target.open("wb") as out:
        inflater = zlib.decompressobj(wbits=31)
        while True:
            chunk = src.read(_CHUNK)
            if not chunk:
                break
            try:
                data = inflater.decompress(chunk)
                while inflater.eof and inflater.unused_data:  # next gzip member
                    rest = inflater.unused_data
                    inflater = zlib.decompressobj(wbits=31)
                    data += inflater.decompress(rest)
            except zlib.error:
                break
            data = tail + data
            cut = data.rfind(b"\n") + 1
            out.write(data[:cut])
            lines += data[:cut].count(b"\n")
            tail = data[cut:]
    return lines
