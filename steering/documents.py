"""The steering documents players reload: HLS steering manifest and DASH-IF steering response.

HLS (RFC 8216bis §7.2): a JSON object with VERSION 1, TTL (seconds), RELOAD-URI,
PATHWAY-PRIORITY (pathway ids, most preferred first) and optionally PATHWAY-CLONES.
DASH (DASH-IF CTS 001, published as ETSI TS 103 998): the same shape, its priority naming
`BaseURL@serviceLocation` values. The community-review draft called that list
SERVICE-LOCATION-PRIORITY; version 1.0, dash.js and shaka-player read PATHWAY-PRIORITY, video.js
either: a DASH document carries both, with the same list.

Pathway clones turn a CDN's per-region edge host of regions.yaml (`cdns[].regions.ID.host`)
into a pathway of its own for that region's viewers: `{cdn}.{region}` cloned from the CDN's
pathway with URI-REPLACEMENT HOST (only a bare host name: HOST replaces the host, never the port,
so an override that changes the port cannot be expressed and is left out).

Every value comes from the config and the plan, never from a request: nothing a viewer sends is
reflected into a document.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from packager.errors import InputError
from packager.output.steering import Pathway, SteeringSpec
from probes.config import Cdn, ProbeConfig, SteeringSettings

HLS_DOCUMENT = "hls.json"
DASH_DOCUMENT = "dash.json"
DOCUMENTS = (HLS_DOCUMENT, DASH_DOCUMENT)
VERSION = 1
#: RELOAD-URI's marker: the request is a reload, so the throughput the player reports was
#: measured during playback (hls.js sends its default estimate on the very first request).
RELOAD_PARAM = "reload"


@dataclass(frozen=True)
class Clone:
    """A pathway cloned from a CDN's for one region (RFC 8216bis §7.2 PATHWAY-CLONES)."""

    id: str  # "{cdn}.{region}"
    base: str  # the CDN id
    host: str


def clones_for(config: ProbeConfig, region: str | None) -> dict[str, Clone]:
    """CDN id -> its clone for the region's viewers (only CDNs with a plain host override)."""
    out: dict[str, Clone] = {}
    for cdn in config.cdns:
        host = _override_host(cdn, region)
        if host is not None:
            out[cdn.id] = Clone(f"{cdn.id}.{region}", cdn.id, host)
    return out


def _override_host(cdn: Cdn, region: str | None) -> str | None:
    override = cdn.edges.get(region) if region is not None else None
    if override is None or not override.host:
        return None
    base = urlsplit(cdn.base_url)
    moved = urlsplit(f"//{override.host}")
    if moved.port is not None and moved.port != base.port:
        return None  # HOST cannot change the port
    return moved.hostname if moved.hostname != base.hostname else None


def demote(order: Sequence[str], slow: Sequence[str]) -> tuple[str, ...]:
    """The order with the pathways a session found too slow moved to the end (their own order
    kept): the session moves to the best other pathway, whatever the regional ranking says."""
    return (*(p for p in order if p not in slow), *(p for p in order if p in slow))


def reload_uri(steering: SteeringSettings, name: str, region: str | None) -> str:
    """Where players reload from: the same document, marked as a reload, keeping the region
    the first request named (a validated region id, never raw input)."""
    query = {RELOAD_PARAM: "1", **({"region": region} if region is not None else {})}
    return steering.document_url(name) + "?" + urlencode(query)


def document(name: str, order: Sequence[str], steering: SteeringSettings,
             clones: dict[str, Clone], region: str | None = None) -> dict[str, Any]:
    """The steering document `name` (hls.json or dash.json) for a CDN order."""
    priority = [clones[cdn].id if cdn in clones else cdn for cdn in order]
    doc: dict[str, Any] = {
        "VERSION": VERSION,
        "TTL": steering.ttl,
        "RELOAD-URI": reload_uri(steering, name, region),
        "PATHWAY-PRIORITY": priority,
    }
    if name == DASH_DOCUMENT:
        doc["SERVICE-LOCATION-PRIORITY"] = list(priority)
    if clones:
        doc["PATHWAY-CLONES"] = [
            {"BASE-ID": c.base, "ID": c.id, "URI-REPLACEMENT": {"HOST": c.host}}
            for c in clones.values()
        ]
    return doc


def encode(doc: dict[str, Any]) -> bytes:
    """Compact JSON, ASCII only (every non-ASCII character escaped)."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def manifest_spec(config: ProbeConfig) -> SteeringSpec:
    """What `package --steering` writes into the manifests: the steering server's documents
    and every CDN of the config as a pathway (the first listed is the default)."""
    steering = config.steering
    if steering is None:
        raise InputError(f"{config.path}: --steering needs a `steering:` section "
                         "(server, ttl, ...) in the config")
    return SteeringSpec(
        hls_server_uri=steering.document_url(HLS_DOCUMENT),
        dash_server_uri=steering.document_url(DASH_DOCUMENT),
        pathways=tuple(Pathway(c.id, c.base_url) for c in config.cdns),
    )
