"""Probe results in S3: each run appended as its own object under a shared s3://BUCKET/PREFIX.

S3 objects cannot be appended to, and runners in many regions report concurrently, so "append"
means one new object per run (`PREFIX/REGION/STARTED-RUNID.jsonl`): no read-modify-write, no
lost update.  Credentials come from the usual AWS environment; `endpoint_url` reaches S3-compatible
stores (MinIO, moto).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from packager.errors import EndpointError, InputError


def split_s3_url(url: str) -> tuple[str, str]:
    """s3://bucket/some/prefix -> ("bucket", "some/prefix/")."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise InputError(f"{url}: expected s3://BUCKET/PREFIX")
    prefix = parts.path.lstrip("/")
    return parts.netloc, prefix if not prefix or prefix.endswith("/") else prefix + "/"


def _client(endpoint_url: str | None) -> Any:
    return boto3.client("s3", endpoint_url=endpoint_url)


def append_run(url: str, key_name: str, body: bytes, endpoint_url: str | None = None) -> str:
    """Store one run's JSONL as a new object; returns its s3:// URL."""
    bucket, prefix = split_s3_url(url)
    key = prefix + key_name
    try:
        _client(endpoint_url).put_object(
            Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            raise InputError(f"{url}: no such bucket {bucket!r}") from exc
        raise EndpointError(f"cannot store results at s3://{bucket}/{key}: {exc}") from exc
    except BotoCoreError as exc:
        raise EndpointError(f"cannot store results at s3://{bucket}/{key}: {exc}") from exc
    return f"s3://{bucket}/{key}"


def read_prefix(url: str, endpoint_url: str | None = None) -> Iterator[tuple[str, str]]:
    """Every *.jsonl object under the prefix, as (s3 URL, text), in key order."""
    bucket, prefix = split_s3_url(url)
    client = _client(endpoint_url)
    try:
        keys: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                      Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".jsonl")]
        for key in sorted(keys):
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            yield f"s3://{bucket}/{key}", body.decode("utf-8")
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            raise InputError(f"{url}: {code}") from exc
        raise EndpointError(f"cannot read results from {url}: {exc}") from exc
    except BotoCoreError as exc:
        raise EndpointError(f"cannot read results from {url}: {exc}") from exc
