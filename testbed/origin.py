"""A local S3/CloudFront endpoint for the demo and the tests: moto_server on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cdn.s3 import Connection
from packager.errors import EndpointError, ToolError
from packager.tools import spawn
from testbed.moto_server import EXIT_WITH_STDIN

#: Credentials moto accepts; exported so boto3 in child processes (the CLI) finds them too.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def local_connection(url: str) -> Connection:
    """How to reach the local endpoint: its URL and the credentials it accepts."""
    return Connection(endpoint_url=url, region=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
                      credentials=(FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                   FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def moto_command() -> list[str]:
    """moto_server as installed in THIS environment (the [demo] extra): never one that happens
    to be on PATH from another environment, whose version nobody chose."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        raise ToolError("the demo's local S3 origin (moto_server) is not installed: "
                        "pip install 'cdnpack[demo]'")
    return [sys.executable, "-m", "testbed.moto_server"]


@dataclass(frozen=True)
class LocalOrigin:
    """A running moto_server: its URL, clients for it, and a reset to an empty origin."""

    url: str  # http://127.0.0.1:PORT

    def client(self, service: str = "s3") -> Any:
        import boto3  # noqa: PLC0415 (the demo imports this module before it needs boto3)
        return boto3.client(service, endpoint_url=self.url,
                            region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
                            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    def reset(self) -> None:
        """Drop every bucket and distribution: a test or a benchmark run starts empty."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass


@contextmanager
def local_origin(start_timeout: float = 30.0) -> Iterator[LocalOrigin]:
    with moto_server(start_timeout) as url:
        yield LocalOrigin(url)


@contextmanager
def moto_server(start_timeout: float = 30.0) -> Iterator[str]:
    """Run moto_server on a free loopback port; yields its URL, stops it on the way out."""
    port = free_port()
    env = {**os.environ, **FAKE_CREDENTIALS}
    url = f"http://127.0.0.1:{port}"
    # Stopped by closing its stdin: it exits at once (a SIGTERM makes moto unwind and tear its
    # modules down, two seconds on a busy machine); spawn waits, then kills.
    with spawn([*moto_command(), "-H", "127.0.0.1", "-p", str(port), EXIT_WITH_STDIN],
               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
               env=env, timeout=10, terminate=False) as proc:
        assert proc.stdin is not None
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise EndpointError(f"moto_server did not start on {url}") from None
                    time.sleep(0.1)
            yield url
        finally:
            proc.stdin.close()


def origin_bucket(s3: Any, bucket: str) -> None:
    """Create a bucket the emulated edges can read without signing.

    In AWS a CloudFront origin access control signs its origin requests and the bucket policy
    grants the distribution s3:GetObject; the local edges do not sign, so the grant goes to
    everyone (moto answers 403 to an unsigned GET otherwise).
    """
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "EdgeRead", "Effect": "Allow", "Principal": "*",
                       "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}],
    }))


def create_distribution(cloudfront: Any, bucket: str) -> str:
    """A CloudFront distribution in front of the bucket (what `--distribution` names); it
    forwards CloudFront-Viewer-Country, which a rights function reads."""
    answer = cloudfront.create_distribution(DistributionConfig={
        "CallerReference": str(uuid.uuid4()),
        "Comment": "cdnpack",
        "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{
            "Id": "origin", "DomainName": f"{bucket}.s3.amazonaws.com",
            "S3OriginConfig": {"OriginAccessIdentity": ""},
        }]},
        "DefaultCacheBehavior": {
            "TargetOriginId": "origin",
            "ViewerProtocolPolicy": "redirect-to-https",
            "TrustedSigners": {"Enabled": False, "Quantity": 0},
            "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"},
                                "Headers": {"Quantity": 1,
                                            "Items": ["CloudFront-Viewer-Country"]}},
            "MinTTL": 0,
        },
    })
    distribution_id: str = answer["Distribution"]["Id"]
    return distribution_id
