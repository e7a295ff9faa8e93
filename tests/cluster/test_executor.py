"""The Dask executor runs the packager's kind of jobs on real workers: an embedded LocalCluster
and `dask scheduler` + `dask worker` processes over TCP and TLS, the local S3 origin as stage.
A failing job cancels the rest (their ffmpeg stopped on the workers); a job that carries a
content key is refused on a clear link before the scheduler sees anything. (A worker or the
scheduler killed in the middle of a catalog: tests/release/test_catalog_cluster.py.)"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cdn.s3 import S3Location
from cluster.connect import Cluster, ClusterError, ClusterSpec, TlsFiles, connect
from cluster.executor import DaskExecutor
from cluster.keyguard import KeyTransportError
from cluster.stage import S3Stage
from packager.errors import InputError
from packager.keys.model import ContentKey
from testbed.dask_cluster import DaskProcesses, dask_processes
from testbed.origin import local_connection
from tests.cluster.jobs import ClipJob, KeyedJob, encode_clip, kid_of
from tests.cluster.record_tasks import recorded
from tests.moto import FAKE_CREDENTIALS, MotoServer

pytestmark = pytest.mark.slow


@pytest.fixture
def stage(moto_s3: MotoServer) -> S3Stage:
    moto_s3.client().create_bucket(Bucket="stage")
    return S3Stage(S3Location("stage", "jobs"), local_connection(moto_s3.url))


def staged_sha256(moto: MotoServer, key: str) -> str:
    body = moto.client().get_object(Bucket="stage", Key=f"jobs/{key}")["Body"].read()
    return hashlib.sha256(body).hexdigest()


def scheduler_tasks(cluster: Cluster) -> int:
    def count(dask_scheduler: Any) -> int:
        return len(dask_scheduler.tasks)
    return int(cluster.client.run_on_scheduler(count))


def worker_children(cluster: Cluster) -> dict[str, int]:
    def children() -> int:
        import psutil  # noqa: PLC0415 (on the worker)
        return len(psutil.Process().children(recursive=True))
    return dict(cluster.client.run(children))


def test_a_local_cluster_runs_jobs_in_its_worker_processes_in_the_jobs_order(
        stage: S3Stage, moto_s3: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAKE_CREDENTIALS.items():  # the workers' own credentials
        monkeypatch.setenv(name, value)
    jobs = [ClipJob(seconds, stage, f"clip-{i}.mp4") for i, seconds in enumerate((2, 0.5, 1))]
    seen: list[tuple[float, int]] = []
    with connect(ClusterSpec(workers=2)) as cluster:
        executor = DaskExecutor(cluster)
        assert (cluster.local, executor.workers) == (True, 2)
        results = executor.map(encode_clip, jobs, lambda done, total: seen.append((done, total)))
        pids = set(cluster.client.run(os.getpid).values())
    assert [r.key for r in results] == [j.key for j in jobs]
    assert {r.pid for r in results} <= pids
    assert os.getpid() not in pids
    assert seen == [(1, 3), (2, 3), (3, 3)]
    for result in results:
        assert staged_sha256(moto_s3, result.key) == result.sha256


@pytest.fixture
def cluster_processes(tmp_path: Path, dask_env: dict[str, str]) -> Iterator[DaskProcesses]:
    with dask_processes(2, tmp_path / "dask", env=dask_env) as processes:
        yield processes


def test_the_first_failing_job_fails_the_map_as_it_failed_and_cancels_the_rest(
        cluster_processes: DaskProcesses, stage: S3Stage, moto_s3: MotoServer) -> None:
    jobs = [ClipJob(600, stage, "long.mp4"), ClipJob(-1, stage, "broken.mp4"),
            ClipJob(600, stage, "queued.mp4")]
    with connect(ClusterSpec(cluster_processes.address)) as cluster:
        with pytest.raises(InputError, match=r"broken.mp4: a clip needs a positive length"):
            DaskExecutor(cluster).map(encode_clip, jobs)
        deadline = time.monotonic() + 10  # a tenth of the long job's encode, at least
        while (scheduler_tasks(cluster) or any(worker_children(cluster).values())) \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert scheduler_tasks(cluster) == 0  # nothing left running or queued
        assert set(worker_children(cluster).values()) == {0}  # the long job's ffmpeg stopped
    listed = moto_s3.client().list_objects_v2(Bucket="stage").get("Contents", [])
    assert listed == []  # the long jobs were stopped, not left to finish


def test_a_job_carrying_a_key_is_refused_on_a_clear_link_before_the_scheduler_sees_it(
        cluster_processes: DaskProcesses) -> None:
    key = ContentKey.generate()
    with connect(ClusterSpec(cluster_processes.address)) as cluster:
        assert not cluster.trusted
        with pytest.raises(KeyTransportError, match=r"carries a content key .* not TLS") as e:
            DaskExecutor(cluster).map(kid_of, [KeyedJob(key)])
        assert scheduler_tasks(cluster) == 0
    assert e.value.exit_code == 2
    assert key.key.hex() not in str(e.value)


def test_over_tls_the_same_job_runs_and_a_clear_client_is_refused(
        tmp_path: Path, dask_env: dict[str, str], tls_files: TlsFiles) -> None:
    """Where keys may travel (TLS), they do, and the scheduler's record of what it sent the
    workers shows them: the same record shows none in a catalog's jobs (test_catalog_cluster)."""
    key = ContentKey.generate()
    log = tmp_path / "tasks.log"
    env = {**dask_env, "CDNPACK_TASK_LOG": str(log)}
    with dask_processes(1, tmp_path / "dask", env=env, tls=tls_files,
                        scheduler_preload=["tests.cluster.record_tasks"]) as processes:
        assert processes.address.startswith("tls://")
        clear = processes.address.replace("tls://", "tcp://")
        with pytest.raises(ClusterError, match=r"cannot reach the Dask scheduler"), \
                connect(ClusterSpec(clear, connect_timeout=2)):
            pass
        with connect(ClusterSpec(processes.address, tls=tls_files)) as cluster:
            assert cluster.trusted
            assert DaskExecutor(cluster).map(kid_of, [KeyedJob(key)]) == [key.kid_uuid]
    assert any(key.key in payload for payload in recorded(log))


