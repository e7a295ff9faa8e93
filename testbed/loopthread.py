"""An asyncio server on a thread of its own, for the local endpoints of tests and benchmarks."""

from __future__ import annotations

import asyncio
import threading
from typing import Self


class LoopThread:
    """Serves on its own thread, so the thread that drives clients (or times them) stays free.

    A subclass implements `_serve`: start listening, set `url`, call `ready()`, then return
    once `stop` is set, having closed what it opened.
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.url = ""

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def ready(self) -> None:
        self._started.set()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._stop = asyncio.Event()
        self._loop.run_until_complete(self._serve(self._stop))

    async def _serve(self, stop: asyncio.Event) -> None:
        raise NotImplementedError
