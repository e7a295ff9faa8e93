"""SigV4A (cdn/sigv4a.py) against the AWS Signature Version 4A test suite (aws-c-auth,
get-vanilla): the key derived from the suite's credentials is the suite's public key, the
canonical request and string to sign are the suite's, and the signature verifies with it."""

from __future__ import annotations

import hashlib

from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cdn.sigv4a import SigV4AAuth, private_key, verify

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#: The suite's public key for these credentials (public-key.json).
PUBLIC_X = 0xB6618F6A65740A99E650B33B6B4B5BD0D43B176D721A3EDFEA7E7D2D56D936B1
PUBLIC_Y = 0x865ED22A7EADC9C5CB9D2CBACA1B3699139FEDC5043DC6661864218330C8E518
CANONICAL = ("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n"
             "x-amz-region-set:us-east-1\n\nhost;x-amz-date;x-amz-region-set\n"
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


def test_the_derived_key_is_the_suites() -> None:
    point = private_key(KEY_ID, SECRET).public_key().pointQ
    assert (int(point.x), int(point.y)) == (PUBLIC_X, PUBLIC_Y)


def test_get_vanilla_signs_and_verifies() -> None:
    auth = SigV4AAuth(Credentials(KEY_ID, SECRET), "service", "us-east-1")
    request = AWSRequest(method="GET", url="https://example.amazonaws.com/",
                         headers={"Host": "example.amazonaws.com"})
    request.context["timestamp"] = "20150830T123600Z"
    auth._modify_request_before_signing(request)
    canonical = auth.canonical_request(request)
    assert canonical == CANONICAL
    string_to_sign = auth.string_to_sign(request, canonical)
    assert string_to_sign == ("AWS4-ECDSA-P256-SHA256\n20150830T123600Z\n"
                              "20150830/service/aws4_request\n"
                              + hashlib.sha256(CANONICAL.encode()).hexdigest())
    assert string_to_sign.endswith(
        "cf59db423e841c8b7e3444158185aa261b724a5c27cbe762676f3eed19f4dc02")
    signature = auth.signature(string_to_sign, request)
    assert verify(KEY_ID, SECRET, string_to_sign, signature)
    assert not verify(KEY_ID, SECRET, string_to_sign.replace("T123600Z", "T123601Z"), signature)
    assert not verify("AKIDOTHER", SECRET, string_to_sign, signature)
    auth._inject_signature_to_request(request, signature)
    assert request.headers["Authorization"] == (
        f"AWS4-ECDSA-P256-SHA256 Credential={KEY_ID}/20150830/service/aws4_request, "
        f"SignedHeaders=host;x-amz-date;x-amz-region-set, Signature={signature}")
