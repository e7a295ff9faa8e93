"""The probe's event loop: a selector that stamps when the kernel reported data, not when we ran.

Under load one loop iteration handles many sockets; a first byte reported by `select()` at t is
seen by its protocol at t + (time spent on the sockets before it) and by its task later still.
`StampedSelector` records the instant each `select()` returns; a protocol's `data_received` takes
that instant as the arrival time, so the work queued behind it does not inflate TTFB.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable
from time import perf_counter_ns

_Base: type[selectors.BaseSelector] = selectors.DefaultSelector


class StampedSelector(_Base):  # type: ignore[misc,valid-type]
    """The platform's default selector, plus `woke_ns`: when the last select() returned."""

    def __init__(self) -> None:
        super().__init__()
        self.woke_ns = perf_counter_ns()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events: list[tuple[selectors.SelectorKey, int]] = super().select(timeout)
        self.woke_ns = perf_counter_ns()
        return events


class StampedLoop(asyncio.SelectorEventLoop):
    """A selector event loop that keeps its StampedSelector where code may read it (asyncio's
    own reference, `_selector`, is private)."""

    def __init__(self) -> None:
        self.stamped_selector = StampedSelector()
        super().__init__(self.stamped_selector)


def new_loop() -> asyncio.AbstractEventLoop:
    return StampedLoop()


def arrival_clock(loop: asyncio.AbstractEventLoop) -> Callable[[], int]:
    """A function giving the arrival time of data being handled now (perf_counter_ns): the
    selector's stamp on the probe's loop, the clock itself on any other loop."""
    if isinstance(loop, StampedLoop):
        selector = loop.stamped_selector
        return lambda: selector.woke_ns
    return perf_counter_ns
