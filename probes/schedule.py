"""`probe --every`: probe rounds on a schedule until stopped; every round's results appended.

One round per interval (plus a random delay of up to `jitter`, so runners of many regions do
not hit the CDNs in step); a round that overruns its interval is followed at once by the next.
Each round's JSONL is appended to the local file in one O_APPEND write (a round is there whole
or not at all; a tail torn by a crash is cut off at start) and stored as a new S3 object
(probes/s3store.py: one object per run, never an append). A results bus that fails is retried
within the round, then again with every later round, and each failure is reported: it never
stops the schedule. Ctrl-C or SIGTERM lets the running round finish and write (waiting for the
next round ends at once), then the job raises `Interrupted` for it (exit 130 or 143, one line:
packager/interrupts.py); a second signal stops at once, the round in flight discarded whole.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cdn.s3 import Connection
from packager.errors import CdnpackError
from packager.interrupts import stop_on_signals
from probes.config import ProbeConfig
from probes.results import jsonl
from probes.run import ProbeRun, probe_region
from probes.s3store import append_run, run_key

#: Seconds between attempts to store a round's results, within the round.
RETRY_DELAYS = (0.5, 1.0, 2.0)


@dataclass(frozen=True)
class Schedule:
    every: float  # seconds between round starts
    jitter: float = 0.0  # up to this many seconds of random delay before each round
    rounds: int | None = None  # stop after this many (None: until stopped)


@dataclass(frozen=True)
class RoundReport:
    round: int
    run: ProbeRun
    output: str
    stored: list[str]  # S3 objects written this round (earlier rounds' too, when retried)
    bus_errors: list[str]  # what failed this round (the results stay pending)
    pending: int  # rounds still waiting for the results bus


@dataclass
class _Bus:
    """Rounds waiting to reach S3, oldest first: (key, body)."""

    url: str
    conn: Connection
    pending: list[tuple[str, bytes]] = field(default_factory=list)

    def deliver(self, wait: Callable[[float], bool]) -> tuple[list[str], list[str]]:
        stored: list[str] = []
        errors: list[str] = []
        for delay in (0.0, *RETRY_DELAYS):
            if delay and wait(delay):
                break
            errors_now: list[str] = []
            while self.pending:
                key, body = self.pending[0]
                try:
                    stored.append(append_run(self.url, key, body, self.conn))
                except CdnpackError as exc:
                    errors_now.append(str(exc))
                    break
                self.pending.pop(0)
            errors += errors_now
            if not self.pending:
                break
        return stored, errors


def append_round(path: Path, text: str) -> None:
    """Append one round in a single write; a torn last line left by a crash is cut first."""
    if path.exists():
        with path.open("rb+") as f:
            data_end = f.seek(0, os.SEEK_END)
            if data_end:
                f.seek(max(0, data_end - 65536))
                tail = f.read()
                if not tail.endswith(b"\n"):
                    cut = tail.rfind(b"\n")
                    f.truncate(data_end - len(tail) + cut + 1 if cut >= 0 else 0)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def run_schedule(config: ProbeConfig, region: str, schedule: Schedule, output: Path,
                 results_url: str | None, conn: Connection,
                 report: Callable[[RoundReport], None]) -> int:
    """Probe rounds until `schedule.rounds` (returns how many) or a signal (raises
    `Interrupted` once the round in flight is written)."""
    bus = _Bus(results_url, conn) if results_url else None
    rng = random.Random()
    done = 0
    stop = threading.Event()
    with stop_on_signals(stop.set) as signalled:
        planned = time.monotonic()
        while schedule.rounds is None or done < schedule.rounds:
            due = planned + rng.uniform(0.0, schedule.jitter)
            if stop.wait(max(0.0, due - time.monotonic())):
                break
            planned = due + schedule.every
            run = probe_region(config, region)
            text = jsonl(run.lines)
            append_round(output, text)
            stored: list[str] = []
            errors: list[str] = []
            if bus is not None:
                bus.pending.append((run_key(region, run.started_at, run.run_id), text.encode()))
                stored, errors = bus.deliver(stop.wait)
            done += 1
            report(RoundReport(done, run, str(output), stored, errors,
                               len(bus.pending) if bus else 0))
            if stop.is_set():
                break
            planned = max(planned, time.monotonic())  # overran: the next round starts now
    signalled.raise_if_set()
    return done
