"""`/metrics` of the steering server: Prometheus text exposition (format 0.0.4).

Decisions are counted per region and the pathway the document put first; the plan's age (time
since a refresh last read its sources) and each region's data age and staleness show when
steering runs on old or no measurements.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from steering.feed import Snapshot

#: The classic text format generate_latest writes (every name here is plain ASCII).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Tally:
    """What the server counts while it answers (one per server; never shared)."""

    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (region, first)
    moves: Counter[tuple[str, str]] = field(default_factory=Counter)  # (region, cdn moved)
    responses: Counter[tuple[str, int]] = field(default_factory=Counter)  # (path, status)


class _Collector(Collector):
    def __init__(self, snapshot: Callable[[], Snapshot], tally: Tally) -> None:
        self.snapshot = snapshot
        self.tally = tally

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot()
        plan = snap.plan
        yield _counter("cdnpack_steering_decisions", "Steering documents served, by viewer "
                       "region and the pathway they put first.", ("region", "pathway"),
                       self.tally.decisions)
        yield _counter("cdnpack_steering_throughput_moves", "Sessions moved off a pathway "
                       "whose own measured throughput was below the region's floor.",
                       ("region", "pathway"), self.tally.moves)
        yield _counter("cdnpack_steering_responses", "HTTP responses by path and status code.",
                       ("path", "code"), self.tally.responses)
        yield GaugeMetricFamily(
            "cdnpack_steering_plan_age_seconds", "Seconds since a refresh last read the "
            "config and the probe results.", value=time.monotonic() - snap.refreshed)
        yield CounterMetricFamily(
            "cdnpack_steering_refresh_failures", "Refreshes that could not read their "
            "sources (the last good plan was kept).", value=snap.failures)
        enabled = snap.config.steering is not None and snap.config.steering.enabled
        yield GaugeMetricFamily("cdnpack_steering_enabled", "1 while steering is enabled; 0: "
                                "every document request gets 410 Gone.", value=int(enabled))
        stale = GaugeMetricFamily(
            "cdnpack_steering_stale", "1 when the region's order is the config's because its "
            "probe results are missing or older than max_age.", labels=["region", "basis"])
        age = GaugeMetricFamily(
            "cdnpack_steering_results_age_seconds", "Age of the probe run the region's "
            "order comes from.", labels=["region"])
        position = GaugeMetricFamily(
            "cdnpack_steering_pathway_position", "Place of each pathway in the region's "
            "order (1 = first).", labels=["region", "pathway"])
        for region in (*plan.regions, plan.overall):
            stale.add_metric([region.region, region.basis], int(region.stale))
            seconds = region.age(plan.created)
            if seconds is not None:
                age.add_metric([region.region], seconds + time.monotonic() - snap.refreshed)
            for i, pathway in enumerate(region.order, 1):
                position.add_metric([region.region, pathway], i)
        yield stale
        yield age
        yield position


def _counter(name: str, doc: str, labels: tuple[str, str],
             counts: Counter[tuple[str, str]] | Counter[tuple[str, int]]) -> Metric:
    family = CounterMetricFamily(name, doc, labels=list(labels))
    for key, n in sorted(counts.items()):
        family.add_metric([str(k) for k in key], n)
    return family


def registry(snapshot: Callable[[], Snapshot], tally: Tally) -> CollectorRegistry:
    """A registry of this server's metrics only (never prometheus_client's global one)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Collector(snapshot, tally))
    return reg


def exposition(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)
