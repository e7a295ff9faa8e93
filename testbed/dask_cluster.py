"""A real Dask cluster on loopback for the tests and benches: `dask scheduler` and `dask worker`
processes of their own (TCP, or TLS with given certificates), as people run them on VMs.

Each process starts in a session of its own: a test can SIGKILL one worker (its job must run
again elsewhere) or the scheduler (the coordinator must fail in one line), and the way out stops
every process group that is left, with any child a killed worker orphaned (an ffmpeg).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from cluster.connect import TlsFiles, security
from packager.errors import EndpointError
from testbed.origin import free_port


@dataclass
class DaskProcesses:
    """A running scheduler and its workers."""

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def kill_scheduler(self) -> None:
        _killpg(self.scheduler)


def _killpg(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _dask(*args: str) -> list[str]:
    return [sys.executable, "-m", "dask", *args]


@contextmanager
def dask_processes(
    workers: int, scratch: Path, *, tls: TlsFiles | None = None, nanny: bool = False,
    env: Mapping[str, str] | None = None, scheduler_preload: Sequence[str] = (),
    start_timeout: float = 60.0,
) -> Iterator[DaskProcesses]:
    """Start a scheduler on a free loopback port and `workers` one-thread workers, without a
    nanny by default (a killed worker stays dead, so its job must run on another). `tls`: one
    CA and one certificate + key every process presents, as a small cluster's admin makes them.
    `env` is the processes' environment (credentials, PYTHONPATH for the tests' jobs)."""
    port = free_port()
    scheme = "tls" if tls else "tcp"
    address = f"{scheme}://127.0.0.1:{port}"
    security = (["--tls-ca-file", str(tls.ca), "--tls-cert", str(tls.cert), "--tls-key",
                 str(tls.key)] if tls else [])
    environment = dict(env if env is not None else os.environ)
    logs = scratch / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    preload = [a for module in scheduler_preload for a in ("--preload", module)]
    started: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], name: str) -> subprocess.Popen[bytes]:
        with (logs / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    env=environment, start_new_session=True, cwd=scratch)
        started.append(proc)
        return proc

    try:
        scheduler = start(_dask("scheduler", "--host", "127.0.0.1", "--port", str(port),
                                "--protocol", scheme, "--no-dashboard", *security, *preload),
                          "scheduler")
        running = DaskProcesses(address, scheduler)
        for n in range(workers):
            running.workers.append(start(_dask(
                "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                "--host", "127.0.0.1", "--name", f"worker-{n}", "--nanny" if nanny else
                "--no-nanny", "--local-directory", str(scratch / f"worker-{n}"), *security),
                f"worker-{n}"))
        _wait_for_workers(address, workers, tls, start_timeout, started, logs)
        yield running
    finally:
        for proc in reversed(started):
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group (the worker closes and stops its children), SIGKILL after
    10 s, and SIGKILL to the group for whatever a killed process left behind."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    _killpg(proc)


def _wait_for_workers(address: str, count: int, tls: TlsFiles | None, timeout: float,
                      started: list[subprocess.Popen[bytes]], logs: Path) -> None:
    from distributed import Client  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    while True:
        dead = [p for p in started if p.poll() is not None]
        if dead:
            raise EndpointError(f"a Dask process exited (code {dead[0].returncode}); see {logs}")
        try:
            with Client(address, security=security(tls), timeout=5,
                        set_as_default=False) as client:
                if count:  # a scheduler alone is up once it answers
                    client.wait_for_workers(count,
                                            timeout=max(1.0, deadline - time.monotonic()))
                return
        except (OSError, TimeoutError):
            if time.monotonic() > deadline:
                raise EndpointError(f"the Dask cluster at {address} did not start; see "
                                    f"{logs}") from None
            time.sleep(0.2)
