"""AWS Signature Version 4A (ECDSA P-256 over SHA-256), which the CloudFront KeyValueStore API
accepts and nothing else: botocore signs it only through awscrt, a compiled dependency we do
not take; pycryptodome (already ours) has the curve.

SigV4A is SigV4 with three changes (the aws-c-auth reference and its test suite):
  * the credential scope has no region (`20150830/service/aws4_request`) and the regions the
    signature is valid in go in a signed `X-Amz-Region-Set` header (`*`: all);
  * the key is an ECDSA P-256 private key derived from the secret with the NIST SP 800-108
    counter-mode KDF over HMAC-SHA256 (label `AWS4-ECDSA-P256-SHA256`, context the access key
    id and a counter byte, retried while the candidate exceeds n - 2; the key is candidate + 1);
  * the string to sign starts `AWS4-ECDSA-P256-SHA256` and the signature is the DER-encoded
    ECDSA signature of its SHA-256, in hex.
`register()` makes botocore sign `sigv4a` operations with this class when awscrt is absent
(botocore's own CRT signer stays in charge where awscrt is installed).
"""

from __future__ import annotations

import hashlib
import hmac
from functools import cache
from typing import Any

from botocore.auth import AUTH_TYPE_MAPS, SigV4Auth
from Crypto.Hash import SHA256
from Crypto.PublicKey import ECC
from Crypto.Signature import DSS

ALGORITHM = "AWS4-ECDSA-P256-SHA256"
#: The order of the P-256 group (FIPS 186-4 D.1.2.3).
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@cache
def private_key(access_key: str, secret_key: str) -> ECC.EccKey:
    """The SigV4A signing key of a credential pair (module docstring)."""
    secret = ("AWS4A" + secret_key).encode()
    for counter in range(1, 255):
        fixed = (b"\x00\x00\x00\x01" + ALGORITHM.encode() + b"\x00" + access_key.encode()
                 + bytes([counter]) + b"\x00\x00\x01\x00")
        candidate = int.from_bytes(hmac.new(secret, fixed, hashlib.sha256).digest(), "big")
        if candidate <= P256_N - 2:
            return ECC.construct(curve="P-256", d=candidate + 1)
    raise ValueError("no SigV4A key could be derived")  # 2^-32 per try: never in practice


class SigV4AAuth(SigV4Auth):  # type: ignore[misc]  # botocore is untyped
    """botocore's SigV4 signer with SigV4A's scope, header, string to sign and signature.

    `region_name` is the region set (`*`), as botocore passes it for sigv4a endpoints."""

    def _modify_request_before_signing(self, request: Any) -> None:
        super()._modify_request_before_signing(request)
        if "X-Amz-Region-Set" in request.headers:
            del request.headers["X-Amz-Region-Set"]
        request.headers["X-Amz-Region-Set"] = self._region_name or "*"

    def credential_scope(self, request: Any) -> str:
        return f"{request.context['timestamp'][:8]}/{self._service_name}/aws4_request"

    def scope(self, request: Any) -> str:
        """The Authorization header's Credential (SigV4's names the region too)."""
        return f"{self.credentials.access_key}/{self.credential_scope(request)}"

    def string_to_sign(self, request: Any, canonical_request: str) -> str:
        return "\n".join([ALGORITHM, request.context["timestamp"],
                          self.credential_scope(request),
                          hashlib.sha256(canonical_request.encode()).hexdigest()])

    def signature(self, string_to_sign: str, request: Any) -> str:
        key = private_key(self.credentials.access_key, self.credentials.secret_key)
        signer = DSS.new(key, "fips-186-3", encoding="der")
        return str(signer.sign(SHA256.new(string_to_sign.encode())).hex())

    def _inject_signature_to_request(self, request: Any, signature: str) -> None:
        signed = self.signed_headers(self.headers_to_sign(request))
        request.headers["Authorization"] = (
            f"{ALGORITHM} Credential={self.scope(request)}, SignedHeaders={signed}, "
            f"Signature={signature}")


def verify(access_key: str, secret_key: str, string_to_sign: str, signature: str) -> bool:
    """Whether `signature` (hex DER) signs `string_to_sign` with the pair's SigV4A key."""
    public = private_key(access_key, secret_key).public_key()
    try:
        DSS.new(public, "fips-186-3", encoding="der").verify(
            SHA256.new(string_to_sign.encode()), bytes.fromhex(signature))
    except ValueError:
        return False
    return True


def register() -> None:
    """Let botocore sign sigv4a requests without awscrt (idempotent; CRT's signer wins)."""
    AUTH_TYPE_MAPS.setdefault("v4a", SigV4AAuth)
