"""Pushing a release to a real local S3 endpoint (moto_server), through a fault proxy."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path, PurePosixPath

import m3u8
import pytest

from cdn.digest_cache import SETTLED
from cdn.publish import (
    HASH_THREADS_MAX,
    PHASES,
    PushRequest,
    PushResult,
    files_under,
    hash_threads,
    push,
)
from cdn.s3 import (
    EXPECT_CONTINUE_FROM,
    Transfer,
    Upload,
    client,
    file_digests,
    list_prefix,
    object_args,
    parse_s3_url,
    upload_all,
)
from packager.output.pipeline import PackageResult
from packager.output.release import CONTENT_TYPES, describe_file, write_release
from testbed.origin import local_connection
from tests.cdn.proxy import FaultProxy, Faults
from tests.conftest import cdnpack_cli
from tests.interrupts import assert_stopped_cleanly, interrupt, start
from tests.moto import MotoServer

BUCKET = "media-origin"
PREFIX = "releases/demo"
REPO = Path(__file__).resolve().parents[2]


def push_via(endpoint: str, release: Path, **kw: object) -> PushResult:
    request = PushRequest(
        release_dir=release,
        destination=parse_s3_url(f"s3://{BUCKET}/{PREFIX}"),
        connection=replace(local_connection(endpoint), concurrency=4),
        **kw,  # type: ignore[arg-type]
    )
    return push(request)


@pytest.fixture
def bucket(moto_s3: MotoServer) -> MotoServer:
    moto_s3.client().create_bucket(Bucket=BUCKET)
    return moto_s3


def stored(server: MotoServer) -> dict[str, bytes]:
    s3 = server.client()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return {k: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys}


def test_every_public_file_is_stored_with_type_cache_and_checksum(
    packaged: PackageResult, bucket: MotoServer
) -> None:
    result = push_via(bucket.url, packaged.output)
    assert result.verified
    s3 = bucket.client()
    files = packaged.release.files
    assert len(result.uploaded) == len(files)
    for entry in files:
        head = s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}/{entry.path}", ChecksumMode="ENABLED")
        suffix = PurePosixPath(entry.path).suffix
        assert head["ContentType"] == CONTENT_TYPES[suffix]
        assert head["ContentLength"] == entry.bytes
        assert head["Metadata"]["sha256"] == entry.sha256
        assert head["ChecksumSHA256"] == base64.b64encode(bytes.fromhex(entry.sha256)).decode()
        if entry.role in ("init", "segment"):
            assert head["CacheControl"] == "public, max-age=31536000, immutable"
        else:
            assert head["CacheControl"] == "public, max-age=30"
    assert f"{PREFIX}/release.json" not in stored(bucket)


def test_uploads_go_segments_then_media_playlists_then_manifests(
    packaged: PackageResult, bucket: MotoServer
) -> None:
    with FaultProxy(bucket.url) as proxy:
        push_via(proxy.url, packaged.output)
    puts = [PurePosixPath(path.split("?")[0]).name for m, path, o in proxy.log.snapshot()
            if m == "PUT" and o == "ok"]
    phase = [3 if n in ("master.m3u8", "manifest.mpd") else 2 if n.endswith(".m3u8") else 1
             for n in puts]
    assert phase == sorted(phase), "a later phase started before an earlier one finished"
    assert set(phase) == {1, 2, 3}


def test_a_reader_polling_during_a_push_never_meets_a_missing_object(
    packaged: PackageResult, bucket: MotoServer
) -> None:
    s3 = bucket.client()
    problems: list[str] = []
    seen: list[int] = []  # media playlists checked in each poll that found the manifest
    crashed: list[BaseException] = []
    stop = threading.Event()

    def exists(key: str) -> bool:
        return bool(s3.list_objects_v2(Bucket=BUCKET, Prefix=key).get("KeyCount"))

    def read(key: str) -> str | None:
        try:
            body: bytes = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        return body.decode()

    def poll() -> None:
        try:
            while not stop.is_set():
                check_once()
            check_once()  # and once after the push: the manifest must be there by then
        except BaseException as exc:  # a crash must fail the test, not pass it silently
            crashed.append(exc)

    def check_once() -> None:
        text = read(f"{PREFIX}/master.m3u8")
        if text is None:
            return
        master = m3u8.loads(text)
        uris = [p.uri for p in master.playlists] + [m.uri for m in master.media if m.uri]
        seen.append(len(uris))
        for uri in uris:
            media_text = read(f"{PREFIX}/{uri}")
            if media_text is None:
                problems.append(f"master names missing {uri}")
                continue
            base = uri.rsplit("/", 1)[0]
            for segment in m3u8.loads(media_text).segments:
                if not exists(f"{PREFIX}/{base}/{segment.uri}"):
                    problems.append(f"{uri} names missing {segment.uri}")


    with FaultProxy(bucket.url, Faults(delay_all=0.02)) as proxy:
        reader = threading.Thread(target=poll)
        reader.start()
        try:
            push_via(proxy.url, packaged.output)
        finally:
            stop.set()
            reader.join()
    assert crashed == []
    assert seen, "the reader never saw the multivariant playlist"
    assert all(seen), "a multivariant playlist named no media playlist"
    assert problems == []


def test_a_no_op_re_push_makes_zero_puts_and_one_listing(
    packaged: PackageResult, bucket: MotoServer
) -> None:
    push_via(bucket.url, packaged.output)
    with FaultProxy(bucket.url) as proxy:
        again = push_via(proxy.url, packaged.output)
    assert again.uploaded == []
    methods = [m for m, _, _ in proxy.log.snapshot()]
    assert methods.count("PUT") == 0
    assert methods.count("POST") == 0
    assert methods.count("HEAD") == 0
    assert methods.count("GET") == 1  # one listing plans and verifies a no-op push


def aws_free_env() -> dict[str, str]:
    """The test process's environment without its AWS settings, plus moto's keys: nothing in
    it sends the listing through botocore."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1"}


def test_a_no_op_re_push_never_imports_botocore(
    packaged: PackageResult, bucket: MotoServer
) -> None:
    """Static keys: the listing is signed by cdn/sigv4.py, and nothing needs a boto3 client
    (nor botocore's exceptions: the origin's answer is a no-op's critical path), nor
    http.client (cdn/http11.py sends it), nor TLS for an http origin."""
    push_via(bucket.url, packaged.output)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cli", "push", str(packaged.output),
         f"s3://{BUCKET}/{PREFIX}", "--endpoint-url", bucket.url, "--json"],
        cwd=REPO, env=aws_free_env(), capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["uploaded"] == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "cdn.s3direct" in imported
    assert not {m for m in imported if m.split(".")[0] in ("boto3", "botocore", "s3transfer")}
    assert not {m for m in imported if m.split(".")[0] in ("http", "email", "ssl", "_ssl")}


def test_a_first_push_of_single_puts_never_imports_botocore(
    packaged: PackageResult, bucket: MotoServer
) -> None:
    """Static keys and nothing of the multipart size: the PUTs are signed by cdn/sigv4.py
    too (cdn/s3put.py), and every object is stored and verified."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cli", "push", str(packaged.output),
         f"s3://{BUCKET}/{PREFIX}", "--endpoint-url", bucket.url, "--json"],
        cwd=REPO, env=aws_free_env(), capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["uploaded"] == len(packaged.release.files)
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "cdn.s3put" in imported
    assert not {m for m in imported if m.split(".")[0] in ("boto3", "botocore", "s3transfer",
                                                            "http", "email")}
    objects = stored(bucket)
    assert {k: hashlib.sha256(v).hexdigest() for k, v in objects.items()} == {
        f"{PREFIX}/{f.path}": f.sha256 for f in packaged.release.files}


def test_an_object_of_2_mib_goes_through_botocore_and_the_others_direct(
    packaged: PackageResult, bucket: MotoServer, tmp_path: Path
) -> None:
    """From 2 MiB a body waits for "100 Continue", which only botocore's connection does:
    such an object makes the push load boto3, and the release is stored whole either way."""
    release = tree_copy(packaged, tmp_path)
    large = next(f for f in packaged.release.files if f.role == "segment")
    (release / large.path).write_bytes(os.urandom(EXPECT_CONTINUE_FROM))
    files = [describe_file(release, f.path, f.role, f.rendition) if f == large else f
             for f in packaged.release.files]
    written = replace(packaged.release, files=files)
    write_release(release, written)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cli", "push", str(release),
         f"s3://{BUCKET}/{PREFIX}", "--endpoint-url", bucket.url, "--json"],
        cwd=REPO, env=aws_free_env(), capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert {"cdn.s3put", "s3transfer"} <= imported
    objects = stored(bucket)
    assert {k: hashlib.sha256(v).hexdigest() for k, v in objects.items()} == {
        f"{PREFIX}/{f.path}": f.sha256 for f in written.files}


def test_a_same_size_change_is_found_by_the_hashes_and_uploaded(
    packaged: PackageResult, bucket: MotoServer, tmp_path: Path
) -> None:
    """The sizes listed match, so no client is made beside the listing: the plan makes one."""
    release = tree_copy(packaged, tmp_path)
    push_via(bucket.url, release)
    changed = next(f for f in packaged.release.files if f.role == "segment")
    data = bytearray((release / changed.path).read_bytes())
    data[-1] ^= 0xFF
    (release / changed.path).write_bytes(data)
    files = [describe_file(release, f.path, f.role, f.rendition) if f == changed else f
             for f in packaged.release.files]
    write_release(release, replace(packaged.release, files=files))
    again = push_via(bucket.url, release)
    assert [p.path for p in again.uploaded] == [changed.path]
    assert again.verified
    assert stored(bucket)[f"{PREFIX}/{changed.path}"] == bytes(data)


@pytest.mark.slow
def test_push_completes_and_verifies_through_503s_resets_and_slow_answers(
    packaged: PackageResult, bucket: MotoServer
) -> None:
    faults = Faults(rate=0.15, seed=7, slow_seconds=0.1)
    with FaultProxy(bucket.url, faults) as proxy:
        result = push_via(proxy.url, packaged.output)
    assert result.verified
    outcomes = [o for _, _, o in proxy.log.snapshot()]
    assert outcomes.count("503") > 0
    assert outcomes.count("reset") > 0
    objects = stored(bucket)
    for entry in packaged.release.files:
        data = objects[f"{PREFIX}/{entry.path}"]
        assert hashlib.sha256(data).hexdigest() == entry.sha256


def test_bytes_corrupted_on_the_way_fail_verification(
    packaged: PackageResult, bucket: MotoServer
) -> None:
    """moto checks no checksums, so only our comparison of the ETags S3 answered can fail."""
    with FaultProxy(bucket.url, Faults(corrupt_puts=True)) as proxy:
        result = cdnpack_cli("push", packaged.output, f"s3://{BUCKET}/{PREFIX}",
                             "--endpoint-url", proxy.url, env=cli_env(proxy.url))
    assert result.returncode == 3
    assert "was stored with different bytes" in result.stderr
    keys = [o["Key"] for o in bucket.client().list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert keys
    assert not [k for k in keys if k.endswith((".m3u8", ".mpd"))]  # stopped before manifests


def cli_env(endpoint: str) -> dict[str, str]:
    return {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1"}


def uploading(keys: list[str]) -> bool:
    return len(keys) >= 5


def between_the_manifests(keys: list[str]) -> bool:
    return any(k.endswith("/master.m3u8") for k in keys)


#: Moments to stop a push at: (what the proxy must have stored by then, proxy behaviour). The
#: MPD is slow to answer: the push is stopped with the multivariant playlist stored.
PUSH_MOMENTS: dict[str, tuple[Callable[[list[str]], bool], Faults]] = {
    "upload": (uploading, Faults(delay_all=0.05)),
    "manifests": (between_the_manifests,
                  Faults(delay_all=0.02, delay_paths=(("/manifest.mpd", 1.0),))),
}


@pytest.mark.slow
@pytest.mark.parametrize(("moment", "sig"), [("upload", signal.SIGINT),
                                             ("manifests", signal.SIGTERM)])
def test_a_push_stopped_by_a_signal_cancels_and_publishes_nothing_half(
    packaged: PackageResult, bucket: MotoServer, moment: str, sig: signal.Signals
) -> None:
    """The uploads stop (cdn/s3put.py's workers take no more; through s3transfer, the
    manager's context exit cancels, as its own shutdown(cancel=True) fails with a TypeError),
    the push says only that it was stopped, and the bucket holds a phase only when it holds
    every earlier one."""
    came, faults = PUSH_MOMENTS[moment]
    with FaultProxy(bucket.url, faults) as slow:
        command = start(["push", packaged.output, f"s3://{BUCKET}/{PREFIX}", "--endpoint-url",
                         slow.url, "--concurrency", "2", "--json"], cli_env(slow.url))
        command.wait_until(lambda: came(slow.log.stored_objects()), moment)
        assert_stopped_cleanly(interrupt(command, sig), sig)
        slow.wait_idle()
    keys = set(stored(bucket))
    phases = {f"{PREFIX}/{f.path}": PHASES[f.role] for f in packaged.release.files}
    highest = max(phases[k] for k in keys)
    assert {k for k, p in phases.items() if p < highest} <= keys


@pytest.mark.slow
def test_a_push_that_fails_with_its_listing_out_exits_cleanly_every_time(tmp_path: Path) -> None:
    """release.json unreadable while the listing is still out (an endpoint that refuses it,
    so the listing thread falls back to botocore and imports it): one line and exit 2, run
    after run. Freezing the heap at exit beside that thread crashed 6 exits of 100."""
    release = tmp_path / "release"
    release.mkdir()
    (release / "release.json").write_bytes(bytes(range(256)) * 4)
    with ThreadPoolExecutor(4) as pool:  # side by side, as under a loaded machine
        results = list(pool.map(lambda _: cdnpack_cli(
            "push", release, f"s3://{BUCKET}/{PREFIX}", "--endpoint-url", "http://127.0.0.1:9"),
            range(48)))
    assert sorted({r.returncode for r in results}) == [2], [r.returncode for r in results]
    assert all(len(r.stderr.strip().splitlines()) == 1 for r in results)


def test_dry_run_prints_the_plan_and_uploads_nothing(
    packaged: PackageResult, bucket: MotoServer
) -> None:
    result = cdnpack_cli("push", packaged.output, f"s3://{BUCKET}/{PREFIX}", "--dry-run",
                         "--endpoint-url", bucket.url, "--json", env=cli_env(bucket.url))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["uploaded"] == len(packaged.release.files)
    assert [p["phase"] for p in doc["plan"]] == sorted(p["phase"] for p in doc["plan"])
    assert stored(bucket) == {}


def test_prune_deletes_unlisted_objects_only_after_the_manifests_are_live(
    packaged: PackageResult, bucket: MotoServer
) -> None:
    s3 = bucket.client()
    stale = [f"{PREFIX}/video_1080p/seg_00001.m4s", f"{PREFIX}/video_1080p/playlist.m3u8"]
    for key in stale:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"old")
    s3.put_object(Bucket=BUCKET, Key="other-release/keep.m4s", Body=b"not ours")
    with FaultProxy(bucket.url) as proxy:
        result = push_via(proxy.url, packaged.output, prune=True)
    assert result.pruned == sorted(stale)
    objects = stored(bucket)
    assert not set(stale) & set(objects)
    assert "other-release/keep.m4s" in objects
    log = [(m, p) for m, p, o in proxy.log.snapshot() if o == "ok"]
    last_manifest = max(i for i, (m, p) in enumerate(log) if m == "PUT" and "master.m3u8" in p)
    first_delete = min(i for i, (m, p) in enumerate(log) if m == "POST" and "delete" in p)
    assert first_delete > last_manifest


def tree_copy(packaged: PackageResult, tmp_path: Path) -> Path:
    copy = tmp_path / "release"
    shutil.copytree(packaged.output, copy)
    return copy


def test_a_tree_holding_key_material_is_refused_and_no_key_reaches_the_bucket(
    packaged: PackageResult, bucket: MotoServer, tmp_path: Path
) -> None:
    release = tree_copy(packaged, tmp_path)
    key = os.urandom(16)
    (release / "keys").mkdir()
    (release / "keys" / "content.key").write_bytes(key)
    result = cdnpack_cli("push", release, f"s3://{BUCKET}/{PREFIX}", "--endpoint-url",
                         bucket.url, env=cli_env(bucket.url))
    assert result.returncode == 2
    assert "refusing to push files release.json does not list: keys/content.key" in result.stderr
    assert all(key not in body for body in stored(bucket).values())
    assert stored(bucket) == {}


def test_the_tree_scan_finds_what_rglob_finds(tmp_path: Path) -> None:
    """check_tree's scan (os.scandir) sees every file pathlib would: hidden files, files
    behind symlinks, nested directories; not symlinked directories' contents nor dangling
    links."""
    root = tmp_path / "release"
    (root / "video" / "deep").mkdir(parents=True)
    (root / "video" / "deep" / "seg.m4s").write_bytes(b"s")
    (root / ".hidden.key").write_bytes(b"k")
    (root / "master.m3u8").write_text("#EXTM3U\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "content.key").write_bytes(b"k")
    (root / "linked.key").symlink_to(outside / "content.key")
    (root / "linked-dir").symlink_to(outside, target_is_directory=True)
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    expected = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert files_under(root) == expected
    assert expected == {"video/deep/seg.m4s", ".hidden.key", "master.m3u8", "linked.key"}


def test_a_file_that_differs_from_release_json_is_refused(
    packaged: PackageResult, bucket: MotoServer, tmp_path: Path
) -> None:
    release = tree_copy(packaged, tmp_path)
    target = release / packaged.release.files[0].path
    target.write_bytes(target.read_bytes()[:-1] + b"\x00")
    result = cdnpack_cli("push", release, f"s3://{BUCKET}/{PREFIX}", "--endpoint-url",
                         bucket.url, env=cli_env(bucket.url))
    assert result.returncode == 2
    assert "does not match release.json" in result.stderr


@pytest.mark.slow
def test_a_file_changed_after_a_push_is_read_again_and_refused(
    packaged: PackageResult, bucket: MotoServer, tmp_path: Path
) -> None:
    """The second push takes the digests of unchanged files from the first
    (cdn/digest_cache.py); a segment rewritten in place since, with its size and modification
    time kept, is read again and refused."""
    release = tree_copy(packaged, tmp_path)
    env = {**cli_env(bucket.url), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    time.sleep(SETTLED + 0.2)  # the copy's files are remembered only once settled
    command: list[str | Path] = ["push", release, f"s3://{BUCKET}/{PREFIX}", "--endpoint-url",
                                 bucket.url]
    assert cdnpack_cli(*command, env=env).returncode == 0
    (cache,) = (tmp_path / "cache" / "cdnpack" / "digests").iterdir()
    assert len(json.loads(cache.read_text())["files"]) == len(packaged.release.files)
    target = release / next(f.path for f in packaged.release.files if f.role == "segment")
    before = target.stat()
    data = target.read_bytes()
    target.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    result = cdnpack_cli(*command, env=env)
    assert result.returncode == 2
    assert "does not match release.json" in result.stderr


@pytest.mark.parametrize(
    "url", ["s3://ab/x", "s3://Bad_Bucket/x", "s3://192.168.1.1/x", "s3://-edge/x",
            "http://bucket/x", "s3://bucket..name/x"],
)
def test_invalid_destinations_are_refused_by_our_own_rules(url: str) -> None:
    result = cdnpack_cli("push", ".", url)
    assert result.returncode == 2
    assert result.stderr.startswith("cdnpack: error: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_endpoint_is_an_environment_error(packaged: PackageResult) -> None:
    result = cdnpack_cli("push", packaged.output, f"s3://{BUCKET}/{PREFIX}",
                         "--endpoint-url", "http://127.0.0.1:9", "--max-attempts", "2",
                         env=cli_env(""))
    assert result.returncode == 3, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_missing_bucket_is_named_clearly(packaged: PackageResult, moto_s3: MotoServer) -> None:
    result = cdnpack_cli("push", packaged.output, "s3://no-such-bucket/x", "--endpoint-url",
                         moto_s3.url, env=cli_env(moto_s3.url))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "cdnpack: error: cannot list s3://no-such-bucket/x: no such bucket"
    )


@pytest.mark.slow
def test_listing_sees_every_object_across_pages(bucket: MotoServer, tmp_path: Path) -> None:
    """More than one ListObjectsV2 page (1,000 keys each): the fast path follows the tokens."""
    s3 = bucket.client()
    keys = [f"{PREFIX}/k{i:04d}.m4s" for i in range(1203)]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
    found = list_prefix(client(local_connection(bucket.url)), parse_s3_url(
        f"s3://{BUCKET}/{PREFIX}"))
    assert sorted(found) == keys
    assert found[keys[7]].etag == hashlib.md5(keys[7].encode()).hexdigest()
    assert found[keys[7]].size == len(keys[7])


def test_prune_at_the_bucket_root_is_refused(packaged: PackageResult) -> None:
    result = cdnpack_cli("push", packaged.output, f"s3://{BUCKET}", "--prune")
    assert result.returncode == 2
    assert "--prune needs a prefix" in result.stderr


def test_our_etag_matches_s3_for_single_and_multipart_uploads(
    bucket: MotoServer, tmp_path: Path
) -> None:
    """The skip decision and the verification both rest on predicting S3's ETag."""
    transfer = Transfer(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    conn = local_connection(bucket.url)
    s3 = client(conn)
    for name, size in (("small.m4s", 40_000), ("large.mp4", 11 * 1024 * 1024)):
        path = tmp_path / name
        data = os.urandom(size)
        path.write_bytes(data)
        answered = upload_all(s3, BUCKET, [Upload(path, f"x/{name}", size, {})], conn, transfer)
        sha256, etag = file_digests(path, transfer)
        assert sha256 == hashlib.sha256(data).hexdigest()
        assert answered[f"x/{name}"] == etag
        assert list_prefix(s3, parse_s3_url(f"s3://{BUCKET}/x"))[f"x/{name}"].etag == etag
    assert etag.endswith("-3")  # 5 + 5 + 1 MiB


def test_bodies_are_bound_by_a_signed_sha256_and_small_ones_skip_100_continue(
    bucket: MotoServer, tmp_path: Path
) -> None:
    """What goes on the wire: a single PUT carries the sha256 we computed (botocore neither
    hashes the body for it nor for the signature), that header is signed, and only bodies of
    2 MiB and more wait for "100 Continue"; a multipart upload sends a sha256 per part."""
    transfer = Transfer(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    conn = local_connection(bucket.url)
    s3 = client(conn)
    sent: list[tuple[str, dict[str, str]]] = []
    s3.meta.events.register("before-send.s3", lambda request, **kw: sent.append(
        (request.url, {k.lower(): v.decode() if isinstance(v, bytes) else v
                       for k, v in request.headers.items()})))
    files = {"small.m4s": os.urandom(40_000), "large.mp4": os.urandom(11 * 1024 * 1024)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        args = object_args("video/mp4", "no-store", digest, len(data), transfer)
        upload_all(s3, BUCKET, [Upload(tmp_path / name, f"x/{name}", len(data), args)], conn,
                   transfer)
    b64 = {n: base64.b64encode(hashlib.sha256(d).digest()).decode() for n, d in files.items()}
    small = [h for url, h in sent if url.endswith("/x/small.m4s")]
    assert len(small) == 1
    assert "expect" not in small[0]
    assert small[0]["x-amz-checksum-sha256"] == b64["small.m4s"]
    assert small[0]["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert "x-amz-checksum-sha256" in small[0]["authorization"].split("SignedHeaders=")[1]
    parts = {int(url.split("partNumber=")[1].split("&")[0]): h for url, h in sent
             if "/x/large.mp4?" in url and "partNumber=" in url}
    large, chunk = files["large.mp4"], 5 * 1024 * 1024
    assert {n: h["x-amz-checksum-sha256"] for n, h in parts.items()} == {
        n + 1: base64.b64encode(hashlib.sha256(large[i:i + chunk]).digest()).decode()
        for n, i in enumerate(range(0, len(large), chunk))}
    assert parts[1]["expect"] == parts[2]["expect"] == "100-continue"  # 5 MiB parts
    assert "expect" not in parts[3]  # the last 1 MiB
    head = s3.head_object(Bucket=BUCKET, Key="x/small.m4s", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == b64["small.m4s"]
    assert head["Metadata"]["sha256"] == hashlib.sha256(files["small.m4s"]).hexdigest()


@pytest.mark.parametrize(("cpus", "threads"), [(1, 1), (2, 2), (6, 6), (64, 8)])
def test_hashing_threads_follow_the_cores(cpus: int, threads: int) -> None:
    assert hash_threads(cpus) == threads
    assert 1 <= hash_threads() <= HASH_THREADS_MAX
