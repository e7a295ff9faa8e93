"""Ctrl-C and SIGTERM sent to a real cdnpack process, as a terminal and a supervisor send them.

A terminal's Ctrl-C signals the whole foreground process group: the command runs in a session
of its own here, and SIGINT goes to that group (every process still in it gets it, as from a
terminal). SIGTERM goes to the process alone, as Kubernetes and most supervisors send it.
After either: the exit code is 128 + the signal, exactly one line follows on stderr, there is
no traceback, and no process the command had started (found through /proc at the moment of
the signal, whatever its process group) outlives it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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


@dataclass
class Command:
    """A running `cdnpack ...`; its stdout and stderr lines are read as they come."""

    proc: subprocess.Popen[str]
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    readers: list[threading.Thread] = field(default_factory=list)

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
        [*command_line, *map(str, args)], cwd=REPO, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        env=env if env is not None else {**os.environ, **FAKE_CREDENTIALS, "COLUMNS": "1000"})
    command = Command(proc)
    for stream, lines in ((proc.stdout, command.stdout), (proc.stderr, command.stderr)):
        assert stream is not None
        reader = threading.Thread(target=lambda s=stream, into=lines: into.extend(s),
                                  daemon=True)
        reader.start()
        command.readers.append(reader)
    return command


@dataclass(frozen=True)
class Ended:
    code: int
    after: list[str]  # stderr lines written after the signal
    stderr: str  # all of it
    seconds: float  # from the signal to the exit
    survivors: list[int]  # processes it had started that still run


def interrupt(command: Command, sig: signal.Signals) -> Ended:
    """Send `sig` (SIGINT to the process group, SIGTERM to the process) and wait for the end."""
    proc = command.proc
    children = descendants(proc.pid)
    written = len(command.stderr)
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
    for reader in command.readers:
        reader.join(10)
    survivors = sorted(pid for pid in children if alive(pid))
    for pid in survivors:  # the test fails; nothing of it may linger
        os.kill(pid, signal.SIGKILL)
    return Ended(code, [line.rstrip("\n") for line in command.stderr[written:]],
                 "".join(command.stderr), seconds, survivors)


def assert_stopped_cleanly(ended: Ended, sig: signal.Signals) -> None:
    assert ended.code == 128 + sig, ended.stderr[-3000:]
    assert ended.after == [LINES[sig]], ended.stderr[-3000:]
    assert "Traceback" not in ended.stderr, ended.stderr[-3000:]
    assert ended.survivors == [], f"{ended.survivors} outlived the command"
