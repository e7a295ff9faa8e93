"""`cdnpack rights publish` against a local CloudFront: the stand-in (testbed/cloudfront_api.py:
moto has no UpdateFunction, PublishFunction, KeyValueStore API or FunctionAssociations), which
parses and validates every request with botocore's service model and checks its SigV4 / SigV4A
signature, in front of moto's S3. The release is pushed through it first, as a user would."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cdn.edge_functions import cloudfront, keyvaluestore
from cdn.publish import PushRequest
from cdn.publish import push as cdn_push
from cdn.s3 import S3Location
from testbed.cloudfront_api import CloudFrontStandIn
from testbed.origin import local_connection, origin_bucket
from tests.conftest import cdnpack_cli
from tests.moto import MotoServer
from tests.steering.rights_release import read_rights, write_release

BUCKET = "rights-origin"
PREFIX = "releases/demo"


@pytest.fixture
def cloud(moto_s3: MotoServer) -> Iterator[CloudFrontStandIn]:
    origin_bucket(moto_s3.client("s3"), BUCKET)
    with CloudFrontStandIn(moto_s3.url) as stand_in:
        yield stand_in


def client(stand_in: CloudFrontStandIn, service: str = "cloudfront") -> Any:
    """The product's own clients (the KeyValueStore one signs SigV4A) on the stand-in."""
    connection = local_connection(stand_in.url)
    return cloudfront(connection) if service == "cloudfront" else keyvaluestore(connection)


def distribution(stand_in: CloudFrontStandIn, headers: tuple[str, ...] = (
        "CloudFront-Viewer-Country",)) -> str:
    """A distribution with a default behaviour and one for manifests (*.m3u8), both
    forwarding `headers` (legacy settings) to the origin."""
    forwarded = {"QueryString": False, "Cookies": {"Forward": "none"},
                 "Headers": {"Quantity": len(headers), "Items": list(headers)}}
    behaviour = {"TargetOriginId": "origin", "ViewerProtocolPolicy": "https-only",
                 "ForwardedValues": forwarded, "MinTTL": 0}
    answer = client(stand_in).create_distribution(DistributionConfig={
        "CallerReference": str(uuid.uuid4()), "Comment": "rights", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{
            "Id": "origin", "DomainName": f"{BUCKET}.s3.amazonaws.com",
            "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": behaviour,
        "CacheBehaviors": {"Quantity": 1, "Items": [{**behaviour, "PathPattern": "*.m3u8"}]},
    })
    return str(answer["Distribution"]["Id"])


def packaged(tmp_path: Path, text: str | None = None) -> Path:
    root = tmp_path / "release"
    root.mkdir(parents=True, exist_ok=True)
    write_release(root, read_rights(tmp_path, *([text] if text else [])))
    return root


def push(stand_in: CloudFrontStandIn, release: Path) -> None:
    """The push job, through the stand-in to moto's S3."""
    cdn_push(PushRequest(release, S3Location(BUCKET, PREFIX), local_connection(stand_in.url)))


def publish(stand_in: CloudFrontStandIn, release: Path, dist: str, *extra: str | Path
            ) -> tuple[int, dict[str, Any], str]:
    done = cdnpack_cli("rights", "publish", release, f"s3://{BUCKET}/{PREFIX}",
                       "--distribution", dist, "--endpoint-url", stand_in.url, "--json", *extra)
    return done.returncode, json.loads(done.stdout) if done.returncode == 0 else {}, done.stderr


def operations(stand_in: CloudFrontStandIn) -> list[str]:
    return [name for name, _ in stand_in.calls]


def test_publish_creates_the_store_and_function_and_runs_it_on_the_release(
        cloud: CloudFrontStandIn, tmp_path: Path) -> None:
    release = packaged(tmp_path)
    push(cloud, release)
    dist = distribution(cloud)
    function_file, kvs_file = tmp_path / "function.js", tmp_path / "kvs.json"
    code, doc, err = publish(cloud, release, dist, "--function-file", function_file,
                             "--kvs-file", kvs_file)
    assert code == 0, err
    assert doc["function"]["created"]
    assert doc["function"]["published"]
    assert doc["store"]["created"]
    assert doc["associated"]
    assert sorted(doc["behaviours"]) == ["*.m3u8", "default (*)"]
    # What went to CloudFront is byte for byte what the files hold.
    cf = client(cloud)
    live = cf.get_function(Name=doc["function"]["name"], Stage="LIVE")
    assert live["FunctionCode"].read() == function_file.read_bytes()
    stored = {i["Key"]: i["Value"] for i in client(cloud, "cloudfront-keyvaluestore").list_keys(
        KvsARN=doc["store"]["arn"])["Items"]}
    assert stored == {i["key"]: i["value"] for i in json.loads(kvs_file.read_text())["data"]}
    described = cf.describe_function(Name=doc["function"]["name"], Stage="LIVE")
    config = described["FunctionSummary"]["FunctionConfig"]
    assert config["Runtime"] == "cloudfront-js-2.0"
    assert config["KeyValueStoreAssociations"]["Items"][0]["KeyValueStoreARN"] == doc[
        "store"]["arn"]
    behaviours = cf.get_distribution_config(Id=dist)["DistributionConfig"]
    for behaviour in (behaviours["DefaultCacheBehavior"],
                      *behaviours["CacheBehaviors"]["Items"]):
        assert behaviour["FunctionAssociations"]["Items"] == [
            {"FunctionARN": doc["function"]["arn"], "EventType": "viewer-request"}]
    # The store was written before the function, the function before the distribution.
    ops = operations(cloud)
    assert ops.index("UpdateKeys") < ops.index("CreateFunction") < ops.index(
        "PublishFunction") < ops.index("UpdateDistribution")


def test_every_write_is_guarded_by_the_version_it_replaces(
        cloud: CloudFrontStandIn, tmp_path: Path) -> None:
    release = packaged(tmp_path)
    push(cloud, release)
    dist = distribution(cloud)
    assert publish(cloud, release, dist)[0] == 0
    # Another grant set: keys are replaced and the old release's leftovers deleted.
    fewer = packaged(tmp_path / "v2", RIGHTS_V2)
    push(cloud, fewer)
    code, doc, err = publish(cloud, fewer, dist)
    assert code == 0, err
    assert doc["store"]["deleted"] == []  # same directories, same root
    assert not doc["function"]["updated"]
    assert not doc["function"]["published"]
    assert not doc["associated"]
    calls = cloud.calls
    describes = [p for name, p in calls if name == "DescribeKeyValueStore" and "KvsARN" in p]
    updates = [p for name, p in calls if name == "UpdateKeys"]
    assert all(u["IfMatch"] for u in updates)
    assert len(describes) == 2  # one read of the version per publish, then the chain
    assert [name for name, _ in calls].count("UpdateDistribution") == 1


RIGHTS_V2 = """\
rights:
  - id: world
    territories: [JP, KR, FR]
    start: 2025-01-01T00:00:00Z
"""


def test_stale_keys_of_the_release_are_deleted(cloud: CloudFrontStandIn, tmp_path: Path) -> None:
    release = packaged(tmp_path)
    push(cloud, release)
    dist = distribution(cloud)
    code, doc, _ = publish(cloud, release, dist)
    assert code == 0
    kvs = client(cloud, "cloudfront-keyvaluestore")
    arn = doc["store"]["arn"]
    etag = kvs.describe_key_value_store(KvsARN=arn)["ETag"]
    kvs.update_keys(KvsARN=arn, IfMatch=etag, Puts=[
        {"Key": f"/{PREFIX}/video_2160p", "Value": "D|jp-hd"},
        {"Key": f"/{PREFIX}|7", "Value": "C|"},
        {"Key": "/releases/other/video_720p", "Value": "D|x"}])
    code, doc, _ = publish(cloud, release, dist)
    assert code == 0
    assert doc["store"]["deleted"] == [f"/{PREFIX}/video_2160p", f"/{PREFIX}|7"]
    keys = {i["Key"] for i in kvs.list_keys(KvsARN=arn)["Items"]}
    assert "/releases/other/video_720p" in keys  # another release's: untouched


def test_dry_run_writes_the_files_and_calls_nothing(
        cloud: CloudFrontStandIn, tmp_path: Path) -> None:
    release = packaged(tmp_path)
    function_file, kvs_file = tmp_path / "f.js", tmp_path / "k.json"
    code, doc, err = publish(cloud, release, "E0000000000000", "--dry-run", "--function-file",
                             function_file, "--kvs-file", kvs_file)
    assert code == 0, err
    assert doc["dry_run"]
    assert function_file.read_text().startswith("// cdnpack rights")
    assert json.loads(kvs_file.read_text())["data"][0]["key"] == f"/{PREFIX}"
    assert cloud.calls == []


@pytest.mark.parametrize(("case", "message"), [
    ("not pushed", "not stored there"),
    ("no country header", "does not include CloudFront-Viewer-Country"),
    ("another function", "already runs"),
    ("no rights", "has no rights"),
    ("no distribution", "no such distribution"),
])
def test_what_cannot_work_is_refused_before_anything_is_published(
        cloud: CloudFrontStandIn, tmp_path: Path, case: str, message: str) -> None:
    release = packaged(tmp_path)
    if case != "not pushed":
        push(cloud, release)
    dist = distribution(cloud, () if case == "no country header" else
                        ("CloudFront-Viewer-Country",))
    if case == "another function":
        cf = client(cloud)
        made = cf.create_function(Name="other", FunctionConfig={
            "Comment": "", "Runtime": "cloudfront-js-2.0"}, FunctionCode=b"function handler(e)"
            b"{return e.request}")
        cf.publish_function(Name="other", IfMatch=made["ETag"])
        got = cf.get_distribution_config(Id=dist)
        config = got["DistributionConfig"]
        config["DefaultCacheBehavior"]["FunctionAssociations"] = {"Quantity": 1, "Items": [{
            "FunctionARN": made["FunctionSummary"]["FunctionMetadata"]["FunctionARN"],
            "EventType": "viewer-request"}]}
        cf.update_distribution(Id=dist, IfMatch=got["ETag"], DistributionConfig=config)
    if case == "no rights":
        doc = json.loads((release / "release.json").read_text())
        doc["rights"] = []
        (release / "release.json").write_text(json.dumps(doc))
    before = list(operations(cloud))
    code, _, err = publish(cloud, release, "E404" if case == "no distribution" else dist)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1
    assert message in err
    written = {"CreateKeyValueStore", "UpdateKeys", "CreateFunction", "UpdateFunction",
               "PublishFunction", "UpdateDistribution"}
    assert not written & set(operations(cloud)[len(before):])
