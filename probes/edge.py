"""Emulated CDN edges on 127.0.0.1: known first-byte delay, bandwidth cap and failure modes.

Ground truth for the probe's tests and benchmark.  Each edge is a tiny HTTP/1.1 server on its own
port serving a release directory (and `/bytes/N` synthetic bodies) with:
  delay      seconds from the request's last byte to the status line (the first byte)
  bandwidth  bits/s cap: body chunk k leaves at first_byte + bytes_so_far / rate (the instant the
             bytes would have fully crossed such a link), so first->last byte = size / rate
  failure    503 | reset (RST mid-body) | stall (never answers) | truncate (FIN mid-body), on
             every `failure_every`-th request
  cache      header style of a CDN: cloudfront, cloudflare, fastly, akamai or none
Timers must be exact: asyncio's default epoll loop rounds its timeout up to whole milliseconds
(oversleeping ~1-2 ms); `select()` takes microseconds (~0.2 ms), so `serve()` runs on a
`SelectSelector` loop.  Run as `python -m probes.edge SPEC.json`: prints {"name": port, ...}.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import mimetypes
import os
import re
import selectors
import socket
import ssl
import struct
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

CACHE_STYLES = ("cloudfront", "cloudflare", "fastly", "akamai", "none")
FAILURES = ("503", "reset", "stall", "truncate")
_SYNTHETIC = re.compile(r"^/bytes/(\d+)$")
_CHUNK_SECONDS = 0.002  # pacing granularity of a capped body


@dataclass(frozen=True)
class EdgeSpec:
    name: str
    delay: float = 0.0
    bandwidth: float | None = None  # bits/s
    failure: str | None = None
    failure_every: int = 1
    cache: str = "cloudfront"
    root: str | None = None  # directory served at /
    port: int = 0
    certfile: str | None = None  # TLS when given
    keyfile: str | None = None

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> EdgeSpec:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in names})


def cache_headers(style: str, hit: bool) -> list[tuple[str, str]]:
    word = "HIT" if hit else "MISS"
    if style == "cloudfront":
        return [("X-Cache", f"{word.title()} from cloudfront"), ("Age", "42" if hit else "0")]
    if style == "cloudflare":
        return [("CF-Cache-Status", word), ("Age", "42" if hit else "0")]
    if style == "fastly":
        return [("X-Cache", f"MISS, {word}"), ("X-Served-By", "cache-edge-1")]
    if style == "akamai":
        return [("X-Cache", f"TCP_{word} from a1.deploy.akamaitechnologies.example")]
    return []


class _EdgeProtocol(asyncio.Protocol):
    def __init__(self, edge: _Edge) -> None:
        self.edge = edge
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.busy = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.buffer[:1] and not self.buffer[:1].isalpha():  # e.g. a TLS ClientHello (0x16)
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            self.transport.close()
            self.buffer = b""
            return
        if not self.busy and b"\r\n\r\n" in self.buffer:
            head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            self.busy = True
            self.respond(self.loop.time(), head.decode("latin-1"))

    def respond(self, received: float, head: str) -> None:
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        path = parts[1].split("?")[0] if len(parts) > 1 else "/"
        keep_alive = "connection: close" not in head.lower()
        self.edge.requests += 1
        failing = self.edge.spec.failure is not None and (
            self.edge.requests % max(self.edge.spec.failure_every, 1) == 0
        )
        failure = self.edge.spec.failure if failing else None
        if failure == "stall":
            return  # hold the connection open, say nothing
        status, body = self.edge.lookup(path)
        if failure == "503":
            status, body = 503, b"edge overloaded\n"
        hit = self.edge.requests % 4 != 1  # first of every four is a miss
        headers = [
            ("Content-Length", str(len(body))),
            ("Content-Type", mimetypes.guess_type(path)[0] or "application/octet-stream"),
            *cache_headers(self.edge.spec.cache, hit and status == 200),
            ("Connection", "keep-alive" if keep_alive and failure is None else "close"),
        ]
        reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}.get(status, "OK")
        header_bytes = (
            f"HTTP/1.1 {status} {reason}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        ).encode("latin-1")
        if failure in ("reset", "truncate"):
            body = body[: len(body) // 2]
        first_byte = received + self.edge.spec.delay
        self.loop.call_at(first_byte, self.send_head, header_bytes, body, first_byte,
                          failure, keep_alive)

    def send_head(self, head: bytes, body: bytes, first_byte: float, failure: str | None,
                  keep_alive: bool) -> None:
        if self.closed or self.transport is None:
            return
        rate = self.edge.spec.bandwidth
        if rate is None or not body:
            self.transport.write(head + body)
            self.finish(failure, keep_alive)
            return
        self.transport.write(head)
        chunk = max(1024, int(rate / 8 * _CHUNK_SECONDS))
        due = first_byte + min(chunk, len(body)) / (rate / 8)
        self.loop.call_at(due, self.send_chunk, body, 0, chunk, first_byte, rate / 8,
                          failure, keep_alive)

    def send_chunk(self, body: bytes, offset: int, chunk: int, first_byte: float,
                   bytes_per_s: float, failure: str | None, keep_alive: bool) -> None:
        if self.closed or self.transport is None:
            return
        end = min(offset + chunk, len(body))
        self.transport.write(body[offset:end])
        if end >= len(body):
            self.finish(failure, keep_alive)
            return
        due = first_byte + min(end + chunk, len(body)) / bytes_per_s
        self.loop.call_at(due, self.send_chunk, body, end, chunk, first_byte, bytes_per_s,
                          failure, keep_alive)

    def finish(self, failure: str | None, keep_alive: bool) -> None:
        assert self.transport is not None
        if failure == "reset":
            sock = self.transport.get_extra_info("socket")
            if sock is not None:  # SO_LINGER 0: close() sends RST instead of FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.loop.call_later(0.005, self.transport.abort)
            return
        if failure is not None or not keep_alive:
            self.transport.close()
            return
        self.busy = False
        if b"\r\n\r\n" in self.buffer:
            self.data_received(b"")


class _Edge:
    def __init__(self, spec: EdgeSpec) -> None:
        self.spec = spec
        self.requests = 0
        self.root = Path(spec.root).resolve() if spec.root else None
        self.files: dict[str, bytes] = {}

    def lookup(self, path: str) -> tuple[int, bytes]:
        match = _SYNTHETIC.match(path)
        if match:
            return 200, bytes(int(match.group(1)))
        if self.root is None:
            return 404, b"not found\n"
        if path not in self.files:
            target = (self.root / path.lstrip("/")).resolve()
            if not target.is_relative_to(self.root) or not target.is_file():
                return 404, b"not found\n"
            self.files[path] = target.read_bytes()
        return 200, self.files[path]


async def start_edges(specs: list[EdgeSpec]) -> tuple[list[asyncio.Server], dict[str, int]]:
    """Listen on 127.0.0.1 for every spec; returns the servers and name -> port."""
    loop = asyncio.get_running_loop()
    servers: list[asyncio.Server] = []
    ports: dict[str, int] = {}
    for spec in specs:
        edge = _Edge(spec)
        context = None
        if spec.certfile:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(spec.certfile, spec.keyfile)
        server = await loop.create_server(lambda e=edge: _EdgeProtocol(e), "127.0.0.1",
                                          spec.port, ssl=context, backlog=1024)
        servers.append(server)
        ports[spec.name] = server.sockets[0].getsockname()[1]
    return servers, ports


async def _serve_until_stdin_closes(specs: list[EdgeSpec]) -> None:
    servers, ports = await start_edges(specs)
    sys.stdout.write(json.dumps(ports) + "\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # parent closes stdin (or dies): stop
    for server in servers:
        server.close()


def serve(specs: list[EdgeSpec]) -> None:
    """Run edges on a select()-based loop (microsecond timers) until stdin closes.

    The edges are ground truth, so they ask for a higher CPU priority (nice -10; granted to root
    only): on a shared machine a busy neighbour must not delay their timers.  They sleep in
    select() between events, so the priority costs the neighbours nothing.
    """
    with contextlib.suppress(OSError):
        os.nice(-10)
    with asyncio.Runner(loop_factory=lambda: asyncio.SelectorEventLoop(
            selectors.SelectSelector())) as runner:
        runner.run(_serve_until_stdin_closes(specs))


if __name__ == "__main__":
    serve([EdgeSpec.from_dict(d) for d in json.loads(Path(sys.argv[1]).read_text())])
