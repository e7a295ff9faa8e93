"""`cdnpack exporter`: a Prometheus exporter in blackbox_exporter's style for one region.

`GET /probe?cdn=ID&target=PATH` runs one probe of the config's CDN from this region and answers
with blackbox_exporter's metric names (prober/http.go, prober/handler.go, prober/utils.go of
prometheus/blackbox_exporter), so its dashboards and alerts work unchanged:
  probe_success, probe_duration_seconds, probe_timeout_seconds,
  probe_http_duration_seconds{phase="resolve|connect|tls|processing|transfer"},
  probe_http_status_code, probe_http_content_length, probe_http_uncompressed_body_length,
  probe_http_version, probe_http_ssl, probe_http_redirects, probe_failed_due_to_regex,
  probe_dns_lookup_time_seconds, probe_ip_protocol
and, for an hls or dash target (played like probes/video.py: manifest, init, first segments),
ours: probe_startup_duration_seconds and probe_sustainable_bitrate_bits_per_second (the names
`cdnpack score --prometheus` uses). A failed probe also says why: cdnpack_probe_error_info.
The probe's time limit comes from Prometheus' `X-Prometheus-Scrape-Timeout-Seconds` header less
an offset (blackbox's --timeout-offset, 0.5 s), else probe.timeout: a stalled target costs its
own scrape that long and nothing else, since every probe runs in its own task.
`GET /metrics` is the exporter's own: probes by CDN and result, their durations, the process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.web_request import BaseRequest
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from packager.errors import InputError
from packager.interrupts import loop_stops_on_signals
from probes.config import ProbeConfig, Target
from probes.http import Fetcher, FetchResult
from probes.loop import new_loop
from probes.serving import Listen, QuietServer, fixed
from probes.video import Playback, play

TIMEOUT_OFFSET = 0.5  # seconds kept for answering the scrape (blackbox --timeout-offset)
MIN_TIMEOUT = 0.1
PHASES = ("resolve", "connect", "tls", "processing", "transfer")


@dataclass(frozen=True)
class ProbeOutcome:
    """What one /probe found: the first fetch (the target itself) and, for video, playbacks."""

    fetch: FetchResult | None
    playbacks: list[Playback]
    seconds: float
    timeout: float
    timed_out: bool
    url: str

    @property
    def success(self) -> bool:
        if self.timed_out or self.fetch is None or self.fetch.error is not None:
            return False
        return all(p.error is None for p in self.playbacks)

    @property
    def error(self) -> str | None:
        if self.timed_out:
            return "timeout"
        if self.fetch is not None and self.fetch.error is not None:
            return self.fetch.error
        return next((p.error for p in self.playbacks if p.error is not None), None)


class SelfMetrics:
    """The exporter's own /metrics registry (one per app: no global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.probes = Counter("cdnpack_exporter_probes", "Probes run, by CDN and result.",
                              ["cdn", "result"], registry=self.registry)
        self.seconds = Histogram("cdnpack_exporter_probe_duration_seconds",
                                 "How long probes took.", ["cdn"], registry=self.registry,
                                 buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.bad = Counter("cdnpack_exporter_bad_requests", "/probe requests refused (400).",
                           registry=self.registry)


def scrape_timeout(header: str | None, default: float) -> float:
    """The probe's time limit: Prometheus' scrape timeout less the offset, else `default`."""
    if header:
        try:
            seconds = float(header)
        except ValueError:
            return default
        return max(MIN_TIMEOUT, seconds - TIMEOUT_OFFSET)
    return default


async def run_probe(config: ProbeConfig, region: str, cdn_id: str, target: Target,
                    timeout: float) -> ProbeOutcome:
    cdn = next(c for c in config.cdns if c.id == cdn_id)
    url = cdn.url_for(region, target.path)
    started = time.perf_counter()
    fetch: FetchResult | None = None
    playbacks: list[Playback] = []
    timed_out = False
    settings = config.probe
    async with Fetcher(timeout=timeout, concurrency=settings.concurrency,
                       pins=cdn.resolve_for(region), tls_verify=settings.tls_verify) as fetcher:
        try:
            async with asyncio.timeout(timeout):
                if target.kind == "file":
                    fetch = await fetcher.fetch(url)
                else:
                    playbacks = await play(fetcher, target.path, url, target.kind,
                                           settings.renditions, settings.segments)
                    steps = [s for p in playbacks for s in p.steps]
                    fetch = steps[0].result if steps else None
        except TimeoutError:
            timed_out = True
    return ProbeOutcome(fetch, playbacks, time.perf_counter() - started, timeout, timed_out,
                        url)


def probe_exposition(outcome: ProbeOutcome) -> bytes:
    """The /probe answer: blackbox_exporter's names (module docstring), then ours."""
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> None:
        g = Gauge(name, doc, list(labels or {}), registry=registry)
        (g.labels(**labels) if labels else g).set(value)

    f = outcome.fetch
    gauge("probe_success", "Displays whether or not the probe was a success",
          1.0 if outcome.success else 0.0)
    gauge("probe_duration_seconds", "Returns how long the probe took to complete in seconds",
          outcome.seconds)
    gauge("probe_timeout_seconds", "Returns how long the probe timeout is in seconds",
          outcome.timeout)
    phases = Gauge("probe_http_duration_seconds",
                   "Duration of http request by phase, summed over all redirects", ["phase"],
                   registry=registry)
    values = (f.dns, f.connect, f.tls, f.ttfb, f.transfer) if f else (None,) * 5
    for phase, value in zip(PHASES, values, strict=True):
        phases.labels(phase=phase).set(value or 0.0)
    gauge("probe_http_status_code", "Response HTTP status code",
          float(f.status or 0) if f else 0.0)
    length = f.content_length if f is not None and f.content_length is not None else -1
    gauge("probe_http_content_length", "Length of http content response", float(length))
    gauge("probe_http_uncompressed_body_length", "Length of uncompressed response body",
          float(f.bytes) if f else 0.0)
    gauge("probe_http_version", "Returns the version of HTTP of the probe response",
          float(f.http_version) if f is not None and f.http_version else 0.0)
    gauge("probe_http_ssl", "Indicates if SSL was used for the final redirect",
          1.0 if urlsplit(outcome.url).scheme == "https" else 0.0)
    gauge("probe_http_redirects", "The number of redirects", 0.0)
    gauge("probe_failed_due_to_regex", "Indicates if probe failed due to regex", 0.0)
    gauge("probe_dns_lookup_time_seconds", "Returns the time taken for probe dns lookup in "
          "seconds", f.dns or 0.0 if f else 0.0)
    remote = f.remote_addr if f else None
    gauge("probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6",
          0.0 if remote is None else 6.0 if remote.count(":") > 1 else 4.0)
    if outcome.error is not None:
        gauge("cdnpack_probe_error_info", "Why the probe failed (probes/http.py ERROR_CLASSES)",
              1.0, {"class": outcome.error})
    if outcome.playbacks:
        first = outcome.playbacks[0]
        if first.startup is not None:
            gauge("probe_startup_duration_seconds", "Manifest + init + first segment, fetched "
                  "in sequence like a player, seconds.", first.startup)
        if first.sustainable is not None:
            gauge("probe_sustainable_bitrate_bits_per_second", "Bits/s the segments arrived "
                  "at: the highest rendition bitrate this edge can sustain.", first.sustainable)
    return generate_latest(registry)


def make_handler(config: ProbeConfig, region: str
                 ) -> Callable[[BaseRequest], Awaitable[web.StreamResponse]]:
    """The one handler of the exporter's server: /probe, /metrics and / (GET or HEAD)."""
    config.region(region)
    metrics = SelfMetrics()
    targets = {t.path: t for t in config.targets}
    known = [c.id for c in config.cdns]

    async def probe(request: BaseRequest) -> web.StreamResponse:
        cdn_id = request.query.get("cdn", "")
        path = request.query.get("target", "").lstrip("/")
        if cdn_id not in known or not path:
            metrics.bad.inc()
            reason = (f"cdn must be one of {', '.join(known)}" if cdn_id not in known
                      else "target (a release path) is missing")
            return web.Response(status=400, text=reason + "\n")
        target = targets.get(path) or _guess(path)
        timeout = scrape_timeout(request.headers.get("X-Prometheus-Scrape-Timeout-Seconds"),
                                 config.probe.timeout)
        outcome = await run_probe(config, region, cdn_id, target, timeout)
        metrics.probes.labels(cdn=cdn_id, result="success" if outcome.success
                              else "failure").inc()
        metrics.seconds.labels(cdn=cdn_id).observe(outcome.seconds)
        return web.Response(body=probe_exposition(outcome),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def handle(request: BaseRequest) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return fixed(405, {"Allow": "GET, HEAD"})
        if request.path == "/probe":
            return await probe(request)
        if request.path == "/metrics":
            return web.Response(body=generate_latest(metrics.registry),
                                headers={"Content-Type": CONTENT_TYPE_LATEST})
        if request.path == "/":
            return web.Response(text=f"cdnpack exporter, region {region}: /probe?cdn=ID&target="
                                     "PATH, /metrics\n")
        return fixed(404)

    return handle


def _guess(path: str) -> Target:
    kind = "hls" if path.endswith(".m3u8") else "dash" if path.endswith(".mpd") else "file"
    return Target(path, kind)


#: How long a stopping exporter lets the probes it is running answer before it closes their
#: connections (a scrape cut short is a failed scrape for Prometheus, nothing worse).
SHUTDOWN_SECONDS = 2.0


def serve(config: ProbeConfig, region: str, listen: Listen,
          ready: Callable[[str], None]) -> int:
    """Serve until SIGINT or SIGTERM; returns the signal, once the listener is closed and the
    probes running have answered (or SHUTDOWN_SECONDS have passed)."""
    async def main() -> int:
        server = QuietServer(make_handler(config, region), access_log=None)
        runner = web.ServerRunner(server, handle_signals=False,
                                  shutdown_timeout=SHUTDOWN_SECONDS)
        await runner.setup()
        stop = asyncio.Event()
        with loop_stops_on_signals(asyncio.get_running_loop(), stop) as stopped:
            try:
                site = web.TCPSite(runner, listen.host, listen.port)
                try:
                    await site.start()
                except OSError as exc:
                    raise InputError(f"cannot listen on {listen.host}:{listen.port} "
                                     f"({exc.strerror or exc})") from exc
                address = runner.addresses[0] if runner.addresses else (listen.host,
                                                                         listen.port)
                ready(f"http://{address[0]}:{address[1]}")
                await stop.wait()
            finally:
                await runner.cleanup()
        assert stopped.signum is not None
        return stopped.signum

    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(main())
