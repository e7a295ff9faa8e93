"""CloudFront invalidations after a push, against moto's CloudFront API."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cdn.cloudfront import MAX_PATHS_PER_BATCH, invalidate, invalidation_paths
from packager.output.pipeline import PackageResult
from testbed.origin import create_distribution
from tests.conftest import cdnpack_cli
from tests.moto import MotoServer

BUCKET = "media-origin"
PREFIX = "releases/demo"


@pytest.fixture
def distribution(moto_s3: MotoServer) -> str:
    moto_s3.client().create_bucket(Bucket=BUCKET)
    return create_distribution(moto_s3.client("cloudfront"), BUCKET)


def env() -> dict[str, str]:
    return {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1"}


def test_push_invalidates_only_the_manifests_it_changed(
    packaged: PackageResult, moto_s3: MotoServer, distribution: str
) -> None:
    args: list[str | Path] = [
        "push", packaged.output, f"s3://{BUCKET}/{PREFIX}", "--endpoint-url", moto_s3.url,
            "--distribution", distribution, "--wait", "--json"]
    first = cdnpack_cli(*args, env=env())
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    (inv,) = doc["invalidations"]
    manifests = sorted(
        f"/{PREFIX}/{f.path}" for f in packaged.release.files
        if f.role in ("multivariant", "media-playlist", "mpd", "iframe-playlist")
    )
    assert sorted(inv["paths"]) == manifests
    assert inv["status"].lower() == "completed"
    stored = moto_s3.client("cloudfront").get_invalidation(DistributionId=distribution,
                                                           Id=inv["id"])
    assert sorted(stored["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]) == manifests
    again = cdnpack_cli(*args, env=env())
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["invalidations"] == []


def test_more_paths_than_one_request_allows_go_in_batches(
    moto_s3: MotoServer, distribution: str
) -> None:
    keys = [f"{PREFIX}/v{i}/playlist.m3u8" for i in range(MAX_PATHS_PER_BATCH + 5)]
    done = invalidate(moto_s3.client("cloudfront"), distribution, invalidation_paths(keys),
                      wait=True, poll=0.1)
    assert [len(d.paths) for d in done] == [MAX_PATHS_PER_BATCH, 5]
    assert all(d.status.lower() == "completed" for d in done)


def test_paths_are_absolute_and_percent_encoded() -> None:
    assert invalidation_paths(["a b/é.m3u8", "x/master.m3u8", "x/master.m3u8"]) == [
        "/a%20b/%C3%A9.m3u8", "/x/master.m3u8",
    ]


def test_unknown_distribution_is_a_clear_error(
    packaged: PackageResult, moto_s3: MotoServer
) -> None:
    moto_s3.client().create_bucket(Bucket=BUCKET)
    result = cdnpack_cli("push", packaged.output, f"s3://{BUCKET}/{PREFIX}", "--endpoint-url",
                         moto_s3.url, "--distribution", "ENOSUCHDIST", env=env())
    assert result.returncode == 3, result.stderr
    assert "invalidation on ENOSUCHDIST failed" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
