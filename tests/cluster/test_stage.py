"""The S3 stage: what a worker puts, the coordinator gets whole; a presigned URL reads it by
ranges (as ffmpeg does); a prefix, or the whole stage, is removed at once (and nothing beside
it); static credentials never travel."""

from __future__ import annotations

import os
import pickle
import urllib.request
from pathlib import Path

from cdn.s3 import S3Location
from cluster.stage import S3Stage
from testbed.origin import local_connection
from tests.moto import MotoServer


def test_put_get_ranges_and_delete_a_prefix(moto_s3: MotoServer, tmp_path: Path) -> None:
    moto_s3.client().create_bucket(Bucket="stage")
    stage = S3Stage(S3Location("stage", "run-1"), local_connection(moto_s3.url))
    payload = os.urandom(300_000)
    local = tmp_path / "chunk.mp4"
    local.write_bytes(payload)
    stage.put(local, "encode/a/chunk.mp4")
    stage.put(local, "encode/b/chunk.mp4")
    stage.get("encode/a/chunk.mp4", tmp_path / "back" / "chunk.mp4")
    assert (tmp_path / "back" / "chunk.mp4").read_bytes() == payload
    assert [p.name for p in (tmp_path / "back").iterdir()] == ["chunk.mp4"]  # no partial left
    ranged = urllib.request.Request(stage.url("encode/b/chunk.mp4"),
                                    headers={"Range": "bytes=1000-1999"})
    with urllib.request.urlopen(ranged, timeout=10) as answer:
        assert answer.status == 206
        assert answer.read() == payload[1000:2000]
    stage.put(local, "sources/x.mp4")
    neighbour = S3Stage(S3Location("stage", "run-10"), stage.connection)
    neighbour.put(local, "kept.mp4")
    stage.delete_prefix("encode")
    assert listed(moto_s3) == ["run-1/sources/x.mp4", "run-10/kept.mp4"]
    stage.delete_prefix("")  # the whole stage, and nothing beside it
    assert listed(moto_s3) == ["run-10/kept.mp4"]


def listed(moto: MotoServer) -> list[str]:
    return sorted(o["Key"] for o in moto.client().list_objects_v2(Bucket="stage")
                  .get("Contents", []))


def test_a_stage_travels_without_static_credentials(moto_s3: MotoServer) -> None:
    stage = S3Stage(S3Location("stage", "run-1"), local_connection(moto_s3.url))
    assert stage.connection.credentials is not None
    travelled = pickle.loads(pickle.dumps(stage))
    assert travelled.connection.credentials is None
    assert travelled.location == stage.location
    assert b"testing" not in pickle.dumps(stage)
