"""A real local S3/CloudFront endpoint: moto_server as a subprocess on 127.0.0.1, random port."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3

from testbed.origin import FAKE_CREDENTIALS
from testbed.origin import moto_server as local_moto_server

__all__ = ["FAKE_CREDENTIALS", "MotoServer", "moto_server"]


@dataclass(frozen=True)
class MotoServer:
    url: str  # http://127.0.0.1:PORT

    def client(self, service: str = "s3") -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def reset(self) -> None:
        """Drop every bucket and distribution: tests start from an empty origin."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass


@contextmanager
def moto_server() -> Iterator[MotoServer]:
    with local_moto_server() as url:
        yield MotoServer(url)
