"""Ctrl-C and SIGTERM: how every command stops, at any moment, in one line.

`install()` (cli.main) makes the first SIGINT or SIGTERM raise `Interrupted` where the main
thread is. It is a KeyboardInterrupt, so every `finally` and `with` written for Ctrl-C (work
trees removed, children stopped, staged manifests deleted, uploads cancelled) runs for SIGTERM
alike; cli.main then prints one line and exits 128 + the signal (130, 143). Signals after the
first are ignored: the clean-up they would cut short is bounded, and cut short it would leave
children or staged objects behind. A first signal that lands where Python cannot raise (a
weakref callback, a __del__) is raised again at the next line instead of being dropped.

Children run in process groups of their own (packager/tools.spawn): a terminal's Ctrl-C, which
signals the whole foreground process group, reaches cdnpack alone, and cdnpack stops its
children after the clean-up that may still need them (the demo's local origin answers the
deletion of the staged manifests).

The servers and the probe schedule stop gracefully instead (`loop_stops_on_signals`,
`stop_on_signals`): they take the signals over while they run, finish or close what is open,
then raise `Interrupted` for the signal that stopped them.

A job on an event loop (a probe run, a key server exchange) runs through `run_async`: a signal
there cancels its main task, so its tasks unwind as cancelled (connections closed, nothing
left pending) instead of meeting the signal's exception in whichever callback was running,
which asyncio would then report as a task exception never retrieved, traceback and all.
"""

from __future__ import annotations

import _thread
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The command was stopped by `signum`; what it had begun is cleaned up on the way out."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def message(self) -> str:
        return "interrupted" if self.signum == signal.SIGINT else "terminated"


def install() -> None:
    """The first SIGINT or SIGTERM raises `Interrupted`; later ones are ignored. A signal the
    shell made us ignore stays ignored: a job started in the background (`cdnpack push ... &`)
    is not the terminal's to interrupt, as Python itself would have it."""
    for sig in _heeded():
        signal.signal(sig, _first_signal)
    if sys.unraisablehook is not _unraisable:
        _previous_hook[:] = [sys.unraisablehook]
        sys.unraisablehook = _unraisable


#: The hook _unraisable hands every other exception to (the one in place before install).
_previous_hook: list[Callable[[Any], object]] = []


def _unraisable(unraisable: Any) -> None:
    """A signal that lands while Python runs a weakref callback, a __del__ or a garbage
    collector callback raises its `Interrupted` where Python cannot raise: it is reported
    ("Exception ignored in ...") and dropped, and the command goes on with the signals
    ignored, unstoppable (seen in a catalog title stopped by SIGTERM). Instead it is raised
    again, silently, at the next line Python runs."""
    exc = unraisable.exc_value
    if isinstance(exc, Interrupted):
        signal.signal(exc.signum, _first_signal)
        # Made pending by another thread, once this one has let the interpreter go: the main
        # thread takes a pending signal at its next line, and a line of this hook would drop
        # the exception again (threading.Thread.start waits for the thread: so would it).
        with contextlib.suppress(RuntimeError):  # no new thread at exit: the end is near
            _thread.start_new_thread(_thread.interrupt_main, (signal.Signals(exc.signum),))
            return
    (_previous_hook[-1] if _previous_hook else sys.__unraisablehook__)(unraisable)


def _heeded() -> list[signal.Signals]:
    """The signals not ignored by whoever started us."""
    return [sig for sig in SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN]


def _first_signal(signum: int, frame: FrameType | None) -> None:
    stopped_by(signum)


def stopped_by(signum: int) -> NoReturn:
    """Unwind as the first signal does: signals ignored from now on, `Interrupted` raised."""
    ignore()
    raise Interrupted(signum)


def ignore() -> None:
    """From now on SIGINT and SIGTERM change nothing: a clean-up is running."""
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


@contextlib.contextmanager
def signals_held() -> Iterator[set[int | signal.Signals]]:
    """SIGINT and SIGTERM blocked (held pending) around a fork; yields the mask to restore.

    A forked child starts as a copy of this process, handlers included: a Ctrl-C sent to the
    process group in the instant after fork would raise `Interrupted` in the child before it
    reaches its own code, and the child would unwind up the coordinator's stack as if it were
    the coordinator (its `finally` blocks closing descriptors, removing the build tree,
    printing the error line). Held across the fork, the signal waits in both: this process
    takes it when the block ends, the child once it has set itself up (`worker_signals`)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield previous
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def sigint_ignored_by_children() -> Iterator[None]:
    """SIGINT ignored while processes are started that must never take a terminal's Ctrl-C
    (a LocalCluster's workers, a catalog's title processes): the coordinator decides what an
    interrupt stops. An ignored signal stays ignored across exec, and Python keeps it so in
    a child that starts that way; a child that starts with SIGINT heeded takes the Ctrl-C
    sent to the whole process group wherever it is (before it could leave the group, a
    spawned title printed a KeyboardInterrupt traceback from multiprocessing's spawn_main).
    A Ctrl-C in this window is dropped: the next one is heeded. Only the main thread, where
    Python sets handlers, does this; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


@contextlib.contextmanager
def signals_deferred() -> Iterator[Callable[[], None]]:
    """SIGINT and SIGTERM put off while a child process is started; yields `deliver`, which
    hands a signal that came meanwhile to the handler in force, as if it came then.

    Raised inside `subprocess.Popen`, after its fork but before it returns, a signal's
    exception loses the child: nobody holds its Popen to stop it, and the ffmpeg it is
    outlives cdnpack (seen once in a full test run on a loaded machine: SIGTERM of `package
    --chunks 3` as a chunk worker started its encoder). Blocking the signals instead would
    pass the block on to the child (exec keeps a signal mask), which could then not be
    terminated. The caller calls `deliver()` where the child is in its hands (its clean-up in
    place). Only the main thread, where Python runs signal handlers, defers; elsewhere
    `deliver` has nothing to do."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    came: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig in SIGNALS:
        if callable(previous[sig]):
            signal.signal(sig, lambda signum, frame: came.append(signum))
    restored = False

    def restore() -> None:
        nonlocal restored
        if not restored:
            restored = True
            _restore({sig: old for sig, old in previous.items() if callable(old)})

    def deliver() -> None:
        restore()
        if came:
            handler = previous[signal.Signals(came[0])]
            assert callable(handler)  # only a callable handler was replaced
            handler(came[0], None)

    try:
        yield deliver
    finally:
        restore()


def release_held(mask: set[int | signal.Signals]) -> None:
    """In a forked child, once its own handlers are set: the signals held across the fork are
    delivered (to those handlers) and heeded from now on."""
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


class Stop:
    """Which signal stopped a server or a schedule (None: none yet)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.unwinding = False  # a second signal: stopping at once

    def set(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum

    def raise_if_set(self) -> None:
        if self.signum is not None:
            stopped_by(self.signum)


@contextlib.contextmanager
def stop_on_signals(on_signal: Callable[[], None] | None = None) -> Iterator[Stop]:
    """Python-level handlers for a blocking loop (probe --every): the first signal sets the
    `Stop` (and calls `on_signal`); a second one raises `Interrupted` at once. The handlers
    in place before are restored on the way out."""
    stop = Stop()

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.signum is not None:
            stop.unwinding = True  # the handlers stay ignored: see stopped_by
            stopped_by(signum)
        stop.set(signum)
        if on_signal is not None:
            on_signal()

    previous = {sig: signal.getsignal(sig) for sig in _heeded()}
    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield stop
    finally:
        if stop.unwinding is False:
            _restore(previous)


@contextlib.contextmanager
def loop_stops_on_signals(loop: asyncio.AbstractEventLoop,
                          event: asyncio.Event) -> Iterator[Stop]:
    """The same for a server on an event loop: the first signal sets `event` (the server
    closes its listener and answers what is open), later ones change nothing. asyncio resets
    a removed handler to the default; the handlers in place before are restored instead."""
    stop = Stop()
    previous = {sig: signal.getsignal(sig) for sig in _heeded()}

    def handler(signum: int) -> None:
        stop.set(signum)
        event.set()

    for sig in previous:
        loop.add_signal_handler(sig, handler, sig)
    try:
        yield stop
    finally:
        for sig in previous:
            loop.remove_signal_handler(sig)
        _restore(previous)


def _restore(previous: dict[signal.Signals, Any]) -> None:
    for sig, old in previous.items():
        signal.signal(sig, old if old is not None else signal.SIG_DFL)


def run_async(main: Coroutine[Any, Any, T],
              loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None) -> T:
    """`main` on a fresh event loop (asyncio.Runner). A signal is put to the policy in force
    (the first-signal handler, or a schedule's that lets its round finish); where that policy
    would raise, the main task is cancelled instead and, once it has unwound, `Interrupted` is
    raised for the signal."""
    try:
        return _run_async(main, loop_factory)
    finally:
        # A signal before the loop took `main` (while it was being set up): the coroutine was
        # never started, and Python would say so on stderr at exit ("never awaited").
        import inspect
        if inspect.iscoroutine(main) and inspect.getcoroutinestate(main) == inspect.CORO_CREATED:
            main.close()


def _run_async(main: Coroutine[Any, Any, T],
               loop_factory: Callable[[], asyncio.AbstractEventLoop] | None) -> T:
    import asyncio  # here, not at the top: every command imports this module, few run a loop
    if threading.current_thread() is not threading.main_thread():
        with asyncio.Runner(loop_factory=loop_factory) as runner:  # signals are the main's
            return runner.run(main)
    stop = Stop()
    previous = {sig: signal.getsignal(sig) for sig in _heeded()}
    tasks: list[asyncio.Task[T]] = []

    def on_signal(signum: int) -> None:
        policy = previous[signal.Signals(signum)]
        try:
            if callable(policy):
                policy(signum, None)
            else:  # SIG_DFL would end the process on the spot: unwind instead
                raise Interrupted(signum)
        except KeyboardInterrupt:
            stop.set(signum)
            stop.unwinding = True
            for task in tasks:
                task.cancel()

    async def guarded() -> T:
        tasks.append(asyncio.ensure_future(main))
        return await tasks[0]

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        loop = runner.get_loop()
        for sig in previous:
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            return runner.run(guarded())
        except asyncio.CancelledError:
            if stop.signum is None:
                raise
        finally:
            for sig in previous:
                loop.remove_signal_handler(sig)
            if stop.unwinding:
                ignore()
            else:
                _restore(previous)
            stop.raise_if_set()
    raise AssertionError("unreachable: a cancelled run raised Interrupted above")
