"""One steering request answered: the viewer's region, what its player reports, the document.

The region comes from `?region=ID` when it names a configured region, else from the country
in the config's `region_header` (CloudFront-Viewer-Country) through the regions' `countries`;
anyone else is an unknown viewer and gets the overall order. Players report the pathway they
are on and their measured throughput (HLS `_HLS_pathway` / `_HLS_throughput`, RFC 8216bis
§7.2; DASH `_DASH_pathway="a,b"` / `_DASH_throughput=x,y`, DASH-IF CTS 001 - dash.js lists
every service location it used since the last request). On a reload (the RELOAD-URI we hand
out carries `reload=1`), a pathway whose reported throughput is below the region's floor is
moved to the end of the order: the session changes CDN even when the regional ranking keeps
it first. The first request's throughput is ignored: hls.js sends its default estimate
before it has fetched anything. Pathway names the config does not know are ignored.

Every document is built from config and plan values only and encoded once per distinct
(document, region, region named, slow pathways): all four come from the config, so the cache
is bounded by it, whatever viewers send.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from probes.config import ProbeConfig
from steering.documents import (
    DASH_DOCUMENT,
    HLS_DOCUMENT,
    RELOAD_PARAM,
    clones_for,
    demote,
    document,
    encode,
)
from steering.plan import OVERALL, Plan

#: The query parameters players add, per document: (pathway, throughput).
REPORTS = {
    HLS_DOCUMENT: ("_HLS_pathway", "_HLS_throughput"),
    DASH_DOCUMENT: ("_DASH_pathway", "_DASH_throughput"),
}


@dataclass(frozen=True)
class Answer:
    body: bytes
    region: str  # the region id used, or OVERALL
    first: str  # the pathway the document puts first
    moved: tuple[str, ...]  # CDNs moved back for reporting a throughput below the floor


class Answers:
    """The documents of one plan (a new plan gets a new Answers)."""

    def __init__(self, plan: Plan, config: ProbeConfig) -> None:
        assert config.steering is not None
        self.plan = plan
        self.config = config
        self.steering = config.steering
        self.header = config.steering.region_header
        self.regions = {r.id for r in config.regions}
        self.countries = {c: r.id for r in config.regions for c in r.countries}
        #: region (None: unknown viewers) -> pathway id a player may report -> CDN id
        self.pathways: dict[str | None, dict[str, str]] = {}
        for region in (None, *self.regions):
            known = {c.id: c.id for c in config.cdns}
            known.update({clone.id: cdn for cdn, clone in clones_for(config, region).items()})
            self.pathways[region] = known
        self._cache: dict[tuple[str, str | None, bool, tuple[str, ...]], Answer] = {}

    def region_of(self, query: Mapping[str, str], headers: Mapping[str, str]
                  ) -> tuple[str | None, bool]:
        """(region id or None, whether the request named it with ?region=)."""
        named = query.get("region")
        if named is not None and named in self.regions:
            return named, True
        country = headers.get(self.header)
        if country is not None:
            return self.countries.get(country.strip().upper()), False
        return None, False

    def reported(self, name: str, region: str | None, query: Mapping[str, str]
                 ) -> list[tuple[str, float]]:
        """(CDN, bits/s) the player measured, for pathways the config knows."""
        pathway_key, throughput_key = REPORTS[name]
        pathways = query.get(pathway_key, "").strip('"').split(",")
        rates = query.get(throughput_key, "").split(",")
        known = self.pathways[region]
        out: list[tuple[str, float]] = []
        for pathway, rate in zip(pathways, rates, strict=False):
            cdn = known.get(pathway.strip())
            if cdn is None:
                continue
            try:
                bits = float(rate)
            except ValueError:
                continue
            if math.isfinite(bits) and bits >= 0:
                out.append((cdn, bits))
        return out

    def answer(self, name: str, query: Mapping[str, str], headers: Mapping[str, str]) -> Answer:
        """The document `name` (hls.json, dash.json) for this request."""
        region, named = self.region_of(query, headers)
        plan = self.plan.for_region(region)
        slow: tuple[str, ...] = ()
        floor = plan.throughput_floor
        if floor is not None and query.get(RELOAD_PARAM) == "1":
            slow = tuple(dict.fromkeys(
                cdn for cdn, bits in self.reported(name, region, query) if bits < floor))
        key = (name, region, named, slow)
        cached = self._cache.get(key)
        if cached is None:
            order = demote(plan.order, slow)
            clones = clones_for(self.config, region)
            doc = document(name, order, self.steering, clones, region if named else None)
            cached = Answer(encode(doc), region or OVERALL, doc["PATHWAY-PRIORITY"][0],
                            tuple(c for c in slow if c in plan.order))
            self._cache[key] = cached
        return cached
