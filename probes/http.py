"""One timed HTTP fetch with blackbox_exporter's phases, cache status and an error class.

Phases (all from `perf_counter_ns`, reported in seconds) mean what blackbox_exporter's mean:
  dns        resolve start -> resolve end (0 when the address is pinned, None when reused)
  connect    TCP connect (SYN -> established), timed in our connector, not by aiohttp
  tls        TLS handshake on the connected socket (https only)
  ttfb       request written -> first response byte (blackbox "processing", k6 "waiting")
  transfer   first response byte -> last body chunk read (aiohttp's on_request_end fires after
             the headers, so the end is taken from the body loop, not from a trace signal)
  total      fetch start -> last byte (or -> the failure)
aiohttp has no TLS hook: `create_connection(ssl=...)` connects and handshakes in one call, so
`_PhaseConnector` opens the TCP socket itself (aiohappyeyeballs, as aiohttp does) and hands the
connected socket to `create_connection`, which then only performs the handshake.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import contextvars
import errno
import functools
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from time import perf_counter_ns
from types import SimpleNamespace, TracebackType
from typing import Any

import aiohappyeyeballs
import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_exceptions import cert_errors, ssl_errors
from aiohttp.client_proto import ResponseHandler
from aiohttp.helpers import ceil_timeout

from probes.cache import CACHE_HEADERS, cache_verdict
from probes.lag import LagMonitor
from probes.loop import arrival_clock

ERROR_CLASSES = (
    "dns", "connect", "tls", "timeout", "http_4xx", "http_5xx", "truncated", "reset", "protocol",
)
USER_AGENT = "cdnpack-probe/0.1"
MIN_TRANSFER = 1e-3  # seconds; shorter transfers give a throughput lower bound


class _PhaseClock:
    """Nanosecond marks of one fetch, written by trace callbacks and the connector."""

    __slots__ = ("dns_end", "dns_start", "first_byte", "handler", "last_byte", "remote", "reused",
                 "sent", "start", "tcp_end", "tcp_start", "tls_end")

    def __init__(self) -> None:
        self.start = perf_counter_ns()
        self.dns_start: int | None = None
        self.dns_end: int | None = None
        self.tcp_start: int | None = None
        self.tcp_end: int | None = None
        self.tls_end: int | None = None
        self.sent: int | None = None
        self.first_byte: int | None = None
        self.last_byte: int | None = None
        self.remote: str | None = None
        self.reused = False
        self.handler: Any = None  # the connection's _Handler: how the socket ended


#: The clock of the fetch running in this task; the connector has no other way to find it.
_CLOCK: contextvars.ContextVar[_PhaseClock | None] = contextvars.ContextVar(
    "cdnpack_probe_clock", default=None
)


@dataclass(frozen=True)
class FetchResult:
    url: str
    started_at: str  # ISO 8601 UTC wall clock at fetch start
    ended_at: str  # ... at the last byte or the failure
    dns: float | None
    connect: float | None
    tls: float | None
    ttfb: float | None
    transfer: float | None
    total: float
    bytes: int
    throughput: float | None  # body bits/s over the transfer phase (at most bytes / 1 ms)
    status: int | None
    cache: str | None  # hit | miss | stale | expired | revalidated | bypass | dynamic | unknown
    cache_headers: dict[str, str]
    remote_addr: str | None
    reused: bool
    error: str | None  # one of ERROR_CLASSES
    error_detail: str | None
    lag: float  # worst event-loop lag (s) during the fetch
    lagged: bool
    body: builtins.bytes = field(default=b"", repr=False, compare=False)  # kept only when asked
    content_length: int | None = None  # the Content-Length header, when the response had one
    http_version: str | None = None  # of the response, e.g. "1.1"


class PinnedResolver(AbstractResolver):
    """Host names pinned to addresses (like curl --resolve); everything else via `fallback`."""

    def __init__(self, pins: Mapping[str, str], fallback: AbstractResolver | None = None) -> None:
        self.pins = dict(pins)
        self.fallback = fallback or aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        address = self.pins.get(host)
        if address is None:
            return await self.fallback.resolve(host, port, family)
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [ResolveResult(hostname=host, host=address, port=port, family=fam,
                              proto=0, flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        await self.fallback.close()


class _Handler(ResponseHandler):
    """aiohttp's protocol, plus when data arrived and how the socket ended (RST or FIN).

    Arrival stamps come from the loop's selector (probes/loop.py) when it is a StampedSelector,
    so a first byte is dated when the kernel reported it, not when our task got round to it.
    """

    lost: BaseException | None = None

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop=loop)
        self._arrival = arrival_clock(loop)
        self.arrivals: collections.deque[int] = collections.deque(maxlen=64)
        self.last_arrival = 0

    def data_received(self, data: builtins.bytes) -> None:
        self.last_arrival = self._arrival()
        self.arrivals.append(self.last_arrival)
        super().data_received(data)

    def first_arrival_after(self, t_ns: int) -> int | None:
        return next((t for t in self.arrivals if t >= t_ns), None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = exc
        super().connection_lost(exc)


class _PhaseConnector(aiohttp.TCPConnector):
    """TCPConnector that times TCP connect and TLS handshake apart (see module docstring).

    Mirrors aiohttp 3.10+ `TCPConnector._wrap_create_connection`, the one seam where the socket
    exists before the handshake; error mapping is kept identical so aiohttp's exceptions hold.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._factory = functools.partial(_Handler, loop=self._loop)  # type: ignore[assignment]

    async def _wrap_create_connection(
        self, *args: Any, addr_infos: list[Any], req: aiohttp.ClientRequest,
        timeout: aiohttp.ClientTimeout,
        client_error: type[Exception] = aiohttp.ClientConnectorError, **kwargs: Any,
    ) -> tuple[asyncio.Transport, Any]:
        clock = _CLOCK.get()
        try:
            async with ceil_timeout(timeout.sock_connect, ceil_threshold=timeout.ceil_threshold):
                tcp_start = perf_counter_ns()
                sock = await aiohappyeyeballs.start_connection(
                    addr_infos=addr_infos, local_addr_infos=self._local_addr_infos,
                    happy_eyeballs_delay=self._happy_eyeballs_delay, interleave=self._interleave,
                    loop=self._loop, socket_factory=self._socket_factory,
                )
                tcp_end = perf_counter_ns()
                if clock is not None:
                    clock.tcp_start, clock.tcp_end = tcp_start, tcp_end
                    peer = sock.getpeername()
                    clock.remote = f"{peer[0]}:{peer[1]}"
                if kwargs.get("ssl") and self._ssl_shutdown_timeout:
                    kwargs["ssl_shutdown_timeout"] = self._ssl_shutdown_timeout
                connection: tuple[asyncio.Transport, Any] = await self._loop.create_connection(
                    *args, **kwargs, sock=sock
                )
                if clock is not None and kwargs.get("ssl"):
                    clock.tls_end = perf_counter_ns()
                return connection
        except cert_errors as exc:
            raise aiohttp.ClientConnectorCertificateError(req.connection_key, exc) from exc
        except ssl_errors as exc:
            raise aiohttp.ClientConnectorSSLError(req.connection_key, exc) from exc
        except OSError as exc:
            if exc.errno is None and isinstance(exc, asyncio.TimeoutError):
                raise
            raise client_error(req.connection_key, exc) from exc


def _trace_config() -> aiohttp.TraceConfig:
    def clock_of(ctx: SimpleNamespace) -> _PhaseClock:
        clock: _PhaseClock = ctx.trace_request_ctx
        return clock

    async def dns_start(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
        clock_of(ctx).dns_start = perf_counter_ns()

    async def dns_end(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
        clock_of(ctx).dns_end = perf_counter_ns()

    async def reused(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
        clock_of(ctx).reused = True

    async def sent(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
        clock_of(ctx).sent = perf_counter_ns()

    async def headers(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
        clock_of(ctx).first_byte = perf_counter_ns()

    config = aiohttp.TraceConfig()
    config.on_dns_resolvehost_start.append(dns_start)
    config.on_dns_resolvehost_end.append(dns_end)
    config.on_connection_reuseconn.append(reused)
    config.on_request_headers_sent.append(sent)
    config.on_request_end.append(headers)
    return config


def classify(exc: BaseException, connection_error: BaseException | None = None) -> str:
    """Error class of a failed fetch; the exception chain says reset (RST) from clean close.

    A body cut short raises ClientPayloadError whose chain does not keep the socket error; the
    connection's own exception (`connection_error`) does: ECONNRESET for an RST, none for a FIN.
    """
    chain: list[BaseException] = [connection_error] if connection_error is not None else []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 10:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "dns"
    if any(isinstance(e, ssl.SSLError | aiohttp.ClientSSLError) for e in chain):
        return "tls"
    if any(isinstance(e, ConnectionResetError) or getattr(e, "errno", None) == errno.ECONNRESET
           for e in chain):
        return "reset"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect"
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return "truncated"
    if isinstance(exc, aiohttp.ClientOSError | ConnectionError):
        return "connect"
    return "protocol"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class Fetcher:
    """One aiohttp session configured like a probe: cold (no keep-alive, no DNS cache) or warm."""

    def __init__(
        self, *, timeout: float, concurrency: int, warm: bool = False,
        pins: Mapping[str, str] | None = None, tls_verify: bool = True,
        lag: LagMonitor | None = None, resolver: AbstractResolver | None = None,
    ) -> None:
        self.timeout = timeout
        self.lag = lag
        self._semaphore = asyncio.Semaphore(concurrency)
        connector = _PhaseConnector(
            limit=concurrency, force_close=not warm, use_dns_cache=warm,
            resolver=PinnedResolver(pins or {}, resolver), ssl=tls_verify,
        )
        self.session = aiohttp.ClientSession(
            connector=connector, trace_configs=[_trace_config()], auto_decompress=False,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            timeout=aiohttp.ClientTimeout(total=None),
        )
        # Every request is a record: aiohttp resends an idempotent request once, silently,
        # when the connection fails before the response (RFC 9112 §9.3.1 allows it), which
        # hid resets from the error rate. A probe reports what the CDN did, so no resend.
        self.session._retry_connection = False

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.session.close()

    async def fetch(self, url: str, keep_body: bool = False) -> FetchResult:
        """GET url within the per-fetch timeout; never raises for network or HTTP failures."""
        async with self._semaphore:
            return await self._fetch(url, keep_body)

    async def _fetch(self, url: str, keep_body: bool) -> FetchResult:
        clock = _PhaseClock()
        token = _CLOCK.set(clock)
        started_at = _now()
        status: int | None = None
        headers: dict[str, str] = {}
        nbytes = 0
        chunks: list[bytes] = []
        error: str | None = None
        detail: str | None = None
        expected: int | None = None
        version: str | None = None
        try:
            async with asyncio.timeout(self.timeout), self.session.get(
                url, allow_redirects=False, trace_request_ctx=clock
            ) as resp:
                if resp.connection is not None:
                    clock.handler = resp.connection.protocol
                if isinstance(clock.handler, _Handler) and clock.sent is not None:
                    # the response's first bytes: the first arrival after the request went out
                    arrival = clock.handler.first_arrival_after(clock.sent)
                    clock.first_byte = arrival if arrival is not None else clock.first_byte
                if clock.first_byte is None:
                    clock.first_byte = perf_counter_ns()
                status = resp.status
                expected = resp.content_length
                if resp.version is not None:
                    version = f"{resp.version.major}.{resp.version.minor}"
                headers = {k.lower(): v for k, v in resp.headers.items()
                           if k.lower() in CACHE_HEADERS}
                async for chunk in resp.content.iter_any():
                    nbytes += len(chunk)
                    clock.last_byte = perf_counter_ns()
                    if keep_body:
                        chunks.append(chunk)
                if isinstance(clock.handler, _Handler) and clock.last_byte is not None:
                    clock.last_byte = max(clock.first_byte, min(
                        clock.last_byte, clock.handler.last_arrival or clock.last_byte))
                if expected is not None and nbytes < expected:
                    error, detail = "truncated", f"{nbytes} of {expected} bytes"
                elif status >= 500:
                    error, detail = "http_5xx", f"HTTP {status}"
                elif status >= 400:
                    error, detail = "http_4xx", f"HTTP {status}"
        except TimeoutError:
            error, detail = "timeout", f"no complete response within {self.timeout:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            lost = getattr(clock.handler, "lost", None)
            error, detail = classify(exc, lost), f"{type(exc).__name__}: {exc}"
            if status is not None:
                # The headers came, the body was cut (by FIN or RST alike): truncated.
                # "reset" is a connection that ended before any answer.
                of = f" of {expected}" if expected is not None else ""
                error, detail = "truncated", f"{nbytes}{of} bytes, then {error}: {detail}"
        finally:
            _CLOCK.reset(token)
        end = perf_counter_ns()
        if clock.first_byte is not None and clock.last_byte is None and error is None:
            clock.last_byte = clock.first_byte  # empty body
        result = self._result(url, (started_at, _now()), clock, end, status, headers, nbytes,
                              error, detail, b"".join(chunks))
        return replace(result, content_length=expected, http_version=version)

    def _result(self, url: str, wall: tuple[str, str], c: _PhaseClock, end: int,
                status: int | None, headers: dict[str, str], nbytes: int, error: str | None,
                detail: str | None, body: bytes) -> FetchResult:
        def span(a: int | None, b: int | None) -> float | None:
            return None if a is None or b is None else max(b - a, 0) / 1e9

        transfer = span(c.first_byte, c.last_byte)
        throughput = None
        if transfer is not None and nbytes > 0:
            # a transfer under 1 ms cannot be timed well: count it as 1 ms (a lower bound)
            throughput = nbytes * 8 / max(transfer, MIN_TRANSFER)
        finish = c.last_byte if c.last_byte is not None and error is None else end
        lag = self.lag.lag_during(c.start, finish) if self.lag is not None else 0.0
        threshold = self.lag.threshold_ns / 1e9 if self.lag is not None else float("inf")
        return FetchResult(
            url=url, started_at=wall[0], ended_at=wall[1],
            dns=span(c.dns_start, c.dns_end) if not c.reused else None,
            connect=span(c.tcp_start, c.tcp_end),
            tls=span(c.tcp_end, c.tls_end),
            ttfb=span(c.sent, c.first_byte),
            transfer=transfer,
            total=(finish - c.start) / 1e9,
            bytes=nbytes, throughput=throughput, status=status,
            cache=cache_verdict(headers), cache_headers=headers,
            remote_addr=c.remote, reused=c.reused, error=error, error_detail=detail,
            lag=lag, lagged=lag > threshold, body=body,
        )
