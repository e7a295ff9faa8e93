"""Emulated CDN edges on 127.0.0.1: known first-byte delay, bandwidth cap and failure modes.

Ground truth for the probe's tests and benchmark, and the CDNs of `cdnpack demo` and the browser
tests.  Each edge is a tiny HTTP/1.1 server on its own port serving a release directory, or pulling
from an origin URL (an S3 bucket prefix) like a CDN, plus `/bytes/N` synthetic bodies, with:
  delay      seconds from the request's last byte to the status line (the first byte)
  bandwidth  bits/s cap: body chunk k leaves at first_byte + bytes_so_far / rate (the instant the
             bytes would have fully crossed such a link), so first->last byte = size / rate
  failure    503 | reset (RST mid-body) | stall (never answers) | truncate (FIN mid-body) |
             drop (RST as soon as the request arrives, nothing sent), on every
             `failure_every`-th request
  function   a CloudFront Function's code (and `kvs`, its KeyValueStore in the import format)
             run, as CloudFront runs a viewer-request function, on every request but CORS
             preflights, in node (testbed/cloudfront_runtime.py: the published code itself);
             the viewer's CloudFront-Viewer-Country is the request's own header of that name
             when it has one (a test's viewer sets it), else `country`
  fault_plan or request by request: the n-th request gets plan[(n - 1) % len(plan)], a
             failure name or "" for none (a seeded plan: tests know what the edge did)
  cache      header style of a CDN: cloudfront, cloudflare, fastly, akamai or none
  origin     http://HOST:PORT/PREFIX/: objects are fetched there on a miss and kept for the
             origin's Cache-Control max-age; origin 404s are kept 10 s (CloudFront's default
             error-caching TTL), which is why a release must never publish a manifest before the
             objects it names
  access_log a directory: every served request is logged as CloudFront logs it, in its standard
             and real-time formats (testbed/accesslog.py), flushed as new files every
             `log_flush` seconds and when the edge stops; `country` is the viewers' c-country
Every answer carries `Access-Control-Allow-Origin: *` (players on another origin read it), OPTIONS
preflights are answered, HEAD and single byte ranges (206) work.
Timers must be exact: asyncio's default epoll loop rounds its timeout up to whole milliseconds
(oversleeping ~1-2 ms); `select()` takes microseconds (~0.2 ms), so `serve()` runs on a
`SelectSelector` loop.  Run as `python -m testbed.edges SPEC.json` (or `edge_process()`); it prints
{"name": port, ...} and serves until its stdin closes.
Runtime control (what a test does to a CDN mid-playback): each JSON line on the edge process's
stdin is a command answered by one JSON line on its stdout (`EdgeControl`): `{"set": NAME,
"failure": "503", ...}` changes a running edge's delay, bandwidth or failure mode, and
`{"log": NAME, "since": N}` returns the requests an edge with `record` set has received (its
loop's monotonic time, which is the machine's CLOCK_MONOTONIC, and the path) from the N-th on;
`{"served": NAME, "since": N}` when each answer's first and last byte really left.
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
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from packager.errors import EndpointError
from packager.output.release import CONTENT_TYPES
from packager.tools import spawn
from testbed.accesslog import AccessLog, Served
from testbed.cloudfront_runtime import FunctionProcess, viewer_request

CACHE_STYLES = ("cloudfront", "cloudflare", "fastly", "akamai", "none")
FAILURES = ("503", "reset", "stall", "truncate", "drop")
_SYNTHETIC = re.compile(r"^/bytes/(\d+)$")
_CHUNK_SECONDS = 0.002  # pacing granularity of a capped body
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_MAX_AGE = re.compile(r"max-age=(\d+)")
_ERROR_TTL = 10.0  # seconds an origin error is cached (CloudFront's default)
_DEFAULT_TTL = 86400.0  # no max-age from the origin: CloudFront's default TTL
#: What the edges answer: a release's own types, and the other files tests serve beside them.
_CONTENT_TYPES = {**CONTENT_TYPES, ".json": "application/json",
                  ".key": "application/octet-stream"}
_REASONS = {200: "OK", 204: "No Content", 206: "Partial Content", 400: "Bad Request",
            403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            416: "Range Not Satisfiable", 451: "Unavailable For Legal Reasons",
            502: "Bad Gateway", 503: "Service Unavailable"}
#: Headers an edge writes itself, whatever a function's answer says.
_EDGE_HEADERS = ("content-length", "content-type", "connection",
                 "access-control-allow-origin")


@dataclass(frozen=True)
class EdgeSpec:
    name: str
    delay: float = 0.0
    bandwidth: float | None = None  # bits/s
    failure: str | None = None
    failure_every: int = 1
    cache: str = "cloudfront"
    root: str | None = None  # directory served at /
    origin: str | None = None  # or pull from this http URL prefix (ends with "/")
    port: int = 0
    certfile: str | None = None  # TLS when given
    keyfile: str | None = None
    access_log: str | None = None  # directory for CloudFront-format access logs
    country: str | None = None  # ISO 3166-1 alpha-2 of the viewers (c-country)
    edge_location: str = "IAD89-P1"
    distribution: str = "E2CDNPACKTEST"
    log_flush: float = 0.5  # seconds between log deliveries
    fault_plan: tuple[str, ...] = ()  # per request: a FAILURES name or "" (overrides failure)
    record: bool = False  # keep (time, path) of every request, for EdgeControl.requests
    function: str | None = None  # a CloudFront Function (viewer request), run in node
    kvs: str | None = None  # its KeyValueStore, in the import format

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> EdgeSpec:
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in doc.items() if k in names}
        if "fault_plan" in known:
            known["fault_plan"] = tuple(known["fault_plan"])
        return cls(**known)


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
        self.entry: dict[str, Any] | None = None  # the request being answered, for the log

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
        method = parts[0].upper()
        path = parts[1].split("?")[0] if len(parts) > 1 else "/"
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (line.partition(":") for line in lines[1:])}
        keep_alive = headers.get("connection", "").lower() != "close"
        if self.edge.access_log is not None or self.edge.spec.record:
            self.entry = {"wall": time.time(), "received": received, "method": method,
                          "target": parts[1] if len(parts) > 1 else "/", "headers": headers,
                          "cs_bytes": len(head) + 4}
        self.edge.requests += 1
        if self.edge.spec.record:
            self.edge.log.append((received, path))
        failing = self.edge.spec.failure is not None and (
            self.edge.requests % max(self.edge.spec.failure_every, 1) == 0
        )
        failure = self.edge.spec.failure if failing else None
        plan = self.edge.spec.fault_plan
        if plan:
            failure = plan[(self.edge.requests - 1) % len(plan)] or None
        if failure == "drop":
            if self.entry is not None:
                self.entry.update(status=0, sc_bytes=0, content_type="-", content_length=0,
                                  hit=None, extra={})
            self.finish("reset", keep_alive=False)
            return
        if failure == "stall":
            return  # hold the connection open, say nothing
        if method == "OPTIONS":  # CORS preflight
            allow = headers.get("access-control-request-headers", "*")
            extra = [("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS"),
                     ("Access-Control-Allow-Headers", allow), ("Access-Control-Max-Age", "600")]
            self.answer(received, 204, b"", "", None, failure, keep_alive, method, extra)
            return
        if method not in ("GET", "HEAD"):
            self.answer(received, 405, b"method not allowed\n", "", None, failure, keep_alive,
                        method)
            return
        if self.edge.function is not None:
            target, _, query = (parts[1] if len(parts) > 1 else "/").partition("?")
            event = viewer_request(
                target, headers.get("cloudfront-viewer-country", self.edge.spec.country),
                {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}, method,
                headers.get("host", "-"))
            event["request"]["headers"].update(
                {k: {"value": v} for k, v in headers.items() if k not in event["request"][
                    "headers"]})
            task = self.loop.create_task(self.edge.function.run(event))
            task.add_done_callback(lambda t: self.ran(t, received, path, headers, failure,
                                                      keep_alive, method))
            return
        self.serve(received, path, headers, failure, keep_alive, method)

    def ran(self, task: asyncio.Task[dict[str, Any]], received: float, path: str,
            headers: dict[str, str], failure: str | None, keep_alive: bool,
            method: str) -> None:
        """The function's answer: a response of its own, or the request (maybe rewritten)
        to serve; a function that failed is a 503, as CloudFront answers then."""
        if self.closed:
            return
        try:
            answer = task.result()
        except (OSError, ValueError) as exc:
            answer = {"error": str(exc)}
        result = answer.get("result")
        if not isinstance(result, dict):
            self.answer(received, 503, b"the function failed\n", path, None, failure,
                        keep_alive, method)
            return
        if "statusCode" in result:
            returned = {k.lower(): str(v.get("value", "")) for k, v in
                        (result.get("headers") or {}).items()}
            body = str((result.get("body") or {}).get("data", "")).encode()
            self.answer(received, int(result["statusCode"]), body, path, None, failure,
                        keep_alive, method,
                        [(k, v) for k, v in returned.items() if k not in _EDGE_HEADERS],
                        content_type=returned.get("content-type", ""))
            return
        self.serve(received, str(result["uri"]), headers, failure, keep_alive, method)

    def serve(self, received: float, path: str, headers: dict[str, str], failure: str | None,
              keep_alive: bool, method: str) -> None:
        """The object at `path`: pulled from the origin (through the cache), or local."""
        if self.edge.origin is not None and not _SYNTHETIC.match(path):
            task = self.loop.create_task(self.edge.pull(path))
            task.add_done_callback(lambda t: self.pulled(t, received, path, headers, failure,
                                                         keep_alive, method))
            return
        status, body = self.edge.lookup(path)
        hit = self.edge.requests % 4 != 1  # first of every four is a miss
        self.answer(received, status, body, path, hit, failure, keep_alive, method,
                    range_header=headers.get("range"))

    def pulled(self, task: asyncio.Task[tuple[int, bytes, str, bool]], received: float,
               path: str, headers: dict[str, str], failure: str | None, keep_alive: bool,
               method: str) -> None:
        if self.closed:
            return
        try:
            status, body, content_type, hit = task.result()
        except (TimeoutError, OSError, ValueError):
            status, body, content_type, hit = 502, b"origin unreachable\n", "", False
        self.answer(received, status, body, path, hit, failure, keep_alive, method,
                    range_header=headers.get("range"), content_type=content_type)

    def answer(self, received: float, status: int, body: bytes, path: str, hit: bool | None,
               failure: str | None, keep_alive: bool, method: str,
               extra: Sequence[tuple[str, str]] = (), range_header: str | None = None,
               content_type: str = "") -> None:
        if failure == "503":
            status, body = 503, b"edge overloaded\n"
        extra = [*extra, ("Access-Control-Allow-Origin", "*"),
                 ("Access-Control-Expose-Headers", "Content-Length, Content-Range, Age")]
        if status == 200:
            extra.append(("Accept-Ranges", "bytes"))
            if range_header:
                status, body, ranged = _byte_range(range_header, body)
                extra.extend(ranged)
        suffix = Path(path).suffix
        headers = [
            ("Content-Length", str(len(body))),
            ("Content-Type", content_type or _CONTENT_TYPES.get(suffix)
             or mimetypes.guess_type(path)[0] or "application/octet-stream"),
            *(cache_headers(self.edge.spec.cache, hit) if hit is not None and status < 300
              else []),
            *extra,
            ("Connection", "keep-alive" if keep_alive and failure is None else "close"),
        ]
        header_bytes = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        ).encode("latin-1")
        if method == "HEAD":
            body = b""
        if failure in ("reset", "truncate"):
            body = body[: len(body) // 2]
        if self.entry is not None:
            self.entry.update(status=status, sc_bytes=len(header_bytes) + len(body),
                              content_type=dict(headers)["Content-Type"],
                              content_length=int(dict(headers)["Content-Length"]),
                              hit=hit, extra=dict(extra))
        first_byte = max(received + self.edge.spec.delay, self.loop.time())
        self.loop.call_at(first_byte, self.send_head, header_bytes, body, first_byte,
                          failure, keep_alive)

    def send_head(self, head: bytes, body: bytes, first_byte: float, failure: str | None,
                  keep_alive: bool) -> None:
        if self.closed or self.transport is None:
            return
        # The body is paced from when the first byte really left: a timer that fired late on a
        # loaded machine must not squeeze the body into less than size / rate.
        first_byte = self.loop.time()
        if self.entry is not None:
            self.entry["first_byte"] = first_byte
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
        if self.entry is not None:
            done = self.loop.time()
            if self.edge.access_log is not None:
                self.edge.log_served(self.entry, done, self.transport.get_extra_info("peername"))
            if self.edge.spec.record:
                self.edge.served.append(
                    (self.entry["received"], self.entry.get("first_byte", done), done))
            self.entry = None
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


def _byte_range(header: str, body: bytes) -> tuple[int, bytes, list[tuple[str, str]]]:
    """One `bytes=a-b` range (RFC 9110 §14.1.2); anything else is served whole."""
    match = _RANGE.match(header.strip())
    if match is None or not (match.group(1) or match.group(2)):
        return 200, body, []
    size = len(body)
    if match.group(1):
        first = int(match.group(1))
        last = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
    else:  # suffix range: the last N bytes
        first, last = max(size - int(match.group(2)), 0), size - 1
    if first >= size or first > last:
        return 416, b"", [("Content-Range", f"bytes */{size}")]
    return 206, body[first:last + 1], [("Content-Range", f"bytes {first}-{last}/{size}")]


class _Edge:
    def __init__(self, spec: EdgeSpec) -> None:
        self.spec = spec
        self.requests = 0
        self.log: list[tuple[float, str]] = []  # (loop time, path) when spec.record
        #: (request's last byte in, first byte out, last byte out) in loop time, spec.record
        self.served: list[tuple[float, float, float]] = []
        self.root = Path(spec.root).resolve() if spec.root else None
        self.files: dict[str, bytes] = {}
        self.origin = urlsplit(spec.origin) if spec.origin else None
        # path -> (expires at, status, body, content type), like a CDN's object cache
        self.cache: dict[str, tuple[float, int, bytes, str]] = {}
        self.inflight: dict[str, asyncio.Future[tuple[int, bytes, str]]] = {}
        self.access_log = (AccessLog(Path(spec.access_log), spec.distribution)
                           if spec.access_log else None)
        self.function = (FunctionProcess(Path(spec.function),
                                         Path(spec.kvs) if spec.kvs else None)
                         if spec.function else None)
        self.log_task: asyncio.Task[None] | None = None

    def log_served(self, entry: dict[str, Any], done: float, peer: Any) -> None:
        """One access-log entry for a request whose last byte (or cut) was just sent."""
        assert self.access_log is not None
        target = str(entry["target"])
        path, _, query = target.partition("?")
        headers: dict[str, str] = entry["headers"]
        content_range = entry["extra"].get("Content-Range", "")
        span = re.match(r"bytes (\d+)-(\d+)/", content_range)
        status = int(entry["status"])
        self.access_log.add(Served(
            end=entry["wall"] + (done - entry["received"]),
            time_taken=done - entry["received"],
            ttfb=entry.get("first_byte", done) - entry["received"],
            client_ip=peer[0] if peer else "-", client_port=peer[1] if peer else 0,
            method=entry["method"], host=headers.get("host", "-"), path=path, query=query,
            status=status, sc_bytes=int(entry["sc_bytes"]),
            content_type=str(entry["content_type"]),
            content_length=int(entry["content_length"]),
            result_type=("Error" if status >= 400 or status == 0
                         else "Hit" if entry["hit"] else "Miss"),
            user_agent=headers.get("user-agent", "-"), referer=headers.get("referer", "-"),
            range_start=int(span.group(1)) if span else None,
            range_end=int(span.group(2)) if span else None,
            cs_bytes=int(entry["cs_bytes"]), country=self.spec.country or "-",
            edge_location=self.spec.edge_location, distribution=self.spec.distribution,
        ))

    async def deliver_logs(self) -> None:
        """Flush the access log every `log_flush` seconds, and once more when cancelled."""
        assert self.access_log is not None
        try:
            while True:
                await asyncio.sleep(self.spec.log_flush)
                self.access_log.flush()
        finally:
            self.access_log.flush()

    async def pull(self, path: str) -> tuple[int, bytes, str, bool]:
        """(status, body, content type, cache hit) from the cache or, on a miss, the origin."""
        cached = self.cache.get(path)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1], cached[2], cached[3], True
        pending = self.inflight.get(path)
        if pending is not None:  # request collapsing: one origin fetch per object
            status, body, content_type = await asyncio.shield(pending)
            return status, body, content_type, True
        future: asyncio.Future[tuple[int, bytes, str]] = (
            asyncio.get_running_loop().create_future())
        self.inflight[path] = future
        try:
            status, body, content_type, max_age = await asyncio.wait_for(
                self.fetch_origin(path), 10.0)
            if status in (200, 403, 404):
                ttl = max_age if status == 200 else _ERROR_TTL
                self.cache[path] = (time.monotonic() + ttl, status, body, content_type)
            future.set_result((status, body, content_type))
            return status, body, content_type, False
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            del self.inflight[path]

    async def fetch_origin(self, path: str) -> tuple[int, bytes, str, float]:
        """One HTTP/1.0 GET to the origin (the whole object; releases are made of small files)."""
        assert self.origin is not None
        origin = self.origin
        reader, writer = await asyncio.open_connection(origin.hostname, origin.port or 80)
        try:
            target = origin.path.rstrip("/") + "/" + path.lstrip("/")
            writer.write(f"GET {target} HTTP/1.0\r\nHost: {origin.netloc}\r\n"
                         "User-Agent: cdnpack-edge\r\n\r\n".encode("latin-1"))
            raw = await reader.read()
        finally:
            writer.close()
        head, sep, body = raw.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("origin answer has no header end")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        fields_ = {k.strip().lower(): v.strip()
                   for k, _, v in (line.partition(":") for line in lines[1:])}
        age = _MAX_AGE.search(fields_.get("cache-control", ""))
        if status != 200:
            body = f"origin answered {status}\n".encode()
        return status, body, fields_.get("content-type", ""), (
            float(age.group(1)) if age else _DEFAULT_TTL)

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
    servers, ports, _ = await _start(specs)
    return servers, ports


async def _start(specs: list[EdgeSpec]
                 ) -> tuple[list[asyncio.Server], dict[str, int], dict[str, _Edge]]:
    loop = asyncio.get_running_loop()
    servers: list[asyncio.Server] = []
    ports: dict[str, int] = {}
    edges: dict[str, _Edge] = {}
    for spec in specs:
        edge = _Edge(spec)
        if edge.function is not None:
            await edge.function.start()
        if edge.access_log is not None:  # the edge (held by its server) holds the task
            edge.log_task = loop.create_task(edge.deliver_logs())
        edges[spec.name] = edge
        context = None
        if spec.certfile:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(spec.certfile, spec.keyfile)
        server = await loop.create_server(lambda e=edge: _EdgeProtocol(e), "127.0.0.1",
                                          spec.port, ssl=context, backlog=1024)
        servers.append(server)
        ports[spec.name] = server.sockets[0].getsockname()[1]
    return servers, ports, edges


#: What a `set` command may change on a running edge.
_SETTABLE = ("delay", "bandwidth", "failure", "failure_every")


def _command(edges: dict[str, _Edge], doc: Any) -> dict[str, Any]:
    """One runtime control command (module docstring); errors are answers, never a crash."""
    if not isinstance(doc, dict):
        return {"error": "a command is a JSON object"}
    if "set" in doc:
        edge = edges.get(doc["set"])
        changes = {k: v for k, v in doc.items() if k in _SETTABLE}
        if edge is None or len(changes) != len(doc) - 1:
            return {"error": f"set: unknown edge or field in {sorted(doc)}"}
        if changes.get("failure") not in (None, *FAILURES):
            return {"error": f"set: failure must be one of {FAILURES} or null"}
        edge.spec = replace(edge.spec, **changes)
        return {"ok": True}
    for command, answer in (("log", "requests"), ("served", "served")):
        if command in doc:  # what a recording edge kept, from the `since`-th entry on
            edge = edges.get(doc[command])
            if edge is None or not edge.spec.record:
                return {"error": f"{command}: unknown edge, or its spec does not record"}
            kept: list[Any] = edge.log if command == "log" else edge.served
            since = int(doc.get("since", 0))
            return {answer: kept[since:], "next": len(kept)}
    return {"error": f"unknown command {sorted(doc)}"}


async def _serve_until_stdin_closes(specs: list[EdgeSpec]) -> None:
    servers, ports, edges = await _start(specs)
    sys.stdout.write(json.dumps(ports) + "\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    # Each stdin line is a command; the parent closing stdin (or dying) stops the edges.
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        try:
            answer = _command(edges, json.loads(line))
        except (ValueError, TypeError) as exc:
            answer = {"error": str(exc)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    for server in servers:
        server.close()
    for edge in edges.values():
        if edge.function is not None:
            await edge.function.close()
    # What is still running (log deliveries, origin pulls) ends now: a log delivery's last
    # flush writes the requests of its final moments.
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


class EdgeControl:
    """Commands to a running edge process (module docstring), one at a time."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lock = threading.Lock()

    def command(self, doc: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        with self.lock:
            self.proc.stdin.write(json.dumps(doc) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise EndpointError(f"edge process exited ({self.proc.poll()})")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise ValueError(f"edge control: {answer['error']}")
        return answer

    def set(self, name: str, **changes: Any) -> None:
        """Change a running edge: delay, bandwidth, failure (None: none), failure_every."""
        self.command({"set": name, **changes})

    def requests(self, name: str, since: int = 0) -> tuple[list[tuple[float, str]], int]:
        """(time.monotonic(), path) of the requests a recording edge received from the
        `since`-th on, and the index to continue from."""
        answer = self.command({"log": name, "since": since})
        return [(float(t), str(p)) for t, p in answer["requests"]], int(answer["next"])

    def served(self, name: str, since: int = 0) -> tuple[list[ServedTimes], int]:
        """What a recording edge really did, answer by answer (its own clock: the machine's
        CLOCK_MONOTONIC), from the `since`-th on, and the index to continue from: the ground
        truth a probe's phases are checked against, whatever a loaded machine made of the
        configured delay and bandwidth."""
        answer = self.command({"served": name, "since": since})
        return [ServedTimes(*map(float, t)) for t in answer["served"]], int(answer["next"])


@dataclass(frozen=True)
class ServedTimes:
    """One answer of an edge, in seconds of CLOCK_MONOTONIC."""

    received: float  # the request's last byte read
    first_byte: float  # the status line written
    done: float  # the last byte written (or the connection cut)

    @property
    def ttfb(self) -> float:
        return self.first_byte - self.received

    @property
    def transfer(self) -> float:
        return self.done - self.first_byte


@dataclass(frozen=True)
class Edges:
    """Ports of running edges, by spec name."""

    ports: dict[str, int]
    #: Runtime control of the edge process (edge_process sets it).
    control: EdgeControl | None = field(default=None, compare=False, repr=False)

    def url(self, name: str, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    def host(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"


@contextlib.contextmanager
def edge_process(specs: Sequence[EdgeSpec], workdir: Path) -> Iterator[Edges]:
    """`python -m testbed.edges` in its own process, so its timers never wait for our GIL."""
    # Every path the child sees is absolute: it may run from any directory, installed or not.
    spec_file = (workdir / "edges.json").resolve()
    docs = []
    for s in specs:
        doc = asdict(s)
        for key in ("root", "certfile", "keyfile", "access_log", "function", "kvs"):
            if doc[key] is not None:
                doc[key] = str(Path(doc[key]).resolve())
        docs.append(doc)
    spec_file.write_text(json.dumps(docs))
    # Stopped by closing its stdin (it then flushes its logs); spawn waits, then kills.
    with spawn([sys.executable, "-m", "testbed.edges", str(spec_file)], stdin=subprocess.PIPE,
               stderr=None, terminate=False) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise EndpointError(f"edge servers did not start (exit {proc.wait()})")
            yield Edges(json.loads(line), EdgeControl(proc))
        finally:
            assert proc.stdin is not None
            proc.stdin.close()  # the edges' signal to stop


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
