"""CloudFront signed URLs and cookies: canned and custom policies, RSA-2048 or ECDSA P-256 keys.

botocore's CloudFrontSigner covers only RSA with SHA-1 URLs; HLS and DASH need cookies (the
playlists name segments by relative URL) and modern keys want SHA-256 (Hash-Algorithm=SHA256).
Reference: CloudFront Developer Guide, "Create a signed URL using a canned/custom policy" and
"Set signed cookies".
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from Crypto.Hash import SHA1, SHA256
from Crypto.PublicKey import ECC, RSA
from Crypto.Signature import DSS, pkcs1_15

from cdn.timeparse import parse_cidr, parse_time
from packager.errors import InputError
from packager.files import read_text

HASHES = {"sha1": SHA1, "sha256": SHA256}


@dataclass(frozen=True)
class Policy:
    resource: str  # the URL, or a pattern with * wildcards
    expires: int  # epoch seconds (DateLessThan)
    starts: int | None = None  # epoch seconds (DateGreaterThan)
    ip_range: str | None = None  # CIDR (IpAddress AWS:SourceIp)

    @property
    def canned(self) -> bool:
        """A canned policy has only an expiry and an exact resource; anything else is custom."""
        return self.starts is None and self.ip_range is None and "*" not in self.resource

    def statement(self) -> str:
        """The exact JSON CloudFront hashes: no whitespace, conditions in the documented form."""
        condition: dict[str, Any] = {"DateLessThan": {"AWS:EpochTime": self.expires}}
        if self.ip_range:
            condition["IpAddress"] = {"AWS:SourceIp": self.ip_range}
        if self.starts is not None:
            condition["DateGreaterThan"] = {"AWS:EpochTime": self.starts}
        doc = {"Statement": [{"Resource": self.resource, "Condition": condition}]}
        return json.dumps(doc, separators=(",", ":"))


def read_private_key(path: Path) -> RSA.RsaKey | ECC.EccKey:
    """The signing key from a PEM file, every problem one line naming the file."""
    text = read_text(path, "PEM private key")
    try:
        return load_private_key(text.encode())
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def load_private_key(pem: bytes) -> RSA.RsaKey | ECC.EccKey:
    """An RSA-2048 or ECDSA P-256 private key, the two kinds CloudFront key groups accept."""
    text = pem.decode("ascii", errors="replace")
    try:
        if "EC PRIVATE KEY" in text:
            key: RSA.RsaKey | ECC.EccKey = ECC.import_key(text)
        elif "RSA PRIVATE KEY" in text:
            key = RSA.import_key(text)
        else:  # PKCS#8 "PRIVATE KEY": try both
            try:
                key = RSA.import_key(text)
            except ValueError:
                key = ECC.import_key(text)
    except (ValueError, IndexError, TypeError) as exc:
        raise InputError("private key is not a PEM RSA or EC private key") from exc
    if not key.has_private():
        raise InputError("the PEM holds a public key; signing needs the private key")
    if isinstance(key, RSA.RsaKey) and key.size_in_bits() != 2048:
        raise InputError(f"CloudFront accepts RSA-2048 keys; this one is {key.size_in_bits()} bits")
    if isinstance(key, ECC.EccKey) and key.curve not in ("NIST P-256", "p256", "P-256"):
        raise InputError(f"CloudFront accepts ECDSA P-256 keys; this one is {key.curve}")
    return key


def sign(message: bytes, key: RSA.RsaKey | ECC.EccKey, hash_name: str) -> bytes:
    """RSASSA-PKCS1-v1_5, or ECDSA with a DER-encoded signature (ECDSA only with SHA-256:
    FIPS 186 pairs P-256 with a hash at least as strong, and SHA-1 is not)."""
    if isinstance(key, ECC.EccKey) and hash_name != "sha256":
        raise InputError("ECDSA P-256 keys sign with SHA-256: use --hash sha256")
    digest = HASHES[hash_name].new(message)
    if isinstance(key, RSA.RsaKey):
        return bytes(pkcs1_15.new(key).sign(digest))
    return bytes(DSS.new(key, "fips-186-3", encoding="der").sign(digest))


def cloudfront_b64(data: bytes) -> str:
    """Base64 with CloudFront's URL-safe substitutions: + to -, = to _, / to ~."""
    return base64.b64encode(data).decode().translate(str.maketrans("+=/", "-_~"))


def signed_url(
    url: str, key_pair_id: str, key: RSA.RsaKey | ECC.EccKey, policy: Policy, hash_name: str
) -> str:
    _check_url(url)
    statement = policy.statement().encode()
    signature = cloudfront_b64(sign(statement, key, hash_name))
    if policy.canned:
        params = [f"Expires={policy.expires}"]
    else:
        params = [f"Policy={cloudfront_b64(statement)}"]
    params += [f"Signature={signature}", f"Key-Pair-Id={key_pair_id}"]
    if hash_name == "sha256":
        params.append("Hash-Algorithm=SHA256")
    separator = "&" if urlsplit(url).query else "?"
    return url + separator + "&".join(params)


def signed_cookies(
    key_pair_id: str, key: RSA.RsaKey | ECC.EccKey, policy: Policy, hash_name: str
) -> dict[str, str]:
    """Cookie name → value. A player fetching playlists and relative segment URLs sends them
    all; a wildcard resource (https://d.example.net/release/*) covers the whole release."""
    statement = policy.statement().encode()
    cookies = {}
    if policy.canned:
        cookies["CloudFront-Expires"] = str(policy.expires)
    else:
        cookies["CloudFront-Policy"] = cloudfront_b64(statement)
    cookies["CloudFront-Signature"] = cloudfront_b64(sign(statement, key, hash_name))
    cookies["CloudFront-Key-Pair-Id"] = key_pair_id
    if hash_name == "sha256":
        cookies["CloudFront-Hash-Algorithm"] = "SHA256"
    return cookies


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"{url!r} is not an absolute http(s) URL")
    for reserved in ("Expires=", "Policy=", "Signature=", "Key-Pair-Id=", "Hash-Algorithm="):
        if reserved in parts.query:
            raise InputError(f"{url!r} already carries CloudFront signing parameters")


def policy_for(url: str, expires: str, starts: str | None = None, ip_range: str | None = None,
               resource: str | None = None, now: int | None = None) -> Policy:
    """The policy `cdnpack sign` asks for, from times and ranges as people type them."""
    moment = int(time.time()) if now is None else now
    return Policy(
        resource=resource or url,
        expires=parse_time(expires, moment),
        starts=parse_time(starts, moment) if starts else None,
        ip_range=parse_cidr(ip_range) if ip_range else None,
    )
