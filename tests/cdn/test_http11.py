"""cdn/http11.py against a real socket on 127.0.0.1 that answers with scripted bytes."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdn.http11 import MAX_HEAD, BadAnswer, Http11

#: What the scripted origin does with one request: the raw bytes to answer, and whether to
#: close the connection afterwards.
Reply = tuple[bytes, bool]


class Origin:
    def __init__(self, replies: list[Reply]) -> None:
        self.replies = replies
        self.requests: list[bytes] = []
        self.connections = 0
        self.url = ""


def _read_request(conn: socket.socket, pending: bytes) -> tuple[bytes, bytes] | None:
    while b"\r\n\r\n" not in pending:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        pending += chunk
    head, _, rest = pending.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += conn.recv(65536)
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


@contextmanager
def scripted(replies: list[Reply], tls: tuple[Path, Path] | None = None) -> Iterator[Origin]:
    """Answers each request with the next reply, in order, whatever connection it comes on
    (over TLS with (cert, key))."""
    origin = Origin(list(replies))
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)  # accept() wakes up to see `stop`
    origin.url = f"http{'s' if tls else ''}://127.0.0.1:{server.getsockname()[1]}"
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
        server = context.wrap_socket(server, server_side=True)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except ssl.SSLError:  # a client that did not trust us
                continue
            except OSError:
                return
            origin.connections += 1
            with conn:
                pending = b""
                while origin.replies:
                    got = _read_request(conn, pending)
                    if got is None:
                        break
                    request, pending = got
                    origin.requests.append(request)
                    answer, close = origin.replies.pop(0)
                    conn.sendall(answer)
                    if close:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield origin
    finally:
        stop.set()
        thread.join(5)
        server.close()


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def test_two_requests_share_one_kept_alive_connection() -> None:
    with scripted([(ok(b"first"), False), (ok(b"second", b"ETag: \"e\"\r\n"), False)]) as origin:
        client = Http11(origin.url, connect_timeout=5, read_timeout=5)
        first = client.request("GET", "/b?list-type=2", {"X-Amz-Date": "d"})
        second = client.request("PUT", "/b/k", {"Content-Type": "video/mp4"}, b"abc")
        client.close()
    assert (first.status, first.body) == (200, b"first")
    assert (second.body, second.headers["etag"]) == (b"second", '"e"')
    assert origin.connections == 1
    get, put = origin.requests
    port = origin.url.rsplit(":", 1)[1]
    assert get.startswith(b"GET /b?list-type=2 HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n" % port.encode())
    assert b"X-Amz-Date: d\r\n" in get
    assert b"Accept-Encoding: identity\r\n" in get  # as http.client: nothing compressed
    assert b"content-length" not in get.lower()
    assert put.endswith(b"Content-Length: 3\r\n\r\nabc")


def test_a_given_content_length_is_sent_once() -> None:
    with scripted([(ok(b""), False)]) as origin:
        Http11(origin.url).request("PUT", "/b/k", {"Content-Length": "3"}, b"abc")
    assert origin.requests[0].lower().count(b"content-length") == 1


def test_a_chunked_body_with_extensions_and_trailers_is_joined() -> None:
    answer = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5;name=value\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n")
    with scripted([(answer, False), (ok(b"again"), False)]) as origin:
        client = Http11(origin.url)
        assert client.request("GET", "/", {}).body == b"hello, world"
        assert client.request("GET", "/", {}).body == b"again"  # nothing left over
    assert origin.connections == 1


def test_an_answer_that_closes_is_read_to_the_end_and_the_next_request_reconnects() -> None:
    with scripted([(b"HTTP/1.0 200 OK\r\n\r\nto the end", True),
                   (ok(b"x", b"Connection: close\r\n"), True), (ok(b"y"), False)]) as origin:
        client = Http11(origin.url)
        assert client.request("GET", "/", {}).body == b"to the end"
        assert client.request("GET", "/", {}).body == b"x"
        assert client.request("GET", "/", {}).body == b"y"
    assert origin.connections == 3


def test_interim_answers_are_skipped_and_a_204_has_no_body() -> None:
    with scripted([(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"done"), False),
                   (b"HTTP/1.1 204 No Content\r\n\r\n", False), (ok(b"next"), False)]) as origin:
        client = Http11(origin.url)
        assert client.request("PUT", "/k", {}, b"x").body == b"done"
        assert client.request("GET", "/", {}).status == 204
        assert client.request("GET", "/", {}).body == b"next"


def test_a_connection_the_origin_closed_while_idle_is_replaced_once() -> None:
    """The origin closes after answering without saying so: the next request finds the
    connection closed before any answer, and goes again on a new one."""
    with scripted([(ok(b"one"), True), (ok(b"two"), False)]) as origin:
        client = Http11(origin.url)
        assert client.request("GET", "/", {}).body == b"one"
        assert client.request("GET", "/", {}).body == b"two"
    assert origin.connections == 2
    assert len(origin.requests) == 2


def test_a_new_connection_closed_without_an_answer_is_an_error() -> None:
    with scripted([(b"", True)]) as origin, pytest.raises(BadAnswer, match="without answering"):
        Http11(origin.url).request("GET", "/", {})


@pytest.mark.parametrize(("answer", "message"), [
    (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x answer"),
    (b"HTTP/1.1 2x0 OK\r\n\r\n", "not an HTTP/1.x answer"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "unknown Transfer-Encoding"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
     "bad chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n",
     "not followed by CRLF"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "in mid-answer"),
    (b"HTTP/1.1 200 OK\r\nX: " + b"a" * (MAX_HEAD + 10), "too long"),
])
def test_an_answer_s3_would_not_send_is_an_os_error_and_closes(answer: bytes,
                                                                 message: str) -> None:
    with scripted([(answer, True), (ok(b"fresh"), False)]) as origin:
        client = Http11(origin.url, read_timeout=5)
        with pytest.raises(BadAnswer, match=message) as raised:
            client.request("GET", "/", {})
        assert isinstance(raised.value, OSError)  # handled as a lost connection
        assert client.request("GET", "/", {}).body == b"fresh"
    assert origin.connections == 2


def test_a_silent_origin_times_out() -> None:
    server = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never answers
    try:
        client = Http11(f"http://127.0.0.1:{server.getsockname()[1]}", read_timeout=0.3)
        with pytest.raises(TimeoutError):
            client.request("GET", "/", {})
    finally:
        server.close()


def test_over_tls_the_origin_is_verified(certificate: tuple[Path, Path]) -> None:
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nsafe\r\n0\r\n\r\n"
    with scripted([(answer, False), (ok(b"again"), False)], certificate) as origin:
        trusting = Http11(origin.url, ssl.create_default_context(cafile=str(certificate[0])))
        assert trusting.request("GET", "/", {}).body == b"safe"
        assert trusting.request("GET", "/", {}).body == b"again"
        with pytest.raises(ssl.SSLCertVerificationError):
            Http11(origin.url, ssl.create_default_context()).request("GET", "/", {})
    assert origin.connections == 1  # the refused handshake never became a connection


def test_https_needs_a_context() -> None:
    with pytest.raises(ValueError, match="TLS context"):
        Http11("https://127.0.0.1:1")



#: Pieces an answer is made of, for the fuzzer to put together in any order.
PIECES = [b"HTTP/1.1 200 OK\r\n", b"HTTP/1.0 404 x\r\n", b"HTTP/1.1 100 Continue\r\n\r\n",
          b"Content-Length: 3\r\n", b"Content-Length: 99\r\n", b"Transfer-Encoding: chunked\r\n",
          b"Connection: close\r\n", b" folded\r\n", b"\r\n", b"3\r\nabc\r\n", b"0\r\n\r\n",
          b"ff;x=1\r\n", b"\xff\xfe", b":", b"\r\n\r\n"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=40)), max_size=12))
def test_any_answer_is_read_or_refused_as_a_lost_connection(parts: list[bytes]) -> None:
    """Whatever an origin sends (then closing), a request ends with an Answer or an OSError
    (BadAnswer, a reset, a timeout): never another exception, never a hang."""
    with scripted([(b"".join(parts), True)]) as origin:
        try:
            answer = Http11(origin.url, connect_timeout=5, read_timeout=5).request("GET", "/", {})
        except OSError:
            return
    assert 0 <= answer.status <= 999
    assert not 100 <= answer.status < 200  # interim answers are skipped, never returned
