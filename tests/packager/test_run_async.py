"""interrupts.run_async: a signal in the instant before the loop takes its coroutine (the
release interrupt test caught one: 'coroutine ... was never awaited' on stderr after the
one-line message) leaves no coroutine unstarted behind."""

from __future__ import annotations

import asyncio
import gc
import inspect
import warnings

import pytest

from packager.interrupts import Interrupted, run_async


async def job() -> int:
    await asyncio.sleep(0)
    return 7


def test_a_signal_while_the_loop_is_made_closes_the_coroutine() -> None:
    def interrupted_loop() -> asyncio.AbstractEventLoop:
        raise Interrupted()  # what the first-signal handler raises, wherever the thread is

    coroutine = job()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "never awaited" would be raised here
        with pytest.raises(Interrupted):
            run_async(coroutine, loop_factory=interrupted_loop)
        assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED
        del coroutine
        gc.collect()


def test_a_run_returns_its_result() -> None:
    assert run_async(job()) == 7
