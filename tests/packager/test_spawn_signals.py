"""tools.spawn under a signal that lands inside `subprocess.Popen`, after its fork and before it
returns: the child must still be stopped (the interrupt test of `package --chunks 3` caught an
ffmpeg outliving a SIGTERM, once in a full run on a loaded machine). The signal is real, sent
to this process by itself at that instant; the child is a real process."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from packager import tools
from packager.interrupts import (
    Interrupted,
    install,
    sigint_ignored_by_children,
    signals_deferred,
)
from tests.interrupts import alive

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def first_signal_handlers() -> Iterator[None]:
    """cdnpack's handlers (the first SIGINT or SIGTERM raises Interrupted), then the test
    runner's back."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    install()
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_at_the_end_of_popen_stops_the_child(
        sig: signal.Signals, first_signal_handlers: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[subprocess.Popen[str]] = []

    class SignalledPopen(subprocess.Popen):  # type: ignore[type-arg]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)
            os.kill(os.getpid(), sig)  # Python runs the handler before the next line

    monkeypatch.setattr(subprocess, "Popen", SignalledPopen)  # the module tools.spawn calls
    with pytest.raises(Interrupted), tools.spawn(SLEEPER):
        pytest.fail("the signal was not raised where the child is held")
    (child,) = started
    assert child.poll() is not None, f"child {child.pid} outlived the signal"
    assert not alive(child.pid)


def test_deferred_signals_reach_the_handler_in_force_once_delivered(
        first_signal_handlers: None) -> None:
    with signals_deferred() as deliver:
        os.kill(os.getpid(), signal.SIGTERM)  # held: nothing raised here
        with pytest.raises(Interrupted) as raised:
            deliver()
    assert raised.value.signum == signal.SIGTERM


def test_no_signal_nothing_delivered(first_signal_handlers: None) -> None:
    with signals_deferred() as deliver:
        deliver()
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN  # cdnpack's, not ignored


IN_A_CALLBACK = """
import os, signal, sys, time, weakref
from packager.interrupts import Interrupted, install
install()
class Thing: pass
def callback(ref):
    os.kill(os.getpid(), signal.{sig})
    for _ in range(100_000):  # the handler runs here, inside the callback
        pass
thing = Thing()
ref = weakref.ref(thing, callback)
try:
    del thing  # the callback runs now
    time.sleep(10)
    print("went on")
except Interrupted as stop:
    print("stopped", stop.signum)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_inside_a_weakref_callback_still_stops_the_command(
        sig: signal.Signals) -> None:
    """Python drops an exception raised in a weakref callback ("Exception ignored in ..."):
    the first signal's `Interrupted` must not be lost there (a catalog title went on after
    its SIGTERM, signals ignored from then on), nor printed."""
    ran = subprocess.run([sys.executable, "-c", IN_A_CALLBACK.replace("{sig}", sig.name)],
                         capture_output=True, text=True, timeout=60, check=False,
                         cwd=Path(__file__).resolve().parents[2])
    assert ran.stdout.strip() == f"stopped {int(sig)}", ran.stderr[-2000:]
    assert ran.stderr == ""


def _report_sigint(answers: Any) -> None:
    answers.put(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)


def test_processes_started_for_the_coordinator_ignore_a_terminal_s_ctrl_c(
        first_signal_handlers: None) -> None:
    """A spawned process (a catalog title, a LocalCluster worker) started inside
    sigint_ignored_by_children ignores SIGINT from its first line, before it could leave the
    process group a terminal's Ctrl-C reaches; the coordinator's own handler is back after."""
    context = multiprocessing.get_context("spawn")
    answers = context.Queue()
    with sigint_ignored_by_children():
        child = context.Process(target=_report_sigint, args=(answers,))
        child.start()
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    try:
        assert answers.get(timeout=60) is True
    finally:
        child.join(60)
    unguarded = context.Process(target=_report_sigint, args=(answers,))
    unguarded.start()
    try:
        assert answers.get(timeout=60) is False  # what the test would see without it
    finally:
        unguarded.join(60)
