"""Probe results in S3: each run appended as its own object under a shared s3://BUCKET/PREFIX.

S3 objects cannot be appended to, and runners in many regions report concurrently, so "append"
means one new object per run (`PREFIX/REGION/STARTED-RUNID.jsonl`): no read-modify-write, no
lost update. The URL parser and the client (retries, profile, endpoint) are cdn/s3.py's.
"""

from __future__ import annotations

from collections.abc import Iterator

from botocore.exceptions import BotoCoreError, ClientError

from cdn.s3 import Connection, S3Location, client, parse_s3_url
from packager.errors import EndpointError, InputError


def results_connection(endpoint_url: str | None = None) -> Connection:
    """How probe results are stored and read: cdn/s3.py's client (profile, region and endpoint
    from the usual AWS chain), with botocore's standard retries but three attempts, not a
    push's ten: a run is one small object, and a results store that is down must not hold a
    scheduled probe or a CI gate for half a minute before it says so."""
    return Connection(endpoint_url=endpoint_url, retry_mode="standard", max_attempts=3)


def run_key(region: str, started_at: str, run_id: str) -> str:
    """Where a run goes under the prefix: by region, then by start time (sortable, no colons:
    some S3-compatible stores and every Windows checkout of a synced bucket refuse them)."""
    return f"{region}/{started_at.replace(':', '')}-{run_id}.jsonl"


def append_run(url: str, key_name: str, body: bytes, conn: Connection) -> str:
    """Store one run's JSONL as a new object; returns its s3:// URL."""
    location = parse_s3_url(url)
    key = location.key(key_name)
    try:
        client(conn).put_object(
            Bucket=location.bucket, Key=key, Body=body, ContentType="application/x-ndjson",
        )
    except ClientError as exc:
        what = f"cannot store results at s3://{location.bucket}/{key}"
        raise _error(exc, url, location, what) from exc
    except BotoCoreError as exc:
        raise EndpointError(f"cannot store results at s3://{location.bucket}/{key}: {exc}") from exc
    return f"s3://{location.bucket}/{key}"


def read_prefix(url: str, conn: Connection) -> Iterator[tuple[str, bytes]]:
    """Every *.jsonl object under the prefix, as (s3 URL, bytes), in key order."""
    location = parse_s3_url(url)
    prefix = location.key("") if location.prefix else ""
    s3 = client(conn)
    try:
        keys: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket,
                                                                  Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".jsonl")]
        for key in sorted(keys):
            body = s3.get_object(Bucket=location.bucket, Key=key)["Body"].read()
            yield f"s3://{location.bucket}/{key}", body
    except ClientError as exc:
        raise _error(exc, url, location, f"cannot read results from {url}") from exc
    except BotoCoreError as exc:
        raise EndpointError(f"cannot read results from {url}: {exc}") from exc


def _error(exc: ClientError, url: str, location: S3Location, what: str) -> Exception:
    if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
        return InputError(f"{url}: no such bucket {location.bucket!r}")
    return EndpointError(f"{what}: {exc}")
