"""AWS Signature Version 4 for one request: canonical request, string to sign, HMAC chain.

Written out so that a no-op push can list its prefix without importing botocore (about half a
second of a no-op push's critical path, see bench/push.py). The algorithm is AWS's "Signature
Version 4 signing process" as the S3 API Reference ("Authenticating Requests: Using the
Authorization Header", single chunk) gives it, with S3's two differences from other services:
the path is not normalized, and `x-amz-content-sha256` is sent and signed. Tests hold it to
botocore's `S3SigV4Auth` and to AWS's published example.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
#: sha256 of an empty body: what a GET signs as its payload hash.
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None  # session token of temporary credentials

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(access_key={self.access_key!r}, secret_key=***)"


def query_string(params: Iterable[tuple[str, str]]) -> str:
    """A query string in canonical form: each name and value URI-encoded (RFC 3986 unreserved
    characters kept), pairs sorted. Sending the query in this form makes it its own canonical
    query string."""
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in pairs)


def host_header(url: str) -> str:
    """Host as HTTP clients send it: the port only when it is not the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        return f"{host}:{parts.port}"
    return host


def timestamp(now: datetime) -> str:
    """ISO 8601 basic format in UTC, as X-Amz-Date wants it (now must be in UTC)."""
    return now.strftime("%Y%m%dT%H%M%SZ")


def sign_s3(
    method: str,
    url: str,
    credentials: Credentials,
    region: str,
    now: datetime,
    headers: Mapping[str, str] | None = None,
    payload_sha256: str = EMPTY_SHA256,
    service: str = "s3",
) -> dict[str, str]:
    """The headers that authenticate `method url` (plus any `headers`, all signed).

    `url` must carry its path and query already URI-encoded (see query_string): S3 signs the
    path as sent and the query pairs in sorted order. Returns `headers` with X-Amz-Date,
    X-Amz-Content-SHA256, X-Amz-Security-Token (temporary credentials) and Authorization.
    """
    amz_date = timestamp(now)
    out = dict(headers or {})
    out["X-Amz-Date"] = amz_date
    out["X-Amz-Content-SHA256"] = payload_sha256
    if credentials.token:
        out["X-Amz-Security-Token"] = credentials.token
    signed = {k.lower(): " ".join(v.split()) for k, v in out.items()}
    signed.setdefault("host", host_header(url))
    names = sorted(signed)
    parts = urlsplit(url)
    query = parts.query.split("&") if parts.query else []
    pairs = sorted(pair.partition("=")[::2] for pair in query)  # by name, then by value
    canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
    canonical_request = "\n".join([
        method.upper(),
        parts.path or "/",
        canonical_query,
        "".join(f"{name}:{signed[name]}\n" for name in names),
        ";".join(names),
        payload_sha256,
    ])
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join([
        ALGORITHM, amz_date, scope,
        hashlib.sha256(canonical_request.encode()).hexdigest(),
    ])
    key = f"AWS4{credentials.secret_key}".encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return out
