"""`kill -9` at any moment of a push, then the same push again: the re-run stores exactly the
objects that are missing or different, each once, resumes a multipart upload from the parts
S3 already has, and at no moment does a manifest in the bucket name a missing object.

Every request goes through the counting proxy to a real moto_server; objects are counted per
key where S3 stored them (a PutObject, or a CompleteMultipartUpload for a multipart upload).
The killed push's own requests still in flight reach the origin after the kill, as they would
reach S3; the proxy is drained before the bucket is read.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path, PurePosixPath

import pytest

from cdn.multipart import open_uploads, resume_uploads
from cdn.publish import PHASES
from cdn.s3 import (
    IMMUTABLE,
    Transfer,
    Upload,
    client,
    file_digests,
    object_args,
    parse_s3_url,
    upload_all,
)
from packager.output.pipeline import PackageResult
from packager.output.release import Release, describe_file, read_release, write_release
from testbed.origin import local_connection
from tests.cdn.proxy import FaultProxy, Faults, RequestLog
from tests.cdn.test_push import BUCKET, PREFIX, REPO, cli_env
from tests.moto import MotoServer

#: Past the default multipart threshold (16 MiB): three parts, the last one short.
LARGE_BYTES = 40 * 1024 * 1024
LARGE_PATH = "video_raw/large_00001.m4s"
CHUNK = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def large_release(packaged: PackageResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's release plus one object large enough to go up in parts."""
    root = tmp_path_factory.mktemp("resume") / "release"
    shutil.copytree(packaged.output, root)
    (root / LARGE_PATH).parent.mkdir()
    (root / LARGE_PATH).write_bytes(os.urandom(LARGE_BYTES))
    listed = [*packaged.release.files, describe_file(root, LARGE_PATH, "segment", None)]
    write_release(root, replace(packaged.release, files=listed))
    return root


@pytest.fixture
def bucket(moto_s3: MotoServer) -> MotoServer:
    moto_s3.client().create_bucket(Bucket=BUCKET)
    return moto_s3


def phase_of(files: Release) -> dict[str, int]:
    return {f"{PREFIX}/{f.path}": PHASES[f.role] for f in files.files}


#: When to kill: (name, predicate on the keys stored so far and the proxy log).
Moment = Callable[[list[str], RequestLog, int], bool]


def stored_share(share: float) -> Moment:
    return lambda keys, log, total: len(keys) >= max(1, round(share * total))


def mid_multipart(keys: list[str], log: RequestLog, total: int) -> bool:
    parts = [p for m, p, o in log.snapshot() if m == "PUT" and o == "ok"
             and LARGE_PATH in p and "partNumber=" in p]
    return bool(parts) and f"{PREFIX}/{LARGE_PATH}" not in keys


def one_manifest(keys: list[str], log: RequestLog, total: int) -> bool:
    return any(PurePosixPath(k).name == "master.m3u8" for k in keys)


#: Each request waits this long at the proxy: the push takes a few seconds to kill it in.
SLOW = Faults(delay_all=0.03)
#: The same, but the requests in flight at the kill are dropped: at 90 % the media playlists
#: are stored and the manifests just sent; landing, they would finish the push.
SLOW_DROPPED = Faults(delay_all=0.03, drop_on_disconnect=True)
#: The MPD waits longer and is dropped when its client dies: the kill leaves the multivariant
#: playlist stored and the MPD not, half of the manifest phase.
MPD_LAST = Faults(delay_all=0.03, delay_paths=(("manifest.mpd", 3.0),), drop_on_disconnect=True)
MOMENTS: dict[str, tuple[Moment, Faults]] = {
    "first-object": (stored_share(0.0), SLOW), "20%": (stored_share(0.2), SLOW),
    "50%": (stored_share(0.5), SLOW), "90%": (stored_share(0.9), SLOW_DROPPED),
    "mid-multipart": (mid_multipart, SLOW), "manifest-phase": (one_manifest, MPD_LAST),
}
#: Moments that need the object in parts; the others push the session's release as it is.
LARGE_MOMENTS = {"mid-multipart"}


def push_args(release: Path, endpoint: str) -> list[str]:
    return [sys.executable, "-m", "cli", "push", str(release), f"s3://{BUCKET}/{PREFIX}",
            "--endpoint-url", endpoint, "--concurrency", "2", "--json"]


def bucket_state(server: MotoServer) -> dict[str, tuple[int, str]]:
    s3 = server.client()
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {o["Key"]: (o["Size"], o["ETag"].strip('"'))
            for page in pages for o in page.get("Contents", [])}


def no_manifest_before_its_media(present: set[str], phases: dict[str, int]) -> list[str]:
    """A phase's objects are in the bucket only when every object of the earlier phases is:
    what keeps each playlist and MPD from naming a missing object."""
    highest = max((phases[k] for k in present if k in phases), default=0)
    return sorted(k for k, p in phases.items() if p < highest and k not in present)


@pytest.mark.slow
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_push_killed_at_any_moment_resumes_with_only_what_is_missing(
    packaged: PackageResult, bucket: MotoServer, moment: str, request: pytest.FixtureRequest
) -> None:
    release = (request.getfixturevalue("large_release") if moment in LARGE_MOMENTS
               else packaged.output)
    listing = read_release(release)
    phases = phase_of(listing)
    total = len(listing.files)
    came, faults = MOMENTS[moment]
    with FaultProxy(bucket.url, faults) as slow:
        proc = subprocess.Popen(push_args(release, slow.url), cwd=REPO, env=cli_env(slow.url),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not came(slow.log.stored_objects(), slow.log, total):
            assert proc.poll() is None, "the push ended before the moment came"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        slow.wait_idle()
    before = bucket_state(bucket)
    assert no_manifest_before_its_media(set(before), phases) == []
    wanted = {f"{PREFIX}/{f.path}": f for f in listing.files}
    missing = {k for k, f in wanted.items() if before.get(k, (None, None))[0] != f.bytes}
    assert 0 < len(missing) < total, "the kill came at no moment of the push"
    parts_before = stored_parts(bucket)

    with FaultProxy(bucket.url) as proxy:
        done = subprocess.run(push_args(release, proxy.url), cwd=REPO, env=cli_env(proxy.url),
                              capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["uploaded"] == len(missing)
    stored = proxy.log.stored_objects()
    assert Counter(stored) == Counter(missing), "the re-run stored other objects than missing"
    present = set(before)
    for key in stored:  # in the order S3 answered: the bucket as a reader saw it
        present.add(key)
        assert no_manifest_before_its_media(present, phases) == [], key
    after = bucket_state(bucket)
    assert {k: after[k][0] for k in wanted} == {k: f.bytes for k, f in wanted.items()}
    large = f"{PREFIX}/{LARGE_PATH}"
    sent_parts = sorted(int(p.split("partNumber=")[1].split("&")[0])
                        for m, p, o in proxy.log.snapshot()
                        if m == "PUT" and o == "ok" and "partNumber=" in p)
    if moment in LARGE_MOMENTS:  # killed between its parts: resumed, not started over
        assert large in missing
        assert 0 < len(parts_before) < 3
        assert sent_parts == [n for n in (1, 2, 3) if n not in parts_before]
    else:
        assert sent_parts == []
    assert not pending_uploads(bucket), "a multipart upload was left behind"


def stored_parts(server: MotoServer) -> set[int]:
    """Part numbers S3 holds for the large object's unfinished upload (none: no upload)."""
    s3 = server.client()
    key = f"{PREFIX}/{LARGE_PATH}"
    uploads = [u for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
               if u["Key"] == key]
    numbers: set[int] = set()
    for upload in uploads:
        parts = s3.list_parts(Bucket=BUCKET, Key=key, UploadId=upload["UploadId"])
        numbers |= {p["PartNumber"] for p in parts.get("Parts", []) if p["Size"] in
                    (CHUNK, LARGE_BYTES - 2 * CHUNK)}
    return numbers


def pending_uploads(server: MotoServer) -> list[str]:
    uploads = server.client().list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    return [u["Key"] for u in uploads]


def test_an_open_upload_of_a_changed_file_ends_as_the_new_file(
    bucket: MotoServer, tmp_path: Path
) -> None:
    """S3 cannot say what headers an open upload was made with: one whose stored part matches
    our first chunk but was made for other bytes is completed, found to carry the old
    file's sha256, and replaced by a whole upload of the new file."""
    transfer = Transfer(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    conn = local_connection(bucket.url)
    s3 = client(conn)
    first = os.urandom(transfer.multipart_chunksize)
    old, new = first + os.urandom(1000), first + os.urandom(2000)
    path = tmp_path / "big.m4s"
    path.write_bytes(new)
    key = f"{PREFIX}/big.m4s"
    args = object_args("video/iso.segment", IMMUTABLE, hashlib.sha256(old).hexdigest(), len(old),
                       transfer)
    opened = s3.create_multipart_upload(Bucket=BUCKET, Key=key, **args)
    s3.upload_part(Bucket=BUCKET, Key=key, UploadId=opened["UploadId"], PartNumber=1,
                   Body=first)
    new_sha = hashlib.sha256(new).hexdigest()
    upload = Upload(path, key, len(new), object_args("video/iso.segment", IMMUTABLE, new_sha,
                                                     len(new), transfer))
    unfinished = open_uploads(s3, parse_s3_url(f"s3://{BUCKET}/{PREFIX}"))
    assert [u.upload_id for u in unfinished[key]] == [opened["UploadId"]]
    assert resume_uploads(s3, BUCKET, [upload], unfinished, conn, transfer, lambda n: None) == {}
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    answered = upload_all(s3, BUCKET, [upload], conn, transfer)
    assert answered[key] == file_digests(path, transfer)[1]
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["Metadata"]["sha256"] == new_sha
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == new
