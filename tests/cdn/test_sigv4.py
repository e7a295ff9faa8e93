"""Our SigV4 signature and botocore-free listing, held to AWS's example, botocore and moto."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from cdn import s3direct
from cdn.s3 import Connection, S3Location, parse_s3_url
from cdn.s3direct import (
    ListingRefused,
    direct_listing,
    list_direct,
    page_url,
    try_list_direct,
)
from cdn.sigv4 import Credentials, sign_s3
from testbed.origin import local_connection
from tests.moto import MotoServer, moto_server

EXAMPLE = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
MAY_24_2013 = datetime(2013, 5, 24, tzinfo=UTC)
BUCKET = "media-origin"


def test_signature_equals_the_published_s3_examples() -> None:
    """S3 API Reference, "Signature Calculations for the Authorization Header: Transferring
    Payload in a Single Chunk": Example GET Object and Example List Objects."""
    get = sign_s3("GET", "https://examplebucket.s3.amazonaws.com/test.txt", EXAMPLE,
                  "us-east-1", MAY_24_2013, headers={"Range": "bytes=0-9"})
    assert get["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )
    listing = sign_s3("GET", "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
                      EXAMPLE, "us-east-1", MAY_24_2013)
    assert listing["Authorization"].endswith(
        "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////token+/="])
@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("http://127.0.0.1:5000/media-origin?list-type=2&prefix=releases%2Fdemo%2F", "us-east-1"),
        ("https://media-origin.s3.eu-west-1.amazonaws.com/?list-type=2&encoding-type=url"
         "&prefix=a%20b%2B%7E%2F&continuation-token=1%2Fx%3D%3D", "eu-west-1"),
        ("https://minio.example.com:9000/base/media-origin?prefix=x&prefix=a&max-keys=5",
         "ap-southeast-2"),
    ],
)
def test_authorization_equals_botocores_s3_sigv4_at_a_fixed_time(
    url: str, region: str, token: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(botocore.auth, "get_current_datetime",
                        lambda: datetime(2026, 11, 23, 15, 4, 5))
    request = AWSRequest(method="GET", url=url)
    botocore.auth.S3SigV4Auth(BotoCredentials("AKIDEXAMPLE", "s3cr3t/+key", token), "s3",
                              region).add_auth(request)
    ours = sign_s3("GET", url, Credentials("AKIDEXAMPLE", "s3cr3t/+key", token), region,
                   datetime(2026, 11, 23, 15, 4, 5, tzinfo=UTC))
    assert ours["Authorization"] == request.headers["Authorization"]
    assert {k.lower(): v for k, v in ours.items()} == {
        k.lower(): v for k, v in request.headers.items()}


class _Sent(Exception):
    """Raised from botocore's before-send hook: the request as botocore would send it."""


def botocore_request(conn: Connection, location: S3Location, token: str | None) -> Any:
    """The ListObjectsV2 request botocore prepares for this connection (never sent)."""
    key, secret = conn.credentials or ("AKIDEXAMPLE", "s3cr3t")
    session = boto3.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                            aws_session_token=token, region_name=conn.region)
    s3 = session.client("s3", endpoint_url=conn.endpoint_url)

    def stop(request: Any, **kwargs: Any) -> None:
        raise _Sent(request)

    s3.meta.events.register("before-send.s3.ListObjectsV2", stop)
    with pytest.raises(_Sent) as sent:
        s3.list_objects_v2(Bucket=location.bucket, Prefix=f"{location.prefix}/",
                           ContinuationToken="1/x==")
    return sent.value.args[0]


@pytest.mark.parametrize(
    ("endpoint", "region", "bucket"),
    [
        (None, "us-east-1", "media-origin"),
        (None, "eu-west-1", "media-origin"),
        (None, "ap-southeast-2", "media-origin"),
        ("http://127.0.0.1:5000", "us-east-1", "media-origin"),
        ("http://localhost:9000", "eu-west-1", "media.origin"),
        ("https://minio.example.com:9000/base/", "eu-central-1", "media-origin"),
    ],
)
def test_direct_request_is_addressed_and_signed_as_botocore_would(
    endpoint: str | None, region: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same URL (scheme, host, path, query pairs) and same Authorization as botocore's own
    ListObjectsV2 request, signed at botocore's timestamp."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    token = "session-token"
    conn = Connection(endpoint_url=endpoint, region=region,
                      credentials=("AKIDEXAMPLE", "s3cr3t"))
    location = S3Location(bucket, "releases/demo")
    theirs = botocore_request(conn, location, token)
    listing = direct_listing(conn, location)
    assert listing is not None
    ours, sent = urlsplit(page_url(listing, location, "1/x==")), urlsplit(theirs.url)
    assert (ours.scheme, ours.netloc, ours.path) == (sent.scheme, sent.netloc, sent.path)
    assert sorted(parse_qsl(ours.query)) == sorted(parse_qsl(sent.query))
    amz_date = theirs.headers["X-Amz-Date"].decode()
    now = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    # botocore signs the query in the order it sends it; ours is sent sorted
    signed = sign_s3("GET", theirs.url, Credentials("AKIDEXAMPLE", "s3cr3t", token), region, now)
    assert signed["Authorization"] == theirs.headers["Authorization"].decode()


def write_ini(path: Path, sections: dict[str, dict[str, str]]) -> Path:
    path.write_text("".join(
        f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())
        for name, values in sections.items()))
    return path


@pytest.fixture
def aws_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """An empty AWS environment with its own config and credentials files."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    config, creds = tmp_path / "config", tmp_path / "credentials"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    write_ini(config, {
        "default": {"region": "eu-west-1"},
        "profile static": {"region": "us-west-2", "output": "json"},
        "profile inline": {"aws_access_key_id": "AKIDINLINE", "aws_secret_access_key": "in",
                           "region": "sa-east-1"},
        "profile role": {"role_arn": "arn:aws:iam::123456789012:role/r",
                         "source_profile": "static"},
        "profile sso": {"sso_session": "corp", "sso_account_id": "123456789012",
                        "sso_role_name": "ro", "region": "us-east-1"},
        "profile fips": {"region": "us-east-1", "use_fips_endpoint": "true"},
        "profile partial": {"region": "us-east-1"},
        "sso-session corp": {"sso_start_url": "https://corp.awsapps.com/start",
                             "sso_region": "us-east-1"},
    })
    write_ini(creds, {
        "default": {"aws_access_key_id": "AKIDDEFAULT", "aws_secret_access_key": "d"},
        "static": {"aws_access_key_id": "AKIDSTATIC", "aws_secret_access_key": "s",
                   "aws_session_token": "tok"},
        "fips": {"aws_access_key_id": "AKIDFIPS", "aws_secret_access_key": "f"},
        "partial": {"aws_access_key_id": "AKIDPARTIAL"},
    })
    return config, creds


ENV_KEYS = {"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "e"}


@pytest.mark.parametrize(
    ("profile", "env", "direct"),
    [
        (None, {}, True),                              # [default] in both files
        (None, ENV_KEYS, True),                        # environment before the files
        ("static", ENV_KEYS, True),                    # a named profile skips the environment
        (None, {"AWS_PROFILE": "static", **ENV_KEYS}, True),  # ... unless named by variable
        (None, {"AWS_PROFILE": "static"}, True),
        ("inline", {}, True),                          # keys in the config file
        (None, {"AWS_DEFAULT_REGION": "ca-central-1"}, True),
        ("role", {}, False),                           # assume-role: botocore's
        ("sso", {}, False),
        ("fips", {}, False),                           # FIPS endpoints: botocore's
        ("partial", {}, False),                        # botocore reports partial keys
        ("missing", {}, False),                        # botocore reports the missing profile
        (None, {"AWS_PROFILE": "missing", **ENV_KEYS}, False),  # ... however it is named
        (None, {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1", **ENV_KEYS}, False),
        (None, {"AWS_WEB_IDENTITY_TOKEN_FILE": "/t", "AWS_ROLE_ARN": "arn:x", **ENV_KEYS},
         False),
        (None, {"HTTPS_PROXY": "http://proxy:3128", **ENV_KEYS}, False),
    ],
)
def test_credentials_and_region_are_botocores_or_left_to_it(
    aws_files: tuple[Path, Path], profile: str | None, env: dict[str, str], direct: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    conn = Connection(profile=profile)
    listing = direct_listing(conn, S3Location(BUCKET, "x"))
    assert (listing is not None) == direct
    if listing is None:
        return
    session = boto3.Session(profile_name=profile)
    frozen = session.get_credentials().get_frozen_credentials()
    assert (listing.credentials.access_key, listing.credentials.secret_key,
            listing.credentials.token) == (frozen.access_key, frozen.secret_key, frozen.token)
    assert listing.region == session.region_name


@pytest.mark.slow
def test_direct_listing_follows_pages_and_decodes_keys(moto_s3: MotoServer) -> None:
    s3 = moto_s3.client()
    s3.create_bucket(Bucket=BUCKET)
    keys = sorted([f"releases/demo/k{i:04d}.m4s" for i in range(1003)]
                  + ["releases/demo/a b+c~(1).m4s", "releases/demo/ü/seg.m4s"])
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
    s3.put_object(Bucket=BUCKET, Key="releases/demo-other/x.m4s", Body=b"not under the prefix")
    answer = try_list_direct(local_connection(moto_s3.url),
                             parse_s3_url(f"s3://{BUCKET}/releases/demo"))
    assert answer is not None
    found = answer[1]
    assert sorted(found) == keys
    assert found["releases/demo/a b+c~(1).m4s"].size == len(b"releases/demo/a b+c~(1).m4s")


@pytest.mark.slow
def test_a_listing_in_ranges_finds_every_key_once_whatever_the_release_expects(
        moto_s3: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The release's keys cut the listing into ranges listed side by side; the bucket holds
    keys the release does not expect (stale ones, a non-ASCII one sorting after them all),
    and lacks most of what it expects: every range still ends where the next begins."""
    s3 = moto_s3.client()
    s3.create_bucket(Bucket=BUCKET)
    keys = sorted([f"releases/demo/k{i:04d}.m4s" for i in range(1005)]
                  + ["releases/demo/a.m3u8", "releases/demo/ü/seg.m4s"])
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    location = parse_s3_url(f"s3://{BUCKET}/releases/demo")
    listing = direct_listing(local_connection(moto_s3.url), location)
    assert listing is not None
    expected = [f"releases/demo/k{i:04d}.m4s" for i in range(0, 2002, 2)]  # half not there
    for page_keys, ranges in ((1000, 2), (100, 8), (2000, 1)):
        monkeypatch.setattr(s3direct, "PAGE_KEYS", page_keys)
        assert len(s3direct.split_points(expected)) + 1 == ranges
        found = list_direct(listing, location, expected)
        assert sorted(found) == keys, page_keys


@pytest.fixture(scope="module")
def signing_moto() -> Iterator[MotoServer]:
    """A moto_server that checks signatures once its first five requests are done."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "5")
        with moto_server() as server:
            yield server


def test_moto_checking_signatures_accepts_ours_and_refuses_a_wrong_secret(
    signing_moto: MotoServer,
) -> None:
    iam = signing_moto.client("iam")
    iam.create_user(UserName="pusher")
    key = iam.create_access_key(UserName="pusher")["AccessKey"]
    iam.put_user_policy(UserName="pusher", PolicyName="s3", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    s3 = signing_moto.client()
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="releases/demo/seg_00001.m4s", Body=b"segment")
    location = parse_s3_url(f"s3://{BUCKET}/releases/demo")
    good = Connection(endpoint_url=signing_moto.url, region="us-east-1",
                      credentials=(key["AccessKeyId"], key["SecretAccessKey"]))
    listing = direct_listing(good, location)
    assert listing is not None
    assert list(list_direct(listing, location)) == ["releases/demo/seg_00001.m4s"]
    wrong = direct_listing(
        Connection(endpoint_url=signing_moto.url, region="us-east-1",
                   credentials=(key["AccessKeyId"], key["SecretAccessKey"] + "x")), location)
    assert wrong is not None
    with pytest.raises(ListingRefused, match="403"):
        list_direct(wrong, location)
