"""The local S3/CloudFront endpoint of the tests (testbed/origin.py), under the names they use."""

from __future__ import annotations

from testbed.origin import FAKE_CREDENTIALS, LocalOrigin
from testbed.origin import local_origin as moto_server

#: What a test holds: a running moto_server (url, client(), reset()).
MotoServer = LocalOrigin

__all__ = ["FAKE_CREDENTIALS", "MotoServer", "moto_server"]
