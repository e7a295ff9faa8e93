"""HTTP/1.1 requests over one kept-alive socket: the direct listing's GETs and PUTs.

A no-op push is the origin's listing plus the start-up before it and the planning after:
0.37 s for 2,000 objects on loopback, 0.29 s of it the origin's (bench/push.py). http.client
costs about 12 ms to import (it parses headers with the email package), all of it before the
listing could leave. What S3 needs is small: a request line, headers, a body, and an answer
whose body has a Content-Length, comes in chunks, or runs to the end of the connection. An
answer that is not that raises BadAnswer, an OSError: a connection lost, which the callers
already handle (the listing falls back on botocore, a PUT retries).
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cdn.sigv4 import host_header

#: Bounds on what an answer's head (or a chunk's size line, or its trailers) may hold.
MAX_HEAD = 64 * 1024
#: Bodies these answers never have (RFC 9112 §6.3).
_NO_BODY = frozenset({204, 304})
_READ = 1 << 16
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
_DIGITS = re.compile(r"[0-9]{1,18}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")


class BadAnswer(OSError):
    """An answer that is not HTTP/1.x as S3 sends it, or one cut short."""


class _Stale(Exception):
    """The connection was closed (or reset) before any byte of the answer came."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names lower-cased; a repeated header keeps its last value
    body: bytes


class Http11:
    """Requests to the host of `base_url`, one at a time, over one connection that is
    reopened when the last answer closed it (or a request failed): connected within
    connect_timeout, then read_timeout per read (botocore's split). `context` (an
    ssl.SSLContext) is required for https."""

    def __init__(self, base_url: str, context: Any = None, connect_timeout: float = 10.0,
                 read_timeout: float = 60.0) -> None:
        parts = urlsplit(base_url)
        https = parts.scheme == "https"
        if https and context is None:
            raise ValueError("an https origin needs a TLS context")
        self._address = (parts.hostname or "", parts.port or (443 if https else 80))
        self._host = host_header(base_url)
        self._context = context if https else None
        self._timeouts = (connect_timeout, read_timeout)
        self._sock: socket.socket | None = None
        self._rest = b""  # bytes read past the last answer

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def request(self, method: str, target: str, headers: dict[str, str],
                body: bytes = b"") -> Answer:
        """`method target` (path and query, already encoded) with these headers, Host,
        Accept-Encoding and (for a body, unless given) Content-Length added; the whole answer
        read."""
        # Identity, as http.client asks: no header would let an origin or a proxy compress.
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._host}",
                 "Accept-Encoding: identity"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if (body or method in ("PUT", "POST")) and not any(
                name.lower() == "content-length" for name in headers):
            lines.append(f"Content-Length: {len(body)}")
        message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        reused = self._sock is not None
        try:
            return self._exchange(message, method)
        except _Stale:
            if not reused or method not in _IDEMPOTENT:
                raise BadAnswer("the origin closed the connection without answering") from None
        # A kept-alive connection that the origin closed while it was idle: nothing of an
        # answer came, so the request (idempotent) goes once more on a new connection, as
        # urllib3 does with a pooled connection.
        try:
            return self._exchange(message, method)
        except _Stale:
            raise BadAnswer("the origin closed the connection without answering") from None

    def _exchange(self, message: bytes, method: str) -> Answer:
        if self._sock is None:
            self._sock = self._connect()
        try:
            try:
                self._sock.sendall(message)
                if not self._rest:
                    self._rest = self._sock.recv(_READ)
                    if not self._rest:
                        raise _Stale
            except (BrokenPipeError, ConnectionResetError):
                raise _Stale from None
            answer, keep = self._read_answer(self._sock, method)
        except BaseException:
            self.close()
            raise
        if not keep:
            self.close()
        return answer

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self._address, timeout=self._timeouts[0])
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._context is not None:  # the handshake, within connect_timeout
                sock = self._context.wrap_socket(sock, server_hostname=self._address[0])
            sock.settimeout(self._timeouts[1])
        except BaseException:
            sock.close()
            raise
        self._rest = b""
        return sock

    def _read_answer(self, sock: socket.socket, method: str) -> tuple[Answer, bool]:
        while True:  # 1xx answers (100 Continue sent unasked) come before the real one
            status, version, headers = self._read_head(sock)
            if not 100 <= status < 200:
                break
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if method == "HEAD" or status in _NO_BODY:
            body = b""
        elif "transfer-encoding" in headers:
            if headers["transfer-encoding"].lower().rpartition(",")[2].strip() != "chunked":
                raise BadAnswer(f"unknown Transfer-Encoding {headers['transfer-encoding']!r}")
            body = self._read_chunked(sock)
        elif "content-length" in headers:
            length = headers["content-length"]
            if not _DIGITS.fullmatch(length):
                raise BadAnswer(f"bad Content-Length {length[:40]!r}")
            body = self._take(sock, int(length))
        else:  # the body runs to the end of the connection
            chunks = [self._rest]
            while chunk := sock.recv(_READ):
                chunks.append(chunk)
            body, self._rest, keep = b"".join(chunks), b"", False
        return Answer(status, headers, body), keep

    def _read_head(self, sock: socket.socket) -> tuple[int, str, dict[str, str]]:
        head = self._line(sock, b"\r\n\r\n").decode("latin-1")
        status_line, *lines = head.split("\r\n")
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not code.isdigit():
            raise BadAnswer(f"not an HTTP/1.x answer: {status_line[:80]!r}")
        headers: dict[str, str] = {}
        name = ""
        for line in lines:
            if line[:1] in (" ", "\t") and name:  # obsolete line folding (RFC 9112 §5.2)
                headers[name] += " " + line.strip()
                continue
            name, colon, value = line.partition(":")
            name = name.strip().lower()
            if not colon or not name:
                raise BadAnswer(f"malformed header line {line[:80]!r}")
            headers[name] = value.strip()
        return int(code), version, headers

    def _line(self, sock: socket.socket, end: bytes) -> bytes:
        """Bytes up to `end` (consumed, not returned)."""
        while (at := self._rest.find(end)) < 0:
            if len(self._rest) > MAX_HEAD:
                raise BadAnswer("answer head too long")
            self._rest += self._recv(sock)
        line, self._rest = self._rest[:at], self._rest[at + len(end):]
        return line

    def _recv(self, sock: socket.socket) -> bytes:
        chunk = sock.recv(_READ)
        if not chunk:
            raise BadAnswer("the origin closed the connection in mid-answer")
        return chunk

    def _take(self, sock: socket.socket, n: int) -> bytes:
        chunks, have = [self._rest], len(self._rest)
        while have < n:
            chunk = self._recv(sock)
            chunks.append(chunk)
            have += len(chunk)
        data = b"".join(chunks)
        self._rest = data[n:]
        return data[:n]

    def _read_chunked(self, sock: socket.socket) -> bytes:
        parts: list[bytes] = []
        while True:
            size_text = self._line(sock, b"\r\n").split(b";", 1)[0].strip()
            if not _HEX.fullmatch(size_text):
                raise BadAnswer(f"bad chunk size {size_text[:20]!r}")
            size = int(size_text, 16)
            if size == 0:
                while self._line(sock, b"\r\n"):  # trailers, up to an empty line
                    pass
                return b"".join(parts)
            parts.append(self._take(sock, size))
            if self._line(sock, b"\r\n"):
                raise BadAnswer("chunk not followed by CRLF")
