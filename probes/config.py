"""regions.yaml: regions, CDNs, targets, probe settings, budgets; errors name file:line: field.

One declarative pass turns the YAML into frozen dataclasses or raises an `InputError` that names
the file, the line and the field (``regions.yaml:14: cdns[1].base_url: must be http(s)``), so a
CI log points at the exact mistake.  Durations need a unit (``250ms``, ``2s``, ``1h``, ``7d``,
``1h30m``; packager/durations.py): a bare number is ambiguous between k6 (milliseconds) and
blackbox_exporter (seconds), so it is refused.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from packager.errors import InputError
from packager.yamlfile import LineMapping, Reader, load_yaml

CONFIG_NAME = "regions.yaml"
#: The default regions, CDNs and budgets: package data of `probes`, so an installed cdnpack has
#: it wherever it runs (the repository's top-level regions.yaml is the same file, to edit).
SHIPPED_CONFIG = Path(__file__).resolve().with_name(CONFIG_NAME)
CONNECTIONS = ("cold", "warm")
RENDITION_CHOICES = ("lowest", "highest", "all")
TARGET_KINDS = ("hls", "dash", "file")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
#: An HTTP field name (RFC 9110 §5.1: a token).
_FIELD_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True)
class Region:
    id: str
    name: str
    weight: float  # audience share; weights are normalised over the regions being ranked
    #: ISO 3166-1 alpha-2 codes of the viewers' countries (CloudFront-Viewer-Country, the
    #: c-country of CloudFront logs): how a viewer or a log line is put in a region.
    countries: tuple[str, ...] = ()


@dataclass(frozen=True)
class EdgeOverride:
    """Per-region way to reach a CDN: another host name and/or a pinned address (curl --resolve)."""

    host: str | None = None
    resolve: str | None = None


@dataclass(frozen=True)
class Cdn:
    id: str
    base_url: str  # ends with "/"
    edges: dict[str, EdgeOverride] = field(default_factory=dict)

    def url_for(self, region: str, path: str) -> str:
        """Absolute URL of a release path as seen from a region (host override applied)."""
        parts = urlsplit(self.base_url)
        override = self.edges.get(region)
        if override is not None and override.host:
            # "host" keeps the base URL's port; "host:port" replaces both.
            explicit = ":" in override.host and not override.host.startswith("[")
            keep = parts.port is not None and not explicit
            netloc = f"{override.host}:{parts.port}" if keep else override.host
            parts = parts._replace(netloc=netloc)
        return urlunsplit(parts) + path.lstrip("/")

    def localize(self, region: str, url: str) -> str:
        """An absolute URL under this CDN's base URL (a steered manifest names those) as a
        viewer of the region reaches it: through the region's edge (host override), as its
        DNS would send it. Other URLs are returned unchanged."""
        if not url.startswith(self.base_url):
            return url
        return self.url_for(region, url[len(self.base_url):])

    def resolve_for(self, region: str) -> dict[str, str]:
        """Host name -> address pins for this region (empty when DNS decides)."""
        override = self.edges.get(region)
        if override is None or not override.resolve:
            return {}
        host = urlsplit(self.url_for(region, "")).hostname or ""
        return {host: override.resolve}


@dataclass(frozen=True)
class Target:
    path: str
    kind: str  # hls | dash | file


@dataclass(frozen=True)
class ProbeSettings:
    samples: int = 5
    connections: str = "cold"  # cold: new TCP+TLS and DNS per fetch (blackbox_exporter); warm
    concurrency: int = 8
    timeout: float = 5.0  # seconds, per fetch (connect through last body byte)
    deadline: float = 120.0  # seconds, whole run
    renditions: str = "lowest"  # which variants the video probe plays
    segments: int = 2  # first K media segments per rendition
    tls_verify: bool = True
    lag_threshold: float = 0.005  # seconds of event-loop lag that taint a sample


@dataclass(frozen=True)
class Budget:
    """Limits one region must meet for every CDN; None means not gated."""

    ttfb_p95: float | None = None  # seconds
    startup_p95: float | None = None  # seconds
    min_throughput: float | None = None  # x top rendition bitrate (median segment throughput)
    max_error_rate: float | None = None  # fraction 0..1
    # Real viewers (cdnpack score/gate --rum RUM.jsonl, from CDN logs with CMCD):
    rum_startup_p95: float | None = None  # seconds
    rum_rebuffer_ratio: float | None = None  # fraction 0..1 of video requests after a stall


@dataclass(frozen=True)
class SteeringSettings:
    """How players are steered between the CDNs (HLS RFC 8216bis §7, DASH-IF CTS 001)."""

    server: str  # public base URL of the steering service, ends with "/"
    ttl: int = 30  # whole seconds a player keeps a steering document (its TTL)
    #: Where the viewer's ISO 3166-1 country comes from (CloudFront adds this header when the
    #: origin request policy forwards it); `?region=` on the request overrides it.
    region_header: str = "CloudFront-Viewer-Country"
    max_age: float = 900.0  # seconds: a region's newest probe run older than this is stale
    #: Score points a challenger must lead by to take first place: above the 1-2 points two
    #: equal CDNs differ by from one probe run to the next, below what a 25 % faster start
    #: earns (the composite score compresses: each term is budget / (budget + value)).
    hysteresis: float = 3.0
    #: False: the server answers 410 Gone, so players stop reloading and keep their pathway.
    enabled: bool = True

    def document_url(self, name: str) -> str:
        return self.server + name


@dataclass(frozen=True)
class ProbeConfig:
    path: Path
    regions: list[Region]
    cdns: list[Cdn]
    targets: list[Target]
    probe: ProbeSettings
    budgets: dict[str, Budget]  # region id -> budget (default merged in)
    steering: SteeringSettings | None = None  # None: no `steering:` section

    def region(self, region_id: str) -> Region:
        for r in self.regions:
            if r.id == region_id:
                return r
        known = ", ".join(r.id for r in self.regions)
        raise InputError(f"{self.path}: no region {region_id!r} (known: {known})")

    def region_of_country(self, country: str) -> Region | None:
        """The region whose `countries` list the ISO 3166-1 alpha-2 code (any case); None for
        a country no region claims."""
        code = country.strip().upper()
        return next((r for r in self.regions if code in r.countries), None)

    def with_samples(self, samples: int) -> ProbeConfig:
        return replace(self, probe=replace(self.probe, samples=samples))

    def budget(self, region_id: str) -> Budget:
        return self.budgets.get(region_id, self.budgets.get("default", Budget()))


def default_config_path() -> Path:
    """./regions.yaml, else the shipped one."""
    here = Path(CONFIG_NAME)
    return here if here.exists() else SHIPPED_CONFIG


def load_config(path: Path) -> ProbeConfig:
    """Read and validate a regions.yaml; every mistake is an InputError naming file:line: field."""
    doc = load_yaml(path, "regions.yaml config")
    r = Reader(path)
    r.unknown(doc, "", {"regions", "cdns", "targets", "probe", "budgets", "steering"})
    regions = _regions(r, doc)
    region_ids = {x.id for x in regions}
    return ProbeConfig(
        path=path,
        regions=regions,
        cdns=_cdns(r, doc, region_ids),
        targets=_targets(r, doc),
        probe=_settings(r, r.mapping(doc, "probe", "probe", required=False)),
        budgets=_budgets(r, r.mapping(doc, "budgets", "budgets", required=False), region_ids),
        steering=(_steering(r, r.mapping(doc, "steering", "steering"))
                  if "steering" in doc else None),
    )


def _regions(r: Reader, doc: LineMapping) -> list[Region]:
    regions: list[Region] = []
    for i, m in enumerate(r.items(doc, "regions", "regions")):
        name = f"regions[{i}]"
        r.unknown(m, name, {"id", "name", "weight", "countries"})
        region = Region(r.pattern(m, "id", name, _ID), r.text(m, "name", name),
                        r.number(m, "weight", name, None, low=0.0),
                        _countries(r, m, name))
        if any(x.id == region.id for x in regions):
            raise r.fail(m, "id", f"{name}.id", f"duplicate region {region.id!r}")
        for other in regions:
            shared = set(other.countries) & set(region.countries)
            if shared:
                raise r.fail(m, "countries", f"{name}.countries",
                             f"{sorted(shared)[0]} is already in region {other.id!r}")
        regions.append(region)
    if sum(x.weight for x in regions) <= 0:
        raise r.fail(doc, "regions", "regions", "audience weights must not all be 0")
    return regions


def _countries(r: Reader, m: LineMapping, name: str) -> tuple[str, ...]:
    value = m.get("countries", [])
    where = f"{name}.countries"
    if not isinstance(value, list):
        raise r.fail(m, "countries", where, "must be a list of ISO 3166-1 alpha-2 codes")
    codes: list[str] = []
    for code in value:
        if isinstance(code, bool):  # YAML 1.1 reads NO (Norway) as false
            raise r.fail(m, "countries", where, f"{code!r} is not a country code: quote it "
                         '("NO" for Norway; YAML reads a bare NO as false)')
        text = code.strip().upper() if isinstance(code, str) else None
        if text is None or not _COUNTRY.match(text):
            raise r.fail(m, "countries", where,
                         f"{code!r} is not an ISO 3166-1 alpha-2 country code (like JP)")
        if text in codes:
            raise r.fail(m, "countries", where, f"{text} is listed twice")
        codes.append(text)
    return tuple(codes)


def _cdns(r: Reader, doc: LineMapping, region_ids: set[str]) -> list[Cdn]:
    cdns: list[Cdn] = []
    for i, m in enumerate(r.items(doc, "cdns", "cdns")):
        name = f"cdns[{i}]"
        r.unknown(m, name, {"id", "base_url", "regions"})
        cdn_id = r.pattern(m, "id", name, _ID)
        base = r.text(m, "base_url", name)
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise r.fail(m, "base_url", f"{name}.base_url", f"must be an http(s) URL, got {base!r}")
        if parts.query or parts.fragment:
            raise r.fail(m, "base_url", f"{name}.base_url", "must not have a query or fragment")
        edges: dict[str, EdgeOverride] = {}
        overrides = r.mapping(m, "regions", f"{name}.regions", required=False)
        for region_id, value in overrides.items():
            where = f"{name}.regions.{region_id}"
            if region_id not in region_ids:
                raise r.fail(overrides, region_id, where, "no such region")
            if not isinstance(value, LineMapping):
                raise r.fail(overrides, region_id, where, "must be a mapping (host, resolve)")
            r.unknown(value, where, {"host", "resolve"})
            host = r.text(value, "host", where) if "host" in value else None
            resolve = r.text(value, "resolve", where) if "resolve" in value else None
            if resolve is not None:
                try:
                    ipaddress.ip_address(resolve)
                except ValueError:
                    raise r.fail(value, "resolve", f"{where}.resolve",
                                 f"must be an IP address, got {resolve!r}") from None
            edges[region_id] = EdgeOverride(host, resolve)
        if any(x.id == cdn_id for x in cdns):
            raise r.fail(m, "id", f"{name}.id", f"duplicate CDN {cdn_id!r}")
        cdns.append(Cdn(cdn_id, base if base.endswith("/") else base + "/", edges))
    return cdns


def _targets(r: Reader, doc: LineMapping) -> list[Target]:
    targets: list[Target] = []
    for i, m in enumerate(r.items(doc, "targets", "targets", shorthand="path")):
        name = f"targets[{i}]"
        r.unknown(m, name, {"path", "kind"})
        path = r.text(m, "path", name).lstrip("/")
        guess = "hls" if path.endswith(".m3u8") else "dash" if path.endswith(".mpd") else "file"
        targets.append(Target(path, r.choice(m, "kind", name, TARGET_KINDS, guess)))
    return targets


def _settings(r: Reader, m: LineMapping) -> ProbeSettings:
    d = ProbeSettings()
    r.unknown(m, "probe", {"samples", "connections", "concurrency", "timeout", "deadline",
                           "renditions", "segments", "tls_verify", "lag_threshold"})
    tls_verify = m.get("tls_verify", d.tls_verify)
    if not isinstance(tls_verify, bool):
        raise r.fail(m, "tls_verify", "probe.tls_verify", "must be true or false")
    return ProbeSettings(
        samples=int(r.number(m, "samples", "probe", d.samples, 1, 100_000, integer=True)),
        connections=r.choice(m, "connections", "probe", CONNECTIONS, d.connections),
        concurrency=int(r.number(m, "concurrency", "probe", d.concurrency, 1, 1000, integer=True)),
        timeout=r.duration(m, "timeout", "probe", d.timeout) or d.timeout,
        deadline=r.duration(m, "deadline", "probe", d.deadline) or d.deadline,
        renditions=r.choice(m, "renditions", "probe", RENDITION_CHOICES, d.renditions),
        segments=int(r.number(m, "segments", "probe", d.segments, 1, 1000, integer=True)),
        tls_verify=tls_verify,
        lag_threshold=r.duration(m, "lag_threshold", "probe", d.lag_threshold) or 0.0,
    )


def _budget(r: Reader, m: LineMapping, name: str, base: Budget) -> Budget:
    r.unknown(m, name, {"ttfb_p95", "startup_p95", "min_throughput", "max_error_rate",
                        "rum_startup_p95", "rum_rebuffer_ratio"})
    return Budget(
        ttfb_p95=r.duration(m, "ttfb_p95", name, base.ttfb_p95),
        startup_p95=r.duration(m, "startup_p95", name, base.startup_p95),
        min_throughput=(r.number(m, "min_throughput", name, None, 0.0)
                        if "min_throughput" in m else base.min_throughput),
        max_error_rate=(r.number(m, "max_error_rate", name, None, 0.0, 1.0)
                        if "max_error_rate" in m else base.max_error_rate),
        rum_startup_p95=r.duration(m, "rum_startup_p95", name, base.rum_startup_p95),
        rum_rebuffer_ratio=(r.number(m, "rum_rebuffer_ratio", name, None, 0.0, 1.0)
                            if "rum_rebuffer_ratio" in m else base.rum_rebuffer_ratio),
    )


def _budgets(r: Reader, m: LineMapping, region_ids: set[str]) -> dict[str, Budget]:
    default = _budget(r, r.mapping(m, "default", "budgets.default", required=False),
                      "budgets.default", Budget())
    budgets = {"default": default}
    for key in m:
        if key == "default":
            continue
        if key not in region_ids:
            raise r.fail(m, key, f"budgets.{key}", "no such region (or 'default')")
        budgets[key] = _budget(r, r.mapping(m, key, f"budgets.{key}"), f"budgets.{key}", default)
    return budgets


def _steering(r: Reader, m: LineMapping) -> SteeringSettings:
    d = SteeringSettings(server="")
    r.unknown(m, "steering", {"server", "ttl", "region_header", "max_age", "hysteresis",
                              "enabled"})
    server = r.text(m, "server", "steering")
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise r.fail(m, "server", "steering.server", f"must be an http(s) URL, got {server!r}")
    if parts.query or parts.fragment:
        raise r.fail(m, "server", "steering.server", "must not have a query or fragment")
    ttl = r.duration(m, "ttl", "steering", d.ttl) or d.ttl
    if ttl != int(ttl):  # the documents' TTL is a JSON integer of seconds
        raise r.fail(m, "ttl", "steering.ttl", f"must be whole seconds, got {ttl:g} s")
    header = r.text(m, "region_header", "steering", d.region_header)
    if not _FIELD_NAME.match(header):
        raise r.fail(m, "region_header", "steering.region_header",
                     f"{header!r} is not an HTTP header name")
    enabled = r.flag(m, "enabled", "steering", d.enabled)
    return SteeringSettings(
        server=server if server.endswith("/") else server + "/",
        ttl=int(ttl),
        region_header=header,
        max_age=r.duration(m, "max_age", "steering", d.max_age) or d.max_age,
        hysteresis=r.number(m, "hysteresis", "steering", d.hysteresis, 0.0, 100.0),
        enabled=enabled,
    )
