"""`cdnpack steer serve`: the steering documents live, per viewer, from the refreshed plan.

GET /hls.json and /dash.json answer each viewer's document (steering/answers.py); /metrics
is Prometheus text (steering/metrics.py); /healthz says the server is up and how old its plan
is. The plan is re-made every `refresh` from the config and the probe results
(steering/feed.py), in a thread of its own, so reading S3 never stalls an answer; a failed
refresh keeps the last good plan. With `steering.enabled: false` every document request gets
410 Gone: players (RFC 8216bis §7.2, DASH-IF CTS 001) then stop reloading and keep the pathway
they are on.

Nothing a request carries is ever written into a response: documents come from the plan,
errors are fixed texts, malformed requests' included (probes/serving.QuietServer).
SIGINT and SIGTERM stop the server cleanly: the listener closes, open connections get up to
SHUTDOWN_SECONDS to finish, the refresh thread is abandoned (daemon), and `run` returns a
summary naming the signal (the command then exits 130 or 143: packager/interrupts.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from aiohttp import web
from aiohttp.web_request import BaseRequest

from packager.errors import InputError
from packager.interrupts import loop_stops_on_signals
from probes.config import ProbeConfig, load_config
from probes.serving import fixed as fixed_text
from probes.serving import parse_listen, start_quiet
from steering.answers import Answers
from steering.documents import DOCUMENTS
from steering.feed import Feed, Snapshot
from steering.metrics import CONTENT_TYPE, Tally, exposition, registry

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Every answer may be read by a player page on another origin; none may be cached by a
#: shared cache (documents differ by viewer: region header, reported throughput).
COMMON_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
JSON_HEADERS = {**COMMON_HEADERS, "Content-Type": "application/json"}
TEXT_HEADERS = {**COMMON_HEADERS, "Content-Type": "text/plain; charset=utf-8"}
DOCUMENT_PATHS = {f"/{name}": name for name in DOCUMENTS}
#: How long a stopping server lets open requests finish before it closes their connections.
SHUTDOWN_SECONDS = 2.0


@dataclass(frozen=True)
class ServeRequest:
    feed: Feed
    host: str = "127.0.0.1"
    port: int = 8900
    refresh: float = 30.0  # seconds between refreshes


@dataclass(frozen=True)
class ServeResult:
    url: str
    requests: int
    refreshes: int
    failures: int
    seconds: float
    signal: int | None = None  # what stopped `run`


def fixed(status: int, headers: dict[str, str] = TEXT_HEADERS) -> web.Response:
    """A plain answer whose text depends on the status only, with the common headers."""
    return fixed_text(status, headers)


class SteeringService:
    """The state one server answers from; replaced whole on each refresh."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.answers = Answers(snapshot.plan, snapshot.config)
        self.tally = Tally()
        self.registry = registry(lambda: self.snapshot, self.tally)
        self.refreshes = 0

    def update(self, snapshot: Snapshot) -> None:
        self.refreshes += 1
        if snapshot.plan is not self.snapshot.plan or snapshot.config is not self.snapshot.config:
            self.answers = Answers(snapshot.plan, snapshot.config)
        self.snapshot = snapshot

    async def handle(self, request: BaseRequest) -> web.StreamResponse:
        path = request.path
        response = self.respond(request, path)
        key = path if path in DOCUMENT_PATHS or path in ("/metrics", "/healthz") else "other"
        self.tally.responses[key, response.status] += 1
        return response

    def respond(self, request: BaseRequest, path: str) -> web.StreamResponse:
        if request.method == "OPTIONS":
            return web.Response(status=204, headers={
                **COMMON_HEADERS, "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                "Access-Control-Max-Age": "600"})
        if request.method not in ("GET", "HEAD"):
            return fixed(405)
        name = DOCUMENT_PATHS.get(path)
        if name is not None:
            return self.document(request, name)
        if path == "/metrics":
            return web.Response(body=exposition(self.registry),
                                headers={**COMMON_HEADERS, "Content-Type": CONTENT_TYPE})
        if path == "/healthz":
            return web.Response(body=self.health(), headers=JSON_HEADERS)
        return fixed(404)

    def document(self, request: BaseRequest, name: str) -> web.StreamResponse:
        steering = self.snapshot.config.steering
        if steering is None or not steering.enabled:
            return fixed(410)
        try:
            query = request.query
        except ValueError:  # an undecodable query string: answer as if it had none
            query = None
        answer = self.answers.answer(name, query or {}, request.headers)
        self.tally.decisions[answer.region, answer.first] += 1
        for cdn in answer.moved:
            self.tally.moves[answer.region, cdn] += 1
        return web.Response(body=answer.body, headers=JSON_HEADERS)

    def health(self) -> bytes:
        snap = self.snapshot
        steering = snap.config.steering
        return json.dumps({
            "status": "ok",
            "enabled": steering is not None and steering.enabled,
            "plan_age_s": round(time.monotonic() - snap.refreshed, 3),
            "stale": [r.region for r in (*snap.plan.regions, snap.plan.overall) if r.stale],
            "refresh_failures": snap.failures,
        }).encode()


def in_daemon_thread(job: Callable[[], T]) -> asyncio.Future[T]:
    """Run `job` on a daemon thread: a refresh stuck on an unreachable S3 never delays exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)  # type: ignore[arg-type]

    def work() -> None:
        try:
            value = job()
        except BaseException as exc:
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, value, None)

    threading.Thread(target=work, daemon=True, name="cdnpack-steer-refresh").start()
    return future


async def refresh_forever(service: SteeringService, feed: Feed, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            snapshot = await in_daemon_thread(lambda: feed.refresh(service.snapshot))
        except Exception:  # a bug in planning must not end steering: keep the last plan
            log.exception("steering refresh crashed; keeping the last good plan")
            continue
        service.update(snapshot)


async def serve(request: ServeRequest, snapshot: Snapshot, on_ready: Callable[[str], None],
                stop: asyncio.Event) -> ServeResult:
    """Listen, answer and refresh until `stop` is set; then close everything."""
    started = time.monotonic()
    service = SteeringService(snapshot)
    runner, url = await start_quiet(service.handle, request.host, request.port, TEXT_HEADERS,
                                    backlog=1024, shutdown_timeout=SHUTDOWN_SECONDS)
    refresher = asyncio.create_task(refresh_forever(service, request.feed, request.refresh))
    try:
        on_ready(url)
        await stop.wait()
    finally:
        refresher.cancel()
        await asyncio.gather(refresher, return_exceptions=True)
        await runner.cleanup()
    return ServeResult(url, sum(service.tally.responses.values()), service.refreshes,
                       service.snapshot.failures, time.monotonic() - started)


def run(request: ServeRequest, on_ready: Callable[[str], None]) -> ServeResult:
    """`serve` on a fresh event loop until SIGINT or SIGTERM."""
    snapshot = request.feed.first(_config(request.feed))

    async def main() -> ServeResult:
        stop = asyncio.Event()
        with loop_stops_on_signals(asyncio.get_running_loop(), stop) as stopped:
            result = await serve(request, snapshot, on_ready, stop)
        return replace(result, signal=stopped.signum)

    with asyncio.Runner() as runner:
        return runner.run(main())


def _config(feed: Feed) -> ProbeConfig:
    """The config a server starts with: it must load and have a steering section."""
    config = load_config(feed.config_path)
    if config.steering is None:
        raise InputError(f"{feed.config_path}: `steer serve` needs a `steering:` section")
    return config


def serve_request(config_path: Path, results: tuple[str, ...], listen: str, refresh: float,
                  endpoint_url: str | None) -> ServeRequest:
    """`steer serve`'s options checked before anything listens (exit 2 on a mistake)."""
    address = parse_listen(listen, "127.0.0.1:8900")
    connection = None
    for source in results:
        if source.startswith("s3://"):
            from cdn.s3 import Connection, parse_s3_url  # noqa: PLC0415 (boto3 only for S3)
            parse_s3_url(source)
            # Few attempts: a refresh that cannot reach the bus keeps the last plan anyway,
            # and the next one comes soon.
            connection = Connection(endpoint_url=endpoint_url, max_attempts=2)
        elif not Path(source).exists():
            raise InputError(f"--results {source}: no such file or directory")
    return ServeRequest(Feed(config_path, results, connection), address.host, address.port,
                        refresh)
