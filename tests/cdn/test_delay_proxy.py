"""testbed/delay.py: the emulated distance must be there, and the bytes must arrive intact."""

from __future__ import annotations

import hashlib
import http.client
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from testbed.delay import DelayProxy


class _Digest(BaseHTTPRequestHandler):
    """Answers a PUT with the sha256 of its body, then closes, as moto does."""

    protocol_version = "HTTP/1.1"

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = hashlib.sha256(body).hexdigest().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Digest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _put(url: str, body: bytes) -> tuple[bytes, float]:
    host, port = url.removeprefix("http://").split(":")
    start = time.monotonic()
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("PUT", "/x", body=body)
    answer = conn.getresponse().read()
    conn.close()
    return answer, time.monotonic() - start


def test_a_request_costs_the_handshake_and_one_round_trip(origin: str) -> None:
    body = bytes(range(256)) * 2000  # 512 KB: several chunks through each pump
    with DelayProxy(origin, round_trip=0.2) as proxy:
        answer, elapsed = _put(proxy.url, body)
    assert answer == hashlib.sha256(body).hexdigest().encode()
    assert elapsed >= 0.4  # handshake (1 RTT) + request and answer (1 RTT)
