"""S3 origin I/O: where a release goes, how each object is stored, what is already there.

botocore, even its exceptions (10 ms), is imported by the functions that go through it: a no-op
push lists its prefix without it (cdn/s3direct.py) and never loads it.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from packager.errors import CdnpackError, InputError

log = logging.getLogger(__name__)

#: Segment and init names never change meaning once published, so caches may keep them forever.
IMMUTABLE = "public, max-age=31536000, immutable"

_BUCKET = re.compile(r"^(?!xn--)(?!.*-s3alias$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


class OriginError(CdnpackError):
    """The origin refused or could not be reached (after retries): an environment problem."""

    exit_code = 3


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # no leading or trailing slash; may be empty

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def parse_s3_url(url: str) -> S3Location:
    """s3://bucket/prefix, with the bucket checked against S3's naming rules ourselves
    (moto and some S3-compatible servers accept names AWS would refuse)."""
    match = re.fullmatch(r"s3://([^/]+)/?(.*)", url)
    if not match:
        raise InputError(f"{url!r} is not an s3://BUCKET/PREFIX URL")
    bucket, prefix = match.group(1), match.group(2).strip("/")
    if not _BUCKET.match(bucket) or ".." in bucket or _IPV4.match(bucket):
        raise InputError(
            f"{bucket!r} is not a valid S3 bucket name (3-63 lowercase letters, digits, "
            "dots and hyphens, starting and ending with a letter or digit)"
        )
    if "//" in prefix:
        raise InputError(f"{url!r}: the prefix has an empty path segment")
    return S3Location(bucket, prefix)


#: Requests in flight. Each PUT waits out a round trip to the origin (two while the origin
#: closes connections, as moto does), so the distance decides how many keep it busy: at 40 ms
#: 32 finished a 2,000-object push 20 % sooner than 16 (bench/push_concurrency.py --rtt 40);
#: on loopback, where the origin's own work decides, 16, 32 and 64 timed alike.
DEFAULT_CONCURRENCY = 32


@dataclass(frozen=True)
class Connection:
    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    retry_mode: str = "adaptive"  # botocore: standard or adaptive (client-side rate limiting)
    max_attempts: int = 10
    concurrency: int = DEFAULT_CONCURRENCY
    #: Static credentials (a local endpoint's); None: the AWS chain (env, profile, role).
    credentials: tuple[str, str] | None = None
    connect_timeout: float = 10.0  # seconds
    read_timeout: float = 60.0  # seconds


def client(conn: Connection, service: str = "s3") -> Any:
    """A boto3 client whose retries cover 500/503 SlowDown, throttling and connection resets.

    boto3 is imported here, not at module level: it costs a quarter second, which `push`
    spends on a background thread while it hashes the release (see bench/push.py).
    """
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError  # noqa: PLC0415

    try:
        key_id, secret = conn.credentials or (None, None)
        session = boto3.Session(profile_name=conn.profile, region_name=conn.region,
                                aws_access_key_id=key_id, aws_secret_access_key=secret)
    except BotoCoreError as exc:
        raise InputError(f"AWS profile: {exc}") from exc
    config = Config(
        retries={"mode": conn.retry_mode, "max_attempts": conn.max_attempts},
        max_pool_connections=max(10, conn.concurrency * 2),
        connect_timeout=conn.connect_timeout,
        read_timeout=conn.read_timeout,
        # Objects and parts go with a signed x-amz-checksum-sha256 header that S3 checks the
        # bytes against (object_args), which is how botocore binds bodies over https. Over http
        # (MinIO, on-prem gateways, moto) botocore would also hash each body for the signature:
        # a second read and sha256 of the whole release that the checksum already covers.
        s3={"payload_signing_enabled": False},
        # Presigned URLs (a listing's pages, a source read by ranges on a worker) signed with
        # SigV4 like every other request: botocore would presign with SigV2, which S3 refuses
        # for buckets made since June 2020.
        signature_version="s3v4" if service == "s3" else None,
    )
    return session.client(service, endpoint_url=conn.endpoint_url, config=config)


@dataclass(frozen=True)
class Transfer:
    """Multipart settings; the ETag of an object depends on them (see expected_etag)."""

    multipart_threshold: int = 16 * 1024 * 1024
    multipart_chunksize: int = 16 * 1024 * 1024


def file_digests(path: Path, transfer: Transfer) -> tuple[str, str]:
    """sha256 and the ETag S3 will report for this file, in one read (see file_facts)."""
    _, sha256, etag = file_facts(path, transfer)
    return sha256, etag


def file_facts(path: str | Path, transfer: Transfer) -> tuple[int, str, str]:
    """Size, sha256 and the ETag S3 will report for this file, in one read.

    The ETag is the MD5 for a single PUT and the MD5 of the part MD5s plus '-N' for a
    multipart upload with these settings. Knowing it lets one ListObjectsV2 pass decide what
    is unchanged (no HEAD per object), and lets each PUT's answer prove what S3 stored.
    Valid for unencrypted and SSE-S3 buckets (SSE-KMS ETags are not MD5s: all re-upload).
    The size is what was read and hashed, not what a stat said before.
    """
    with open(path, "rb", buffering=0) as f:  # noqa: PTH123 (a str path: 2,000 files a push)
        if os.fstat(f.fileno()).st_size < transfer.multipart_threshold:
            data = f.readall()
            if len(data) < transfer.multipart_threshold:
                return (
                    len(data),
                    hashlib.sha256(data).hexdigest(),
                    hashlib.md5(data, usedforsecurity=False).hexdigest(),
                )
            f.seek(0)  # it grew past the threshold since the stat: read it in parts
        size = 0
        sha = hashlib.sha256()
        parts: list[bytes] = []
        while chunk := f.read(transfer.multipart_chunksize):
            size += len(chunk)
            sha.update(chunk)
            parts.append(hashlib.md5(chunk, usedforsecurity=False).digest())
    joined = hashlib.md5(b"".join(parts), usedforsecurity=False).hexdigest()
    return size, sha.hexdigest(), f"{joined}-{len(parts)}"


@dataclass(frozen=True)
class RemoteObject:
    key: str
    size: int
    etag: str  # without quotes


def list_prefix(s3: Any, location: S3Location) -> dict[str, RemoteObject]:
    """Everything under the prefix, in one paginated ListObjectsV2 pass.

    Pages are fetched with presigned GETs and read with ElementTree: botocore's response
    parser costs about 0.5 ms per key (a second of a 2,000-object no-op push, measured with
    cProfile), ElementTree a few microseconds. Any failure of that path falls back to
    botocore's paginator, with its retries and its error reporting.
    """
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        return _list_presigned(s3, location)
    except (OSError, ValueError, BotoCoreError, ClientError) as exc:
        log.debug("fast listing failed (%s); using botocore's paginator", exc)
    prefix = f"{location.prefix}/" if location.prefix else ""
    found: dict[str, RemoteObject] = {}
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=location.bucket, Prefix=prefix
        ):
            for item in page.get("Contents", []):
                found[item["Key"]] = RemoteObject(
                    item["Key"], int(item["Size"]), item["ETag"].strip('"')
                )
    except (ClientError, BotoCoreError) as exc:
        raise origin_error(exc, f"cannot list {location}") from exc
    return found


def _list_presigned(s3: Any, location: S3Location) -> dict[str, RemoteObject]:
    import urllib.request  # noqa: PLC0415 (only when botocore lists: cdn/s3direct.py)

    prefix = f"{location.prefix}/" if location.prefix else ""
    found: dict[str, RemoteObject] = {}
    token: str | None = None
    while True:
        params: dict[str, str] = {"Bucket": location.bucket, "Prefix": prefix}
        if token:
            params["ContinuationToken"] = token
        url = s3.generate_presigned_url("list_objects_v2", Params=params, ExpiresIn=300)
        with urllib.request.urlopen(url, timeout=30) as answer:
            objects, token = parse_list_page(answer.read())
        found.update((o.key, o) for o in objects)
        if token is None:
            return found


def parse_list_page(body: bytes) -> tuple[list[RemoteObject], str | None]:
    """A ListObjectsV2 answer read with ElementTree (botocore's parser costs about 0.5 ms per
    key): the objects, and the continuation token when the listing is truncated. Keys are
    URL-decoded when the answer says EncodingType=url, as botocore does. An answer that is
    not XML raises ValueError, as one without the fields does."""
    import xml.etree.ElementTree as ET  # noqa: PLC0415 (loaded while the origin answers)

    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ValueError(f"listing is not XML: {exc}") from None
    ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    key_tag, size_tag, etag_tag = f"{ns}Key", f"{ns}Size", f"{ns}ETag"
    decode = root.findtext(f"{ns}EncodingType") == "url"
    objects: list[RemoteObject] = []
    # Each entry's children read in one pass (findtext per field costs twice as much: a
    # no-op push parses its two pages after the origin's last answer).
    for item in root.iterfind(f"{ns}Contents"):
        fields = {child.tag: child.text for child in item}
        key, size, etag = fields.get(key_tag), fields.get(size_tag), fields.get(etag_tag)
        if key is None or size is None or etag is None:
            raise ValueError("listing entry without Key, Size or ETag")
        objects.append(RemoteObject(unquote_plus(key) if decode else key, int(size),
                                    etag.strip('"')))
    token = root.findtext(f"{ns}NextContinuationToken")
    truncated = root.findtext(f"{ns}IsTruncated") == "true"
    if truncated and not token:
        raise ValueError("a truncated listing without a continuation token")
    return objects, token if truncated else None


def object_args(content_type: str, cache_control: str, sha256: str, size: int,
                transfer: Transfer) -> dict[str, Any]:
    """PutObject arguments: the headers viewers get, and the sha256 S3 checks on receipt.

    A single PUT carries the sha256 we already computed, so botocore does not read and hash
    the body again (the algorithm goes along, as when botocore computes it: some S3-compatible
    servers, moto among them, keep a checksum only when it is named); a multipart upload asks
    for per-part sha256s, which S3 combines."""
    args: dict[str, Any] = {"ContentType": content_type, "CacheControl": cache_control,
                            "ChecksumAlgorithm": "SHA256", "Metadata": {"sha256": sha256}}
    if size < transfer.multipart_threshold:
        args["ChecksumSHA256"] = base64.b64encode(bytes.fromhex(sha256)).decode()
    return args


@dataclass(frozen=True)
class Upload:
    path: Path
    key: str
    size: int
    extra_args: dict[str, Any]


def upload_all(
    s3: Any,
    bucket: str,
    uploads: Iterable[Upload],
    conn: Connection,
    transfer: Transfer,
    on_bytes: Callable[[int], None] | None = None,
    on_done: Callable[[Upload], None] | None = None,
) -> dict[str, str]:
    """Upload concurrently through s3transfer; return key → ETag as S3 answered each upload.

    Returns only when every object is stored. The caller runs one call per phase, so nothing
    of a later phase starts before an earlier phase is complete: that is what keeps manifests
    from pointing at missing objects. The ETags (MD5 of what S3 received, per PutObject or
    CompleteMultipartUpload answer) let the caller verify without listing the bucket again.
    """
    from boto3.s3.transfer import TransferConfig, create_transfer_manager  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    config = TransferConfig(
        multipart_threshold=transfer.multipart_threshold,
        multipart_chunksize=transfer.multipart_chunksize,
        max_concurrency=conn.concurrency,
        use_threads=True,
    )
    stored: dict[str, str] = {}
    events = s3.meta.events
    handlers = [
        ("before-sign.s3.PutObject", _drop_expect_for_small_bodies),
        ("before-sign.s3.UploadPart", _drop_expect_for_small_bodies),
        ("before-parameter-build.s3.PutObject", _remember_key),
        ("before-parameter-build.s3.CompleteMultipartUpload", _remember_key),
        ("after-call.s3.PutObject", lambda **kw: _record_etag(stored, **kw)),
        ("after-call.s3.CompleteMultipartUpload", lambda **kw: _record_etag(stored, **kw)),
    ]
    for event, handler in handlers:
        events.register(event, handler, unique_id=f"cdnpack-{event}")
    pending: list[tuple[Upload, Future[Any]]] = []
    try:
        # The manager's __exit__ cancels what is in flight when anything (a failed upload,
        # Ctrl-C) leaves this block; its shutdown(cancel=True) would not: s3transfer passes
        # that call's arguments on in the wrong order (a TypeError instead of a cancel).
        with create_transfer_manager(s3, config) as manager:
            for item in uploads:
                subscribers = [_Progress(item, on_bytes, on_done)]
                future = manager.upload(
                    str(item.path), bucket, item.key, extra_args=item.extra_args,
                    subscribers=subscribers,
                )
                pending.append((item, future))
            for item, future in pending:
                try:
                    future.result()
                except (ClientError, BotoCoreError, OSError) as exc:
                    raise origin_error(exc, f"upload of {item.key} failed") from exc
    finally:
        for event, _ in handlers:
            events.unregister(event, unique_id=f"cdnpack-{event}")
    return stored


#: Below this size a body goes without "Expect: 100-continue" (the AWS SDK for Go v2 uses 2 MB):
#: botocore asks for it on every file body, and waiting for the interim answer costs a round
#: trip per segment, where a refused small body costs almost nothing to have sent.
EXPECT_CONTINUE_FROM = 2 * 1024 * 1024


def _drop_expect_for_small_bodies(request: Any, **kwargs: Any) -> None:
    from botocore.utils import determine_content_length  # noqa: PLC0415

    length = determine_content_length(request.body)
    if length is not None and length < EXPECT_CONTINUE_FROM:
        del request.headers["Expect"]  # an email.message.Message: deletes any, raises not


def _remember_key(params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
    context["cdnpack_key"] = params.get("Key")


def _record_etag(
    stored: dict[str, str], parsed: dict[str, Any], context: dict[str, Any], **kwargs: Any
) -> None:
    key, etag = context.get("cdnpack_key"), parsed.get("ETag")
    if key and etag and "Error" not in parsed:
        stored[key] = str(etag).strip('"')


class _Progress:
    """An s3transfer subscriber: it calls the on_* methods a subscriber has."""

    def __init__(
        self,
        item: Upload,
        on_bytes: Callable[[int], None] | None,
        on_done: Callable[[Upload], None] | None,
    ) -> None:
        self._item, self._on_bytes, self._on_done = item, on_bytes, on_done

    def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
        if self._on_bytes is not None:
            self._on_bytes(bytes_transferred)

    def on_done(self, future: Any, **kwargs: Any) -> None:
        """Counts a completed upload; a failed one is upload_all's to report (a TransferFuture
        tells its outcome only through result())."""
        if self._on_done is None:
            return
        try:
            future.result()
        except Exception:  # reported by upload_all, with the key
            return
        self._on_done(self._item)


def delete_keys(s3: Any, bucket: str, keys: list[str]) -> None:
    """DeleteObjects in batches of 1000 (the API's limit)."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    for start in range(0, len(keys), 1000):
        batch = [{"Key": k} for k in keys[start : start + 1000]]
        try:
            result = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        except (ClientError, BotoCoreError) as exc:
            raise origin_error(exc, "delete failed") from exc
        if result.get("Errors"):
            first = result["Errors"][0]
            raise OriginError(f"delete of {first['Key']} failed: {first.get('Message', '')}")


def origin_error(exc: Exception, context: str) -> CdnpackError:
    """One line saying what the origin answered, as a user needs it."""
    from botocore.exceptions import ClientError, NoCredentialsError  # noqa: PLC0415

    if isinstance(exc, NoCredentialsError):
        return OriginError(f"{context}: no AWS credentials (set a profile or AWS_* variables)")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return answered_error(error.get("Code", ""), error.get("Message", ""), context)
    return OriginError(f"{context}: {exc}")


def answered_error(code: str, message: str, context: str) -> CdnpackError:
    """An S3 error answer (its code, or the HTTP status where it has none) in one line."""
    if code in ("NoSuchBucket", "404"):
        return InputError(f"{context}: no such bucket")
    if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return OriginError(f"{context}: access denied ({code})")
    return OriginError(f"{context}: {code} {message}".strip())
