"""Resuming the multipart uploads a killed push left open: only the parts S3 lacks are sent.

A push killed while a large object goes up in parts leaves that upload open on S3: its parts
are stored (and billed) but no listing shows the object, so a plain re-run would send every
part again. Before a phase uploads an object past the multipart threshold, the open uploads
under the prefix are listed (ListMultipartUploads, once, only when the plan has such an
object); an upload of that key made with SHA-256 checksums keeps each part whose ETag (the
part's MD5) and size match our chunk, gets the others, and is completed. Every other open
upload of a key being uploaded is aborted.

S3 does not say what headers an open upload was created with, so a resumed object is checked
with one HEAD: headers other than ours (the file changed between the two pushes, the same
chunks aside) and the object is uploaded afresh by the caller, as is one whose upload cannot be
resumed (gone, another checksum, a part refused).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cdn.s3 import Connection, OriginError, S3Location, Transfer, Upload, origin_error

log = logging.getLogger(__name__)

#: Parts read into memory at once while resuming: s3transfer's own bound
#: (max_in_memory_upload_chunks), so a resume never holds more than a fresh upload would.
PARTS_IN_MEMORY = 10


@dataclass(frozen=True)
class OpenUpload:
    key: str
    upload_id: str
    checksum: str | None  # the ChecksumAlgorithm it was created with


@dataclass(frozen=True)
class Part:
    number: int
    offset: int
    size: int
    md5: str  # hex: the part's ETag
    sha256: str  # base64: the part's x-amz-checksum-sha256


def open_uploads(s3: Any, location: S3Location) -> dict[str, list[OpenUpload]]:
    """Unfinished multipart uploads under the prefix, by key, newest first. An origin that
    refuses the listing (no s3:ListBucketMultipartUploads) resumes nothing."""
    prefix = f"{location.prefix}/" if location.prefix else ""
    found: dict[str, list[tuple[Any, OpenUpload]]] = {}
    try:
        pages = s3.get_paginator("list_multipart_uploads").paginate(
            Bucket=location.bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Uploads", []):
                found.setdefault(item["Key"], []).append((item.get("Initiated"), OpenUpload(
                    item["Key"], item["UploadId"], item.get("ChecksumAlgorithm"))))
    except (ClientError, BotoCoreError) as exc:
        log.debug("open multipart uploads not listed (%s): none resumed", exc)
        return {}
    return {key: [u for _, u in sorted(ups, key=lambda p: str(p[0]), reverse=True)]
            for key, ups in found.items()}


def file_parts(path: str | os.PathLike[str], transfer: Transfer) -> list[Part]:
    """The parts s3transfer cuts a file into with these settings, with their digests."""
    parts: list[Part] = []
    with open(path, "rb") as f:  # noqa: PTH123
        offset = 0
        while chunk := f.read(transfer.multipart_chunksize):
            parts.append(Part(len(parts) + 1, offset, len(chunk),
                              hashlib.md5(chunk, usedforsecurity=False).hexdigest(),
                              base64.b64encode(hashlib.sha256(chunk).digest()).decode()))
            offset += len(chunk)
    return parts


def resume_uploads(
    s3: Any, bucket: str, uploads: list[Upload], unfinished: dict[str, list[OpenUpload]],
    conn: Connection, transfer: Transfer, on_bytes: Callable[[int], None],
) -> dict[str, str]:
    """Resume what can be resumed of `uploads`; returns key -> ETag S3 answered for each
    object completed here (the caller uploads the others as usual)."""
    completed: dict[str, str] = {}
    for item in uploads:
        candidates = unfinished.get(item.key, [])
        # Below the threshold the object goes up in one PUT (its ETag a plain MD5): an open
        # upload of it (another tool's) is only aborted.
        large = item.size >= transfer.multipart_threshold
        usable = next((u for u in candidates if u.checksum == "SHA256" and large), None)
        for stale in candidates:
            if stale is not usable:
                _abort(s3, bucket, stale)
        if usable is None:
            continue
        etag = _resume(s3, bucket, item, usable, conn, transfer, on_bytes)
        if etag is None:
            _abort(s3, bucket, usable)
        else:
            completed[item.key] = etag
    return completed


def _resume(s3: Any, bucket: str, item: Upload, upload: OpenUpload, conn: Connection,
            transfer: Transfer, on_bytes: Callable[[int], None]) -> str | None:
    parts = file_parts(item.path, transfer)
    try:
        stored = _stored_parts(s3, bucket, upload)
    except (ClientError, BotoCoreError) as exc:  # NoSuchUpload: completed or aborted since
        log.debug("upload %s of %s not resumed: %s", upload.upload_id, item.key, exc)
        return None
    missing = [p for p in parts if stored.get(p.number) != (p.md5, p.size)]
    on_bytes(sum(p.size for p in parts) - sum(p.size for p in missing))
    log.info("resuming %s: %d of %d parts stored", item.key, len(parts) - len(missing),
             len(parts))

    def send(part: Part) -> None:
        with open(item.path, "rb") as f:  # noqa: PTH123
            f.seek(part.offset)
            body = f.read(part.size)
        answer = s3.upload_part(Bucket=bucket, Key=item.key, UploadId=upload.upload_id,
                                PartNumber=part.number, Body=body, ChecksumSHA256=part.sha256)
        if answer["ETag"].strip('"') != part.md5:
            raise OriginError(f"verify: part {part.number} of {item.key} was stored with "
                              "different bytes")
        on_bytes(part.size)

    workers = max(1, min(conn.concurrency, PARTS_IN_MEMORY, len(missing)))
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cdnpack-part") as pool:
            list(pool.map(send, missing))
        answer = s3.complete_multipart_upload(
            Bucket=bucket, Key=item.key, UploadId=upload.upload_id,
            MultipartUpload={"Parts": [{"PartNumber": p.number, "ETag": f'"{p.md5}"',
                                        "ChecksumSHA256": p.sha256} for p in parts]})
        head = s3.head_object(Bucket=bucket, Key=item.key)
    except (ClientError, BotoCoreError) as exc:
        raise origin_error(exc, f"upload of {item.key} failed") from exc
    args = item.extra_args
    if (head.get("ContentType"), head.get("CacheControl"), head.get("Metadata")) != (
            args.get("ContentType"), args.get("CacheControl"), args.get("Metadata")):
        log.info("%s was resumed with another file's headers: uploading it afresh", item.key)
        return None
    return str(answer["ETag"]).strip('"')


def _stored_parts(s3: Any, bucket: str, upload: OpenUpload) -> dict[int, tuple[str, int]]:
    stored: dict[int, tuple[str, int]] = {}
    pages = s3.get_paginator("list_parts").paginate(Bucket=bucket, Key=upload.key,
                                                    UploadId=upload.upload_id)
    for page in pages:
        for part in page.get("Parts", []):
            stored[int(part["PartNumber"])] = (part["ETag"].strip('"'), int(part["Size"]))
    return stored


def _abort(s3: Any, bucket: str, upload: OpenUpload) -> None:
    """An open upload nobody will finish: its parts are billed until it is aborted."""
    try:
        s3.abort_multipart_upload(Bucket=bucket, Key=upload.key, UploadId=upload.upload_id)
    except (ClientError, BotoCoreError) as exc:
        log.debug("open upload %s of %s not aborted: %s", upload.upload_id, upload.key, exc)
