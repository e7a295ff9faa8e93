"""Event-loop lag heartbeat: tells which fetches were timed while the loop was too busy to notice.

A probe timestamps events when the loop gets round to them; if a callback or a burst of work
holds the loop, a first byte that arrived at t is stamped at t + lag.  A heartbeat task sleeps a
fixed interval and measures how late it wakes; every wake later than the threshold is an episode
[expected wake, actual wake], and a fetch overlapping an episode is flagged as taken under lag.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from time import perf_counter_ns

#: Heartbeat period; short enough to catch a 5 ms stall, long enough to cost nothing.
INTERVAL_NS = 10_000_000
_MAX_EPISODES = 100_000


@dataclass(frozen=True)
class LagStats:
    beats: int
    max: float  # seconds
    episodes: int  # wakes later than the threshold


class LagMonitor:
    """Heartbeat on the running loop; `lag_during()` answers for one fetch's time window."""

    def __init__(self, threshold: float, interval: float = INTERVAL_NS / 1e9) -> None:
        # A stall shorter than the interval is seen only when a wake falls inside it: a
        # finer heartbeat (tests that check timing to the millisecond) misses fewer.
        self.threshold_ns = int(threshold * 1e9)
        self.interval_ns = int(interval * 1e9)
        self._episodes: list[tuple[int, int]] = []
        self._beats = 0
        self._max_ns = 0

    async def _beat(self) -> None:
        while True:
            expected = perf_counter_ns() + self.interval_ns
            await asyncio.sleep(self.interval_ns / 1e9)
            woke = perf_counter_ns()
            late = woke - expected
            self._beats += 1
            self._max_ns = max(self._max_ns, late)
            if late > self.threshold_ns and len(self._episodes) < _MAX_EPISODES:
                self._episodes.append((expected, woke))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[LagMonitor]:
        task = asyncio.get_running_loop().create_task(self._beat())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def lag_during(self, start_ns: int, end_ns: int) -> float:
        """Largest lag episode (seconds) overlapping [start, end]; 0.0 when the loop kept up."""
        worst = 0
        for begin, woke in reversed(self._episodes):
            if woke < start_ns:
                break
            if begin <= end_ns:
                worst = max(worst, woke - begin)
        return worst / 1e9

    def stats(self) -> LagStats:
        return LagStats(self._beats, max(self._max_ns, 0) / 1e9, len(self._episodes))
