"""A fault-injecting HTTP proxy in front of the local S3 endpoint, run on its own thread.

It logs every request (so tests can count PUTs and check their order) and, for a seeded
fraction of requests, answers 503 SlowDown, drops the connection, or answers slowly.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from testbed.loopthread import LoopThread

SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


@dataclass
class Faults:
    rate: float = 0.0  # fraction of requests that get a fault
    kinds: tuple[str, ...] = ("slowdown", "reset", "slow")
    slow_seconds: float = 0.3
    delay_all: float = 0.0  # added to every request (to make a push take a while)
    corrupt_puts: bool = False  # flip one byte mid-body of every PUT (a bad network path)
    #: Extra delay for requests whose path contains one of these strings: (substring, seconds).
    delay_paths: tuple[tuple[str, float], ...] = ()
    #: A request whose client went away is dropped wherever it is (aiohttp's handler
    #: cancellation), as if its body never arrived; otherwise it still reaches the upstream,
    #: as a request S3 received whole completes after its client died.
    drop_on_disconnect: bool = False
    seed: int = 1


@dataclass
class RequestLog:
    entries: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, outcome
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, method: str, path: str, outcome: str) -> None:
        with self.lock:
            self.entries.append((method, path, outcome))

    def snapshot(self) -> list[tuple[str, str, str]]:
        with self.lock:
            return list(self.entries)

    def count(self, method: str, outcome: str = "ok") -> int:
        return sum(1 for m, _, o in self.snapshot() if m == method and o == outcome)

    def stored_objects(self) -> list[str]:
        """Keys (after the bucket) whose object S3 stored, in the order it answered: a PutObject
        or a CompleteMultipartUpload each (a multipart upload counts once, as its object)."""
        keys = []
        for method, path_qs, outcome in self.snapshot():
            path, _, query = path_qs.partition("?")
            single = method == "PUT" and "partNumber=" not in query
            completed = method == "POST" and "uploadId=" in query
            if outcome == "ok" and (single or completed):
                keys.append(path.lstrip("/").split("/", 1)[1])
        return keys


class FaultProxy(LoopThread):
    def __init__(self, upstream: str, faults: Faults | None = None) -> None:
        super().__init__()
        self.upstream = upstream
        self.faults = faults or Faults()
        self.log = RequestLog()
        self._rng = random.Random(self.faults.seed)
        self._kinds = itertools.cycle(self.faults.kinds)  # every kind occurs, in turn
        self._in_flight = 0
        self._idle = threading.Condition()

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Until no request is in flight: those of a killed client still reach the origin."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._in_flight == 0, timeout):
                raise TimeoutError("requests still in flight at the proxy")

    async def _serve(self, stop: asyncio.Event) -> None:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None,
                               handler_cancellation=self.faults.drop_on_disconnect)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(auto_decompress=False) as self._session:
            self.ready()
            await stop.wait()
        await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        with self._idle:
            self._in_flight += 1
        try:
            return await self._forward(request)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        fault = None
        if self._rng.random() < self.faults.rate:
            fault = next(self._kinds)
        delay = self.faults.delay_all + sum(
            seconds for part, seconds in self.faults.delay_paths if part in request.path)
        if delay:
            await asyncio.sleep(delay)
        if fault == "slowdown":
            self.log.add(request.method, request.path_qs, "503")
            return web.Response(status=503, body=SLOWDOWN, content_type="application/xml")
        if fault == "reset":
            self.log.add(request.method, request.path_qs, "reset")
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)
        if fault == "slow":
            await asyncio.sleep(self.faults.slow_seconds)
        if self.faults.corrupt_puts and request.method == "PUT" and len(body) > 1000:
            middle = len(body) // 2
            body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1 :]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body,
            allow_redirects=False,
        ) as answer:
            payload = await answer.read()
            out = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
            self.log.add(request.method, request.path_qs, "ok")
            return web.Response(status=answer.status, body=payload, headers=out)
