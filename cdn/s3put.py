"""Single-PUT uploads without botocore, when the listing went without it (cdn/s3direct.py).

botocore spends about 1.5 ms of CPU on every request (event hooks, parameter validation,
serialisation, signing, parsing the answer) and s3transfer adds its futures and read
callbacks: 3.1 s of client CPU for the 2,000 segments of a first push, on a machine whose
other core the origin needs (bench/push.py). Signed here by cdn/sigv4.py, the same PUTs cost
0.8 s. What goes on the wire is what botocore sends (cdn.s3.object_args: the sha256 computed
while hashing, signed and checked by S3; UNSIGNED-PAYLOAD, as payload signing is off), over
one kept-alive connection per worker, with botocore's standard retries: connection errors,
5xx, 429 and throttling codes, backed off exponentially with full jitter up to
Connection.max_attempts. Only bodies under 2 MiB come here (cdn.s3.EXPECT_CONTINUE_FROM):
larger ones go through botocore, which waits for "100 Continue" before sending them. In
adaptive mode (botocore's client-side rate limiting, the CLI's default) a throttling answer
also halves the requests in flight, and each success widens them again by one per window, up
to Connection.concurrency. Multipart uploads and their resumption stay with s3transfer.
"""

from __future__ import annotations

import queue
import random
import ssl
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from cdn.http11 import Http11
from cdn.s3 import Connection, OriginError, Upload, answered_error
from cdn.s3direct import DirectListing, open_connection
from cdn.sigv4 import sign_s3

#: What botocore's standard mode retries, besides connection errors.
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
#: Answers that ask the client to slow down (botocore's throttling codes).
THROTTLE_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
})
RETRY_CODES = THROTTLE_CODES | {"RequestTimeout", "RequestTimeoutException", "InternalError"}
#: botocore's cap on one back-off, in seconds.
MAX_BACKOFF = 20.0
#: cdn.s3.object_args's arguments as the headers botocore sends for them.
HEADERS = {"ContentType": "Content-Type", "CacheControl": "Cache-Control",
           "ChecksumSHA256": "x-amz-checksum-sha256",
           "ChecksumAlgorithm": "x-amz-sdk-checksum-algorithm"}
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


def put_all(
    target: DirectListing,
    uploads: Sequence[Upload],
    conn: Connection,
    on_bytes: Callable[[int], None] | None = None,
    on_done: Callable[[Upload], None] | None = None,
) -> dict[str, str]:
    """PUT every upload, conn.concurrency at a time; key -> ETag as S3 answered each.

    Returns only when every object is stored (the caller's phases rest on it). The first
    error that is not retried stops the workers taking more, and is raised. The workers are
    daemon threads: a Ctrl-C in the wait below leaves at once, and what is in flight then
    belongs to the phase already under way."""
    if not uploads:
        return {}
    todo: queue.SimpleQueue[Upload] = queue.SimpleQueue()
    for item in uploads:
        todo.put(item)
    stored: dict[str, str] = {}
    errors: list[BaseException] = []
    stop = threading.Event()
    reporting = threading.Lock()
    window = Window(conn.concurrency, adaptive=conn.retry_mode == "adaptive")

    def work() -> None:
        sender = _Sender(target, conn, window)
        try:
            while not stop.is_set():
                try:
                    item = todo.get_nowait()
                except queue.Empty:
                    return
                etag = _put(sender, item, conn.max_attempts, stop)
                with reporting:
                    stored[item.key] = etag
                    if on_bytes is not None:
                        on_bytes(item.size)
                    if on_done is not None:
                        on_done(item)
        except BaseException as exc:  # re-raised in the caller's thread below
            errors.append(exc)
            stop.set()
        finally:
            sender.close()

    workers = [threading.Thread(target=work, daemon=True, name="cdnpack-put")
               for _ in range(min(conn.concurrency, len(uploads)))]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.join()
    finally:
        stop.set()  # an interrupted wait: the workers take nothing more
    if errors:
        raise errors[0]
    return stored


def object_url(target: DirectListing, key: str) -> str:
    """The object's URL, its key URI-encoded as S3 signs it (every byte but unreserved ones
    and '/')."""
    return f"{target.base_url.rstrip('/')}/{quote(key, safe='/~')}"


def request_headers(extra_args: Mapping[str, Any], size: int) -> dict[str, str]:
    """cdn.s3.object_args's PutObject arguments as HTTP headers."""
    headers = {"Content-Length": str(size)}
    for name, value in extra_args.items():
        if name == "Metadata":
            headers.update((f"x-amz-meta-{k}", str(v)) for k, v in value.items())
        elif name in HEADERS:
            headers[HEADERS[name]] = str(value)
        else:
            raise ValueError(f"no header for PutObject argument {name}")
    return headers


class Window:
    """Requests in flight: at most `limit`; in adaptive mode halved by each throttling answer
    and widened by one per window of successes (additive increase, multiplicative decrease,
    as TCP does with its congestion window)."""

    def __init__(self, limit: int, adaptive: bool) -> None:
        self.limit, self.adaptive = limit, adaptive
        self.size = float(limit)
        self.in_flight = 0
        self._changed = threading.Condition()

    def __enter__(self) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self.in_flight < int(self.size))
            self.in_flight += 1

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()

    def throttled(self) -> None:
        if self.adaptive:
            with self._changed:
                self.size = max(1.0, self.size / 2)

    def succeeded(self) -> None:
        if self.adaptive and self.size < self.limit:
            with self._changed:
                self.size = min(float(self.limit), self.size + 1 / self.size)
                self._changed.notify_all()


class _Sender:
    """One worker's kept-alive connection, opened again after any failure."""

    def __init__(self, target: DirectListing, conn: Connection, window: Window) -> None:
        self.target, self.conn, self.window = target, conn, window
        self.connection: Http11 | None = None

    def send(self, url: str, body: bytes, headers: dict[str, str]
             ) -> tuple[int, str | None, bytes]:
        with self.window:
            if self.connection is None:
                self.connection = open_connection(self.target, self.conn.connect_timeout,
                                                  self.conn.read_timeout)
            answer = self.connection.request("PUT", urlsplit(url).path, headers, body)
        return answer.status, answer.headers.get("etag"), answer.body

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _put(sender: _Sender, item: Upload, attempts: int, stop: threading.Event) -> str:
    url = object_url(sender.target, item.key)
    body = item.path.read_bytes()  # under 2 MiB (publish._needs_botocore)
    headers = request_headers(item.extra_args, len(body))
    context = f"upload of {item.key} failed"
    failure = ""
    for attempt in range(1, attempts + 1):
        signed = sign_s3("PUT", url, sender.target.credentials, sender.target.region,
                         datetime.now(UTC), headers, payload_sha256=UNSIGNED_PAYLOAD)
        try:
            status, etag, answer = sender.send(url, body, signed)
        except ssl.SSLCertVerificationError as exc:  # not the network's doing: no retry
            sender.close()
            raise OriginError(f"{context}: {exc.verify_message or exc}") from exc
        except OSError as exc:  # cdn/http11.py's BadAnswer included
            sender.close()
            failure = str(exc) or type(exc).__name__
        else:
            if status == 200:
                if not etag:
                    raise OriginError(f"{context}: S3 answered without an ETag")
                sender.window.succeeded()
                return etag.strip('"')
            code, message = error_of(answer)
            if status not in RETRY_STATUS and code not in RETRY_CODES:
                raise answered_error(code or str(status), message, context)
            if status == 429 or code in THROTTLE_CODES:
                sender.window.throttled()
            failure = f"HTTP {status} {code}".strip()
        if attempt < attempts and stop.wait(min(MAX_BACKOFF, random.random() * 2.0 ** attempt)):
            break  # another worker failed, or the push was stopped
    raise OriginError(f"{context} after {attempt} attempt{'s' if attempt > 1 else ''}: {failure}")


def error_of(answer: bytes) -> tuple[str, str]:
    """An S3 error document's code and message ('' where the body is not one)."""
    try:
        root = ET.fromstring(answer)
    except ET.ParseError:
        return "", ""
    return root.findtext("Code") or "", root.findtext("Message") or ""

