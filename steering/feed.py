"""What the steering server knows: the config and the probe results, re-read every refresh.

A refresh that cannot read its sources (S3 unreachable, a file half-copied by hand, a config
edited into an invalid state) keeps the last good plan and counts the failure: players keep
being steered by the last measurement instead of losing steering. A source that holds no
records yet is not a failure: the plan then says "no data" and gives the config's order.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from packager.errors import CdnpackError
from probes.config import ProbeConfig, load_config
from probes.results import read_results
from steering.plan import Plan, make_plan

if TYPE_CHECKING:
    from cdn.s3 import Connection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    config: ProbeConfig
    plan: Plan
    refreshed: float  # time.monotonic() of the last refresh that read its sources
    failures: int = 0  # refreshes that failed since the server started
    error: str | None = None  # why the latest refresh failed (None: it worked)


@dataclass(frozen=True)
class Feed:
    """Where a server's knowledge comes from."""

    config_path: Path
    sources: tuple[str, ...]  # result files, directories or s3://BUCKET/PREFIX
    connection: Connection | None = None

    def first(self, config: ProbeConfig) -> Snapshot:
        """The snapshot a server starts with (the config's order if the sources fail), every
        region's order and basis logged."""
        empty = Snapshot(config, make_plan(None, config, datetime.now(UTC)), time.monotonic())
        snapshot = self._read(empty)
        log_changes(None, snapshot.plan, snapshot.config)
        return snapshot

    def refresh(self, previous: Snapshot) -> Snapshot:
        """Re-read config and results and plan again; on failure keep `previous`'s plan.
        Regions whose order or basis changed are logged."""
        snapshot = self._read(previous)
        if snapshot.plan is not previous.plan:
            log_changes(previous.plan, snapshot.plan, snapshot.config)
        return snapshot

    def _read(self, previous: Snapshot) -> Snapshot:
        now = datetime.now(UTC)
        try:
            config = load_config(self.config_path)
            results = read_results(self.sources, self.connection, allow_empty=True)
        except CdnpackError as exc:
            log.warning("steering refresh failed, keeping the last good plan: %s", exc)
            return replace(previous, failures=previous.failures + 1, error=str(exc))
        plan = make_plan(results if results.fetches else None, config, now, previous.plan)
        return Snapshot(config, plan, time.monotonic(), previous.failures)


def log_changes(before: Plan | None, after: Plan, config: ProbeConfig) -> None:
    """A line per region whose order or basis changed (every region when `before` is None):
    the log says what steering does and when it runs without fresh measurements."""
    max_age = config.steering.max_age if config.steering is not None else float("inf")
    hysteresis = config.steering.hysteresis if config.steering is not None else 0.0
    old = {r.region: r for r in (*before.regions, before.overall)} if before else {}
    for region in (*after.regions, after.overall):
        was = old.get(region.region)
        if was is not None and was.order == region.order and was.basis == region.basis:
            continue
        why = "; ".join(region.reasons(after.created, max_age, hysteresis))
        level = logging.WARNING if region.stale else logging.INFO
        log.log(level, "%s: %s (%s)", region.region, ", ".join(region.order), why)
