"""Ctrl-C and SIGTERM sent to a real cdnpack process, as a terminal and a supervisor send them.

A terminal's Ctrl-C signals the whole foreground process group: the command runs in a session
of its own here, and SIGINT goes to that group (every process still in it gets it, as from a
terminal). SIGTERM goes to the process alone, as Kubernetes and most supervisors send it.
After either: the exit code is 128 + the signal, exactly one line follows on stderr, there is
no traceback, and no process the command had started (found through /proc at the moment of
the signal, whatever its process group) outlives it.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.moto import FAKE_CREDENTIALS

REPO = Path(__file__).resolve().parents[1]
LINES = {signal.SIGINT: "cdnpack: interrupted", signal.SIGTERM: "cdnpack: terminated"}


def descendants(pid: int) -> set[int]:
    """Every process below pid, through /proc (threads' children included)."""
    found: set[int] = set()
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:
            continue
        for child in map(int, children):
            found |= {child} | descendants(child)
    return found


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "zombie" not in status


def lingering(pid: int, exit_grace: float = 5.0) -> bool:
    """Alive and not already exiting. A process whose memory is released (its cmdline reads
    empty) is inside its exit: one that ends as its parent does (multiprocessing's resource
    tracker reads EOF when the command exits) is seen there in 3 of 30 checks on a loaded
    machine. It is given `exit_grace` seconds to end; one that stays is lingering."""
    deadline = time.monotonic() + exit_grace
    while alive(pid):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except OSError:
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.01)
    return False


class Lines:
    """A pipe's lines as they come, read on a thread. `settled()` holds the lock while nothing
    written so far is left unread: what the command wrote before that moment is in `lines`."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self._partial = b""
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while True:
            select.select([self.fd], [], [])
            with self.lock:
                data = os.read(self.fd, 65536)
                if not data:
                    if self._partial:
                        self.lines.append(self._partial.decode(errors="replace"))
                    return
                *complete, self._partial = (self._partial + data).split(b"\n")
                self.lines.extend(line.decode(errors="replace") + "\n" for line in complete)

    def settled(self) -> int:
        """How many lines were written before now (waits for the reader to catch up, and a
        while for a line begun to end)."""
        deadline = time.monotonic() + 10
        while True:
            with self.lock:
                unread = struct.unpack("i", fcntl.ioctl(self.fd, termios.FIONREAD, b"\0" * 4))[0]
                if unread == 0 and (not self._partial or time.monotonic() > deadline):
                    return len(self.lines)
            time.sleep(0.005)


@dataclass
class Command:
    """A running `cdnpack ...`; its stdout and stderr lines are read as they come."""

    proc: subprocess.Popen[bytes]
    out: Lines
    err: Lines

    @property
    def stdout(self) -> list[str]:
        return self.out.lines

    @property
    def stderr(self) -> list[str]:
        return self.err.lines

    def wait_until(self, moment: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
        """Poll for the moment to signal at; fails if the command ends or it never comes."""
        deadline = time.monotonic() + timeout
        while not moment():
            assert self.proc.poll() is None, (
                f"ended ({self.proc.returncode}) before {what}: {''.join(self.stderr)[-2000:]}")
            assert time.monotonic() < deadline, f"{what} never came"
            time.sleep(0.01)


def start(args: Sequence[str | Path], env: dict[str, str] | None = None,
          shell: str | None = None) -> Command:
    """`python -m cli ARGS` in a session of its own (with `shell`: `SHELL ARGS`, the shell
    exec-ing the command, so the process signalled is the command)."""
    command_line = [shell] if shell else [sys.executable, "-m", "cli"]
    proc = subprocess.Popen(
        [*command_line, *map(str, args)], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        env=env if env is not None else {**os.environ, **FAKE_CREDENTIALS, "COLUMNS": "1000"})
    assert proc.stdout is not None
    assert proc.stderr is not None
    return Command(proc, Lines(proc.stdout.fileno()), Lines(proc.stderr.fileno()))


@dataclass(frozen=True)
class Ended:
    code: int
    after: list[str]  # stderr lines written after the signal
    stderr: str  # all of it
    seconds: float  # from the signal to the exit
    survivors: list[int]  # processes it had started that still run
    survivor_commands: list[str] = field(default_factory=list)  # their command lines


def interrupt(command: Command, sig: signal.Signals) -> Ended:
    """Send `sig` (SIGINT to the process group, SIGTERM to the process) and wait for the end."""
    proc = command.proc
    children = {pid: command_line(pid) for pid in descendants(proc.pid)}
    written = command.err.settled()
    sent = time.monotonic()
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    try:
        code = proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    seconds = time.monotonic() - sent
    for lines in (command.out, command.err):
        lines.thread.join(10)
    survivors = sorted(pid for pid in children if lingering(pid))
    commands = [children[pid] for pid in survivors]  # as they were when signalled
    for pid in survivors:  # the test fails; nothing of it may linger
        os.kill(pid, signal.SIGKILL)
    return Ended(code, [line.rstrip("\n") for line in command.stderr[written:]],
                 "".join(command.stderr), seconds, survivors, commands)


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:300]
    except OSError:
        return "?"


def assert_stopped_cleanly(ended: Ended, sig: signal.Signals) -> None:
    assert ended.code == 128 + sig, ended.stderr[-3000:]
    assert ended.after == [LINES[sig]], ended.stderr[-3000:]
    assert "Traceback" not in ended.stderr, ended.stderr[-3000:]
    assert ended.survivors == [], f"{ended.survivor_commands} outlived the command"
