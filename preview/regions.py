"""Which pathway each region gets: the steering plan's order per region, as the page shows it
and as the preview's own steering documents answer it to the page's player.

The order comes from steering/plan.py's `make_plan`, the one function `steer serve`, `steer
publish`, `release --steering` and the demo use, so what the preview shows is what a viewer in
that region gets. Without a plan, every region gets the manifests' order (default pathway
first), which is what players do before their first steering document.
"""

from __future__ import annotations

from dataclasses import dataclass

from probes.config import ProbeConfig
from steering.documents import DASH_DOCUMENT, VERSION, encode
from steering.plan import OVERALL, Plan

#: Seconds the page's player keeps a steering document: a region picked on the page takes
#: effect at the next reload.
TTL = 10


@dataclass(frozen=True)
class RegionOrder:
    region: str  # a region id of the config, or OVERALL (viewers of no configured region)
    name: str
    order: tuple[str, ...]  # pathway ids, the first is where players go
    basis: str  # the plan's: measured, stale, no data
    reasons: tuple[str, ...]


def from_plan(plan: Plan, config: ProbeConfig) -> tuple[RegionOrder, ...]:
    """Every region of the plan, then the one for viewers of no region."""
    steering = config.steering
    max_age = steering.max_age if steering is not None else float("inf")
    hysteresis = steering.hysteresis if steering is not None else 0.0
    names = {r.id: r.name for r in config.regions}
    return tuple(
        RegionOrder(r.region, names.get(r.region, "viewers of no region (audience-weighted)"),
                    r.order, r.basis, tuple(r.reasons(plan.created, max_age, hysteresis)))
        for r in (*plan.regions, plan.overall))


def order_for(regions: tuple[RegionOrder, ...], region: str | None,
              pathways: tuple[str, ...]) -> tuple[str, ...]:
    """The order a viewer of `region` gets, over the release's pathways only (a CDN the plan
    knows but the manifests do not name cannot be steered to; one the plan does not know comes
    last, in the manifests' order). An unknown or absent region gets the overall order."""
    by_id = {r.region: r for r in regions}
    chosen = by_id.get(region or OVERALL) or by_id.get(OVERALL)
    planned = [p for p in chosen.order if p in pathways] if chosen is not None else []
    return (*planned, *(p for p in pathways if p not in planned))


def steering_document(name: str, order: tuple[str, ...]) -> bytes:
    """The steering document `name` (hls.json, dash.json) for an order: RFC 8216bis §7.2 and
    DASH-IF CTS 001 (which reads PATHWAY-PRIORITY; SERVICE-LOCATION-PRIORITY for the draft
    video.js follows). No RELOAD-URI: players reload the document they were given."""
    doc: dict[str, object] = {"VERSION": VERSION, "TTL": TTL, "PATHWAY-PRIORITY": list(order)}
    if name == DASH_DOCUMENT:
        doc["SERVICE-LOCATION-PRIORITY"] = list(order)
    return encode(doc)
