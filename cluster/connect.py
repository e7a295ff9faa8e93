"""Connecting to Dask: an embedded LocalCluster sized to this machine, or a scheduler by address
(`tcp://` or, with TLS through Dask's `Security`, `tls://`).

A LocalCluster runs one worker process per core with one thread each: an encode job runs ffmpeg,
which uses every core it is given, so two jobs per process would only fight over the same cores
(and a worker that runs one job at a time can stop that job's children when it is cancelled,
cluster/reaper.py). Its workers are started with SIGINT ignored: a terminal's Ctrl-C reaches the
whole foreground process group, and the coordinator, not each worker, decides what an interrupt
stops (it cancels the tasks and closes the cluster, which stops the workers and their children).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cluster.reaper import register_reaper
from packager.errors import EndpointError, InputError
from packager.interrupts import sigint_ignored_by_children

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

#: Dask's own port for a scheduler given without one.
DEFAULT_PORT = 8786
#: Seconds to reach a scheduler before it counts as unreachable (exit 3).
CONNECT_TIMEOUT = 10.0
#: Seconds to wait for `--workers N` workers to join a scheduler given by address.
WORKERS_TIMEOUT = 60.0
#: Seconds jobs wait on a cluster left without any worker before the map fails (exit 3).
WORKER_WAIT = 300.0
_ADDRESS = re.compile(r"^(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9a-fA-F:]+\]|[^:/\s]+)"
                      r"(?::(?P<port>\d{1,5}))?/?$")


class ClusterError(EndpointError):
    """The Dask scheduler cannot be reached, or went away while it held our jobs (exit 3)."""


@dataclass(frozen=True)
class TlsFiles:
    """The certificate files of a TLS link to the scheduler (`--tls-ca/--tls-cert/--tls-key`)."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class ClusterSpec:
    """Where encode jobs run: None is an embedded LocalCluster, else a scheduler's address."""

    scheduler: str | None = None
    #: LocalCluster: worker processes (default: one per core); a scheduler by address: wait
    #: until this many workers have joined before any job is sent.
    workers: int | None = None
    tls: TlsFiles | None = None
    connect_timeout: float = CONNECT_TIMEOUT
    worker_wait: float = WORKER_WAIT

    @property
    def local(self) -> bool:
        return self.scheduler is None


def cluster_spec(scheduler: str | None, workers: int | None, tls_ca: Path | None,
                 tls_cert: Path | None, tls_key: Path | None,
                 connect_timeout: float = CONNECT_TIMEOUT,
                 worker_wait: float = WORKER_WAIT) -> ClusterSpec:
    """The options as a ClusterSpec, refused in one line before anything starts: an address
    that is not HOST[:PORT] over tcp:// or tls://, half a set of TLS files, a file that cannot
    be read, TLS files with a tcp:// address (which would not use them), or a tls:// address
    without them."""
    if workers is not None and workers < 1:
        raise InputError("--workers must be at least 1")
    given = {"--tls-ca": tls_ca, "--tls-cert": tls_cert, "--tls-key": tls_key}
    tls = None
    if any(v is not None for v in given.values()):
        missing = [name for name, v in given.items() if v is None]
        if missing:
            raise InputError(f"TLS needs --tls-ca, --tls-cert and --tls-key; {', '.join(missing)} "
                             "missing")
        for name, path in given.items():
            assert path is not None
            if not path.is_file() or not os.access(path, os.R_OK):
                raise InputError(f"{name} {path}: no such readable file")
        tls = TlsFiles(*(p for p in given.values() if p is not None))
    if scheduler is None:
        if tls is not None:
            raise InputError("--tls-ca/--tls-cert/--tls-key are for a --scheduler given by "
                             "address; the embedded LocalCluster stays on this machine")
        return ClusterSpec(None, workers, None, connect_timeout, worker_wait)
    return ClusterSpec(scheduler_address(scheduler, tls is not None), workers, tls,
                       connect_timeout, worker_wait)


def scheduler_address(text: str, tls: bool) -> str:
    """`HOST[:PORT]`, `tcp://HOST[:PORT]` or `tls://HOST[:PORT]` as Dask's full address."""
    match = _ADDRESS.match(text.strip())
    if match is None:
        raise InputError(f"--scheduler {text!r}: expected tcp://HOST:PORT or tls://HOST:PORT")
    scheme = match.group("scheme") or ("tls" if tls else "tcp")
    if scheme not in ("tcp", "tls"):
        raise InputError(f"--scheduler {text!r}: cdnpack speaks tcp:// and tls:// to Dask")
    if scheme == "tls" and not tls:
        raise InputError(f"--scheduler {text}: a tls:// scheduler needs --tls-ca, --tls-cert "
                         "and --tls-key")
    if scheme == "tcp" and tls:
        raise InputError(f"--scheduler {text}: --tls-* options need a tls:// address (tcp:// "
                         "would send everything in the clear)")
    port = int(match.group("port") or DEFAULT_PORT)
    if not 0 < port < 65536:
        raise InputError(f"--scheduler {text!r}: port {port} is out of range")
    return f"{scheme}://{match.group('host')}:{port}"


def local_workers(requested: int | None) -> int:
    """One worker per core this process may use (its CPU affinity, as containers set it)."""
    if requested is not None:
        return requested
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ClusterLink:
    """How another process of the coordinator reaches the same cluster (a catalog's titles
    each run in a process of their own, each with its own client)."""

    address: str
    tls: TlsFiles | None
    #: The embedded LocalCluster of the process that started it: on this machine.
    local: bool
    worker_wait: float = WORKER_WAIT


@dataclass
class Cluster:
    """A connected Dask client and what the keys guard needs to know about the link."""

    client: Client
    link: ClusterLink

    @property
    def address(self) -> str:
        return self.link.address

    @property
    def local(self) -> bool:
        """An embedded LocalCluster: every process is on this machine, linked over loopback."""
        return self.link.local

    @property
    def encrypted(self) -> bool:
        """The link to the scheduler (and through it to the workers) is TLS."""
        return self.link.tls is not None

    @property
    def trusted(self) -> bool:
        """Whether a job could carry key material without it crossing a network in the clear
        (cluster/keyguard.py): the machine itself, or TLS."""
        return self.local or self.encrypted

    @property
    def workers(self) -> int:
        """Jobs the cluster runs at once: every worker's threads."""
        info = self.client.scheduler_info(n_workers=-1)
        return sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values())


def security(tls: TlsFiles | None) -> Any:
    """Dask's Security for the client side of a TLS link, encryption required; None in clear."""
    if tls is None:
        return None
    from distributed.security import Security  # noqa: PLC0415

    return Security(tls_ca_file=str(tls.ca), tls_client_cert=str(tls.cert),
                    tls_client_key=str(tls.key), require_encryption=True)


def quiet_dask(verbose: bool) -> None:
    """Dask logs a warning or an error (with a traceback) for every lost connection and slow
    event loop; a user gets one line from us instead, and Dask's own lines with -vv. Dask's
    logging config gives some of its loggers levels of their own (distributed.client), so
    each is set, not only their parent."""
    import distributed  # noqa: PLC0415, F401 (its import configures its loggers)

    level = logging.DEBUG if verbose else logging.CRITICAL
    names = [n for n in logging.root.manager.loggerDict
             if n.split(".")[0] in ("distributed", "dask", "tornado")]
    for name in {"distributed", "dask", "tornado", *names}:
        logging.getLogger(name).setLevel(level)


@contextmanager
def connect(spec: ClusterSpec) -> Iterator[Cluster]:
    """A client on the cluster of `spec` for the duration of the block; an embedded cluster is
    started first and closed on every way out (its workers, and their children, stopped)."""
    if spec.scheduler is None:
        quiet_dask(verbose=_verbose())
        with _local_cluster(local_workers(spec.workers), spec.worker_wait) as cluster:
            yield cluster
        return
    with attach(ClusterLink(spec.scheduler, spec.tls, False, spec.worker_wait),
                spec.connect_timeout) as cluster:
        register_reaper(cluster.client)
        if spec.workers is not None:
            try:
                cluster.client.wait_for_workers(spec.workers, timeout=WORKERS_TIMEOUT)
            except (OSError, TimeoutError):
                raise ClusterError(
                    f"the Dask scheduler at {spec.scheduler} has "
                    f"{len(cluster.client.scheduler_info()['workers'])} worker(s); --workers "
                    f"{spec.workers} did not join within {WORKERS_TIMEOUT:.0f} s") from None
        yield cluster


@contextmanager
def attach(link: ClusterLink, timeout: float = CONNECT_TIMEOUT) -> Iterator[Cluster]:
    """Another client on a cluster already connected (or started) elsewhere."""
    from distributed import Client  # noqa: PLC0415

    quiet_dask(verbose=_verbose())
    try:
        client = Client(link.address, security=security(link.tls), timeout=timeout,
                        set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {link.address}: "
                           f"{_reason(exc)}") from None
    try:
        yield Cluster(client, link)
    finally:
        _close(client)


@contextmanager
def _local_cluster(workers: int, worker_wait: float) -> Iterator[Cluster]:
    from distributed import Client, LocalCluster  # noqa: PLC0415

    scratch = Path(tempfile.mkdtemp(prefix="cdnpack-dask-"))
    before = _spawned()
    with sigint_ignored_by_children():  # the workers keep SIGINT ignored (see above)
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, silence_logs=logging.CRITICAL,
            local_directory=str(scratch),
            # No dashboard; the scheduler's own HTTP routes (/health) on any free loopback
            # port, not 8787: another cluster there would cost a warning on stderr.
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        )
    try:
        client = Client(cluster, set_as_default=False)
        try:
            register_reaper(client)
            yield Cluster(client, ClusterLink(str(cluster.scheduler_address), None, True,
                                              worker_wait))
        finally:
            _close(client)
    finally:
        processes = _spawned() - before
        cluster.close()
        _reap(processes)
        shutil.rmtree(scratch, ignore_errors=True)


def _spawned() -> set[int]:
    """This process's children started by multiprocessing's spawn (a LocalCluster's worker
    processes; not its resource tracker, which ends when this process does)."""
    import psutil  # noqa: PLC0415 (distributed's own dependency)

    found = set()
    for child in psutil.Process().children():
        try:
            if any("spawn_main" in part for part in child.cmdline()):
                found.add(child.pid)
        except psutil.Error:
            continue
    return found


def _reap(pids: set[int], grace: float = 10.0) -> None:
    """Make sure the LocalCluster's worker processes are gone when it is: its close waits for
    them only so long, and a worker still busy (a slow machine, an ffmpeg) would outlive the
    command. What is left after `grace` is killed with whatever it started."""
    import psutil  # noqa: PLC0415

    processes = []
    for pid in pids:
        with suppress(psutil.Error):
            processes.append(psutil.Process(pid))
    _, alive = psutil.wait_procs(processes, timeout=grace)
    for process in alive:
        with suppress(psutil.Error):
            for child in process.children(recursive=True):
                child.kill()
            process.kill()
    psutil.wait_procs(alive, timeout=grace)


def _verbose() -> bool:
    return logging.getLogger().isEnabledFor(logging.DEBUG)


def _close(client: Client) -> None:
    try:
        client.close(timeout=5)
    except (OSError, TimeoutError, RuntimeError):
        log.debug("closing the Dask client", exc_info=True)


def _reason(exc: BaseException) -> str:
    """Dask's message without the traceback-style tail some of its errors carry."""
    return " ".join(str(exc).split()) or type(exc).__name__
