"""CloudFront signed URLs and cookies, verified with the public key (and against botocore)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.signers import CloudFrontSigner
from Crypto.Hash import SHA1, SHA256
from Crypto.PublicKey import ECC, RSA
from Crypto.Signature import DSS, pkcs1_15

from cdn.signing import Policy, load_private_key, signed_cookies, signed_url
from cdn.timeparse import parse_time
from packager.errors import InputError
from tests.conftest import cdnpack_cli

URL = "https://d111111abcdef8.cloudfront.net/releases/demo/master.m3u8"
EXPIRES = 1_893_456_000  # 2030-01-01


@pytest.fixture(scope="module")
def rsa_key() -> RSA.RsaKey:
    return RSA.generate(2048)


@pytest.fixture(scope="module")
def ec_key() -> ECC.EccKey:
    return ECC.generate(curve="P-256")


def unb64(value: str) -> bytes:
    return base64.b64decode(value.translate(str.maketrans("-_~", "+=/")))


def verify(key: RSA.RsaKey | ECC.EccKey, message: bytes, signature: bytes, hash_name: str) -> None:
    digest = (SHA256 if hash_name == "sha256" else SHA1).new(message)
    if isinstance(key, RSA.RsaKey):
        pkcs1_15.new(key.public_key()).verify(digest, signature)
    else:
        DSS.new(key.public_key(), "fips-186-3", encoding="der").verify(digest, signature)


def canned_statement(url: str, expires: int) -> bytes:
    condition = '{"DateLessThan":{"AWS:EpochTime":' + str(expires) + "}}"
    return ('{"Statement":[{"Resource":"' + url + '","Condition":' + condition + "}]}").encode()


@pytest.mark.parametrize("hash_name", ["sha1", "sha256"])
def test_canned_rsa_url_verifies_with_the_public_key(rsa_key: RSA.RsaKey, hash_name: str) -> None:
    signed = signed_url(URL, "K2JCJMDEHXQW5F", rsa_key, Policy(URL, EXPIRES), hash_name)
    query = parse_qs(urlsplit(signed).query)
    assert query["Expires"] == [str(EXPIRES)]
    assert query["Key-Pair-Id"] == ["K2JCJMDEHXQW5F"]
    assert ("Hash-Algorithm" in query) == (hash_name == "sha256")
    assert "Policy" not in query
    verify(rsa_key, canned_statement(URL, EXPIRES), unb64(query["Signature"][0]), hash_name)


def test_canned_rsa_sha1_url_equals_botocores(rsa_key: RSA.RsaKey) -> None:
    """Where botocore's CloudFrontSigner can do the job (RSA, SHA-1), we give the same URL."""

    def rsa_signer(message: bytes) -> bytes:
        return bytes(pkcs1_15.new(rsa_key).sign(SHA1.new(message)))

    theirs = CloudFrontSigner("K2JCJMDEHXQW5F", rsa_signer).generate_presigned_url(
        URL, date_less_than=datetime.fromtimestamp(EXPIRES, tz=UTC)
    )
    ours = signed_url(URL, "K2JCJMDEHXQW5F", rsa_key, Policy(URL, EXPIRES), "sha1")
    assert ours == theirs


def test_custom_policy_with_start_ip_and_wildcard(ec_key: ECC.EccKey) -> None:
    policy = Policy("https://d111111abcdef8.cloudfront.net/releases/demo/*", EXPIRES,
                    starts=1_700_000_000, ip_range="192.0.2.0/24")
    assert not policy.canned
    signed = signed_url(URL, "K2", ec_key, policy, "sha256")
    query = parse_qs(urlsplit(signed).query)
    statement = unb64(query["Policy"][0])
    doc = json.loads(statement)
    condition = doc["Statement"][0]["Condition"]
    assert doc["Statement"][0]["Resource"].endswith("/releases/demo/*")
    assert condition == {
        "DateLessThan": {"AWS:EpochTime": EXPIRES},
        "IpAddress": {"AWS:SourceIp": "192.0.2.0/24"},
        "DateGreaterThan": {"AWS:EpochTime": 1_700_000_000},
    }
    assert b" " not in statement
    assert query["Hash-Algorithm"] == ["SHA256"]
    verify(ec_key, statement, unb64(query["Signature"][0]), "sha256")


def test_a_tampered_policy_does_not_verify(rsa_key: RSA.RsaKey) -> None:
    signed = signed_url(URL, "K2", rsa_key, Policy(URL, EXPIRES), "sha256")
    signature = unb64(parse_qs(urlsplit(signed).query)["Signature"][0])
    with pytest.raises(ValueError, match="Invalid signature"):
        verify(rsa_key, canned_statement(URL, EXPIRES + 1), signature, "sha256")


def test_signed_cookies_cover_a_whole_release(rsa_key: RSA.RsaKey, ec_key: ECC.EccKey) -> None:
    policy = Policy("https://d111111abcdef8.cloudfront.net/releases/demo/*", EXPIRES)
    for key in (rsa_key, ec_key):
        cookies = signed_cookies("K2", key, policy, "sha256")
        assert set(cookies) == {"CloudFront-Policy", "CloudFront-Signature",
                                "CloudFront-Key-Pair-Id", "CloudFront-Hash-Algorithm"}
        statement = unb64(cookies["CloudFront-Policy"])
        verify(key, statement, unb64(cookies["CloudFront-Signature"]), "sha256")
    canned = signed_cookies("K2", rsa_key, Policy(URL, EXPIRES), "sha1")
    assert canned["CloudFront-Expires"] == str(EXPIRES)
    assert "CloudFront-Hash-Algorithm" not in canned
    verify(rsa_key, canned_statement(URL, EXPIRES), unb64(canned["CloudFront-Signature"]), "sha1")


def test_keys_cloudfront_does_not_accept_are_refused(ec_key: ECC.EccKey) -> None:
    with pytest.raises(InputError, match="RSA-2048 keys; this one is 1024 bits"):
        load_private_key(RSA.generate(1024).export_key())
    with pytest.raises(InputError, match="P-256"):
        load_private_key(ECC.generate(curve="P-384").export_key(format="PEM").encode())
    with pytest.raises(InputError, match="public key"):
        load_private_key(RSA.generate(2048).public_key().export_key())
    with pytest.raises(InputError, match="sign with SHA-256"):
        signed_url(URL, "K2", ec_key, Policy(URL, EXPIRES), "sha1")


def test_times_as_people_type_them() -> None:
    now = 1_800_000_000
    assert parse_time("+12h", now) == now + 12 * 3600
    assert parse_time("+90m", now) == now + 5400
    assert parse_time("1893456000", now) == 1_893_456_000
    assert parse_time("2030-01-01T00:00:00Z", now) == 1_893_456_000
    assert parse_time("2030-01-01T09:00:00+09:00", now) == 1_893_456_000
    with pytest.raises(InputError, match="not a time"):
        parse_time("tomorrow", now)


def test_sign_command_prints_a_verifiable_url_and_cookies(
    rsa_key: RSA.RsaKey, tmp_path: Path
) -> None:
    pem = tmp_path / "key.pem"
    pem.write_bytes(rsa_key.export_key())
    url = cdnpack_cli("sign", URL, "--key-pair-id", "K2", "--private-key", pem,
                      "--expires", str(EXPIRES), "--json")
    assert url.returncode == 0, url.stderr
    signed = json.loads(url.stdout)["url"]
    query = parse_qs(urlsplit(signed).query)
    verify(rsa_key, canned_statement(URL, EXPIRES), unb64(query["Signature"][0]), "sha256")
    cookies = cdnpack_cli("sign", URL, "--key-pair-id", "K2", "--private-key", pem,
                          "--expires", "+1h", "--resource", URL.rsplit("/", 1)[0] + "/*",
                          "--cookies")
    assert cookies.returncode == 0, cookies.stderr
    lines = cookies.stdout.strip().splitlines()
    assert [line.split("=")[0] for line in lines] == [
        "Set-Cookie: CloudFront-Policy", "Set-Cookie: CloudFront-Signature",
        "Set-Cookie: CloudFront-Key-Pair-Id", "Set-Cookie: CloudFront-Hash-Algorithm",
    ]


def test_sign_command_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    pem = tmp_path / "key.pem"
    pem.write_text("not a key")
    result = cdnpack_cli("sign", URL, "--key-pair-id", "K2", "--private-key", pem,
                         "--expires", "+1h")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"cdnpack: error: {pem}: private key is not a PEM RSA or EC private key")
    bad_time = cdnpack_cli("sign", URL, "--key-pair-id", "K2", "--private-key", pem,
                           "--expires", "soon")
    assert bad_time.returncode == 2
    assert "'soon' is not a time" in bad_time.stderr
