"""Single objects on S3 the release flow reads and writes beside a push: a source's facts (size,
ETag), a presigned GET for tools that read by HTTP ranges, a ranged download, small JSON records.

A source on S3 is never copied through the coordinator for a worker: ffmpeg and ffprobe read a
presigned URL with HTTP range requests (seeking as in a file), and a download, where a local
copy is needed, is s3transfer's concurrent ranged GETs into a temporary name renamed into place.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cdn.s3 import S3Location, origin_error
from packager.errors import InputError

#: A presigned URL lives long enough for the longest encode job that reads it.
PRESIGN_SECONDS = 12 * 3600


@dataclass(frozen=True)
class ObjectFacts:
    """What identifies one version of an object: its size and ETag (an MD5 for single PUTs,
    the multipart form otherwise; either changes when the bytes do)."""

    url: str
    size: int
    etag: str


def split_url(url: str) -> tuple[str, str]:
    """s3://bucket/key → (bucket, key); the key must name an object."""
    if not url.startswith("s3://"):
        raise InputError(f"{url!r} is not an s3:// URL")
    bucket, _, key = url[5:].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise InputError(f"{url!r}: expected s3://BUCKET/KEY of one object")
    return bucket, key


def head(s3: Any, url: str) -> ObjectFacts:
    """The object's size and ETag; a missing object or bucket is bad input (exit 2)."""
    bucket, key = split_url(url)
    try:
        answer = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
            raise InputError(f"{url}: no such object") from None
        raise origin_error(exc, f"cannot read {url}") from None
    except BotoCoreError as exc:
        raise origin_error(exc, f"cannot read {url}") from None
    return ObjectFacts(url, int(answer["ContentLength"]), str(answer["ETag"]).strip('"'))


def presigned_get(s3: Any, url: str, seconds: int = PRESIGN_SECONDS) -> str:
    """An https (or the endpoint's http) URL any machine can GET, with ranges, until it
    expires: a bearer credential for one object, so it travels only where the object may."""
    bucket, key = split_url(url)
    answer: str = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                            ExpiresIn=seconds)
    return answer


def download(s3: Any, url: str, target: Path) -> None:
    """The object into `target` by concurrent ranged GETs, under a temporary name renamed into
    place: a reader never sees half a source."""
    bucket, key = split_url(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    try:
        s3.download_file(bucket, key, partial)
        Path(partial).replace(target)
    except (ClientError, BotoCoreError) as exc:
        raise origin_error(exc, f"cannot download {url}") from None
    finally:
        with suppress(FileNotFoundError):
            Path(partial).unlink()


def get_json(s3: Any, location: S3Location, name: str) -> Any | None:
    """A small JSON record under a prefix; None when there is none (or it is not JSON: a
    record we cannot read is as good as absent, and is written again)."""
    try:
        answer = s3.get_object(Bucket=location.bucket, Key=location.key(name))
        body = answer["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code", "") in ("404", "NoSuchKey"):
            return None
        raise origin_error(exc, f"cannot read {location}/{name}") from None
    except BotoCoreError as exc:
        raise origin_error(exc, f"cannot read {location}/{name}") from None
    try:
        return json.loads(body)
    except ValueError:
        return None


def put_json(s3: Any, location: S3Location, name: str, doc: Any,
             cache_control: str = "no-cache") -> None:
    """A small JSON record in one PUT (S3 stores a PUT whole or not at all)."""
    body = (json.dumps(doc, indent=2) + "\n").encode()
    try:
        s3.put_object(Bucket=location.bucket, Key=location.key(name), Body=body,
                      ContentType="application/json", CacheControl=cache_control)
    except (ClientError, BotoCoreError) as exc:
        raise origin_error(exc, f"cannot write {location}/{name}") from None
