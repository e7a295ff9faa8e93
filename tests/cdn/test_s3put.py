"""Single PUTs signed without botocore (cdn/s3put.py): against moto, and against a scripted
HTTP server for the answers moto never gives (throttling, refusals, dropped connections)."""

from __future__ import annotations

import base64
import hashlib
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cdn.s3 import OriginError, Transfer, Upload, object_args, parse_s3_url
from cdn.s3direct import DirectListing, direct_listing
from cdn.s3put import Window, object_url, put_all
from cdn.sigv4 import Credentials
from packager.errors import InputError
from testbed.origin import local_connection
from tests.moto import MotoServer

BUCKET = "media-origin"


def upload(tmp_path: Path, name: str, key: str, data: bytes) -> Upload:
    path = tmp_path / name
    path.write_bytes(data)
    args = object_args("video/mp4", "public, max-age=30", hashlib.sha256(data).hexdigest(),
                       len(data), Transfer())
    return Upload(path, key, len(data), args)


def test_objects_are_stored_under_their_keys_with_headers_and_etags(
    moto_s3: MotoServer, tmp_path: Path
) -> None:
    """Keys that need encoding, the headers viewers get, the checksum S3 keeps, and the
    ETag (MD5) each answer carries."""
    s3 = moto_s3.client()
    s3.create_bucket(Bucket=BUCKET)
    conn = local_connection(moto_s3.url)
    target = direct_listing(conn, parse_s3_url(f"s3://{BUCKET}/x"))
    assert target is not None
    bodies = {"x/a b+c~(1).m4s": b"first" * 1000, "x/ü/seg_00001.m4s": b"second" * 999,
              "x/empty.vtt": b""}
    items = [upload(tmp_path, f"f{i}", key, data) for i, (key, data) in enumerate(bodies.items())]
    done: list[str] = []
    sent: list[int] = []
    answered = put_all(target, items, replace(conn, concurrency=2), sent.append,
                       lambda item: done.append(item.key))
    assert answered == {k: hashlib.md5(d).hexdigest() for k, d in bodies.items()}
    assert sorted(done) == sorted(bodies)
    assert sum(sent) == sum(len(d) for d in bodies.values())
    for key, data in bodies.items():
        head = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data
        assert head["ContentType"] == "video/mp4"
        assert head["CacheControl"] == "public, max-age=30"
        assert head["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()
        assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()


class Script:
    """What the scripted origin answers, request by request, and what it was sent."""

    def __init__(self, answers: list[tuple[int, bytes] | str]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    def next(self) -> tuple[int, bytes] | str:
        with self.lock:
            return self.answers.pop(0) if self.answers else (200, b"")


def error(code: str) -> bytes:
    return f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>no</Message></Error>".encode()


@contextmanager
def scripted_origin(tls: tuple[Path, Path] | None = None
                    ) -> Iterator[tuple[ThreadingHTTPServer, Script]]:
    """A threaded HTTP server answering PUTs as its Script says (over TLS with (cert, key))."""
    script = Script([])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with script.lock:
                script.requests.append(("PUT", self.path, dict(self.headers.items()), body))
            answer = script.next()
            if answer == "drop":
                self.close_connection = True
                self.connection.close()
                return
            assert not isinstance(answer, str)
            status, payload = answer
            self.send_response(status)
            if status == 200:
                self.send_header("ETag", f'"{hashlib.md5(body).hexdigest()}"')
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, script
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def scripted() -> Iterator[tuple[ThreadingHTTPServer, Script]]:
    with scripted_origin() as running:
        yield running


def target_of(server: ThreadingHTTPServer, scheme: str = "http",
              ca_bundle: str | None = None) -> DirectListing:
    host, port = server.server_address[:2]
    return DirectListing(f"{scheme}://{host!s}:{port}/{BUCKET}", Credentials("AKID", "SECRET"),
                         "eu-west-1", ca_bundle)


CONN = replace(local_connection("http://unused"), concurrency=1, max_attempts=3)


def test_what_goes_on_the_wire_is_what_botocore_sends(
    scripted: tuple[ThreadingHTTPServer, Script], tmp_path: Path
) -> None:
    """The sha256 we computed, signed; UNSIGNED-PAYLOAD (payload signing is off, as for
    botocore's client); no "Expect: 100-continue" wait; the key URI-encoded."""
    server, script = scripted
    data = b"segment" * 100
    item = upload(tmp_path, "s", "releases/a b/ü.m4s", data)
    put_all(target_of(server), [item], CONN)
    [(_, path, headers, body)] = script.requests
    headers = {k.lower(): v for k, v in headers.items()}
    assert body == data
    assert path == f"/{BUCKET}/releases/a%20b/%C3%BC.m4s"
    assert object_url(target_of(server), item.key).endswith(path)
    assert headers["content-type"] == "video/mp4"
    assert headers["cache-control"] == "public, max-age=30"
    assert headers["x-amz-checksum-sha256"] == base64.b64encode(
        hashlib.sha256(data).digest()).decode()
    assert headers["x-amz-sdk-checksum-algorithm"] == "SHA256"
    assert headers["x-amz-meta-sha256"] == hashlib.sha256(data).hexdigest()
    assert headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert "expect" not in headers
    signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"x-amz-checksum-sha256", "content-type", "x-amz-meta-sha256", "host"} <= set(signed)
    assert "/eu-west-1/s3/aws4_request" in headers["authorization"]


@pytest.mark.slow
def test_throttling_server_errors_and_dropped_connections_are_retried(
    scripted: tuple[ThreadingHTTPServer, Script], tmp_path: Path
) -> None:
    server, script = scripted
    script.answers = [(503, error("SlowDown")), "drop", (400, error("RequestTimeout"))]
    item = upload(tmp_path, "s", "k.m4s", b"abc")
    answered = put_all(target_of(server), [item], replace(CONN, max_attempts=4))
    assert answered == {"k.m4s": hashlib.md5(b"abc").hexdigest()}
    assert len(script.requests) == 4


@pytest.mark.parametrize(("status", "code", "raised", "says"), [
    (403, "AccessDenied", OriginError, "upload of k.m4s failed: access denied (AccessDenied)"),
    (404, "NoSuchBucket", InputError, "upload of k.m4s failed: no such bucket"),
    (400, "BadDigest", OriginError, "upload of k.m4s failed: BadDigest no"),
])
def test_a_refusal_is_not_retried_and_says_what_s3_answered(
    scripted: tuple[ThreadingHTTPServer, Script], tmp_path: Path, status: int, code: str,
    raised: type[Exception], says: str,
) -> None:
    server, script = scripted
    script.answers = [(status, error(code))]
    with pytest.raises(raised) as stopped:
        put_all(target_of(server), [upload(tmp_path, "s", "k.m4s", b"abc")], CONN)
    assert str(stopped.value) == says
    assert len(script.requests) == 1


@pytest.mark.slow
def test_retries_end_at_max_attempts_and_nothing_more_is_sent(
    scripted: tuple[ThreadingHTTPServer, Script], tmp_path: Path
) -> None:
    server, script = scripted
    script.answers = [(500, error("InternalError"))] * 2
    items = [upload(tmp_path, f"s{i}", f"k{i}.m4s", b"abc") for i in range(20)]
    with pytest.raises(OriginError, match=r"upload of k0.m4s failed after 2 attempts: "
                                          r"HTTP 500 InternalError"):
        put_all(target_of(server), items, replace(CONN, max_attempts=2))
    assert len(script.requests) == 2  # one worker: nothing after the failure


def test_adaptive_mode_halves_the_window_on_throttling_and_widens_it_by_one_per_window() -> None:
    window = Window(8, adaptive=True)
    for size in (4, 2, 1, 1):
        window.throttled()
        assert window.size == size
    sizes = []
    for _ in range(40):
        window.succeeded()
        sizes.append(window.size)
    assert sizes[:3] == pytest.approx([2.0, 2.5, 2.9])  # one more per window of successes
    assert sizes == sorted(sizes)
    assert sizes[-1] == 8  # and never past the limit
    standard = Window(8, adaptive=False)
    standard.throttled()
    assert standard.size == 8


def test_no_more_requests_are_in_flight_than_the_window_allows() -> None:
    window = Window(8, adaptive=True)
    window.throttled()
    window.throttled()  # 2 in flight at most
    lock = threading.Lock()
    seen: list[int] = []
    release = threading.Event()

    def request() -> None:
        with window:
            with lock:
                seen.append(window.in_flight)
            release.wait(0.05)

    threads = [threading.Thread(target=request) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 12
    assert max(seen) <= 2


def test_puts_go_over_https_verified_against_the_bundle(
    certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    """Every worker's connection verifies the origin against the bundle botocore would use
    (here the origin's own certificate); a bundle that does not vouch for it fails the push."""
    items = [upload(tmp_path, f"s{i}", f"k{i}.m4s", bytes([i]) * 1000) for i in range(8)]
    with scripted_origin(certificate) as (server, script):
        trusted = target_of(server, "https", str(certificate[0]))
        answered = put_all(trusted, items, replace(CONN, concurrency=4))
        assert answered == {f"k{i}.m4s": hashlib.md5(bytes([i]) * 1000).hexdigest()
                            for i in range(8)}
        assert len(script.requests) == 8
        with pytest.raises(OriginError, match=r"upload of k0\.m4s failed: self-signed"):
            put_all(target_of(server, "https"), items[:1], CONN)  # and not retried
        assert len(script.requests) == 8
