"""`catalog run` on a real cluster: `dask scheduler` and two `dask worker` processes on loopback,
the local S3 origin as the sources' store and the encode stage. Several short titles and one long
enough to be encoded in chunks, every encode job run (and seen run) on the workers; a worker
killed in the middle of a chunk; the scheduler killed in the middle of a title; Ctrl-C in the
middle of a chunk; a cluster without a worker; and the proof that no job the workers received
held key material."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from cluster.connect import Cluster, ClusterSpec, connect
from packager.keys.keystore import Keystore
from packager.tools import find_tool
from testbed.clips import ClipSpec, make_clip
from testbed.dask_cluster import DaskProcesses, dask_processes
from tests.cluster.record_tasks import placements, recorded
from tests.conftest import cdnpack_cli, concat, run
from tests.interrupts import assert_stopped_cleanly, interrupt, start
from tests.moto import FAKE_CREDENTIALS, MotoServer
from tests.release.conftest import SHORT, outcome, write_catalog

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
#: Long enough for three chunks of whole 1 s segments that each take a moment to encode.
LONG = ClipSpec(duration=8.0, width=640, height=360, frame_rate="25")
LONG_FRAMES = 8 * 25
CHUNKS = 3
FILM = {"id": "film", "source": "s3://mezzanine/masters/long.mp4", "chunks": CHUNKS,
        "encrypt": "cbcs"}


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cluster-sources")
    return {"short": make_clip(d / "short.mp4", SHORT), "long": make_clip(d / "long.mp4", LONG)}


@pytest.fixture
def origin(moto_s3: MotoServer, sources: dict[str, Path]) -> MotoServer:
    s3 = moto_s3.client()
    for bucket in ("origin", "mezzanine"):
        s3.create_bucket(Bucket=bucket)
    for name, path in sources.items():
        s3.upload_file(str(path), "mezzanine", f"masters/{name}.mp4")
    return moto_s3


@pytest.fixture
def task_log(tmp_path: Path) -> Path:
    return tmp_path / "tasks.log"


@pytest.fixture
def cluster(tmp_path: Path, dask_env: dict[str, str], task_log: Path) -> Iterator[DaskProcesses]:
    env = {**dask_env, "CDNPACK_TASK_LOG": str(task_log)}
    with dask_processes(2, tmp_path / "dask", env=env,
                        scheduler_preload=["tests.cluster.record_tasks"]) as processes:
        yield processes


def catalog_run(catalog: Path, origin: MotoServer, cluster: DaskProcesses,
                *more: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "catalog", "run", str(catalog), "--endpoint-url",
         origin.url, "--scheduler", cluster.address, "--json", *map(str, more)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, **FAKE_CREDENTIALS})


def published(origin: MotoServer, title: str) -> dict[str, object] | None:
    try:
        answer = origin.client().get_object(Bucket="origin", Key=f"catalog/{title}/release.json")
    except origin.client().exceptions.NoSuchKey:
        return None
    doc: dict[str, object] = json.loads(answer["Body"].read())
    return doc


def keys_in(origin: MotoServer, prefix: str = "") -> list[str]:
    listed = origin.client().list_objects_v2(Bucket="origin", Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def top_video(origin: MotoServer, title: str, work: Path) -> tuple[Path, int]:
    """The published top video rendition joined into one file (init, then its segments in
    order), and how many segments it has."""
    release = published(origin, title)
    assert release is not None
    renditions = release["renditions"]
    files = release["files"]
    assert isinstance(renditions, list)
    assert isinstance(files, list)
    top = max((r for r in renditions if r["kind"] == "video"), key=lambda r: r["height"])
    mine = [f["path"] for f in files if f["rendition"] == top["id"]]
    init = [p for p in mine if p.endswith("init.mp4")]
    segments = sorted(p for p in mine if p.endswith(".m4s"))
    parts: list[Path] = []
    for path in init + segments:
        part = work / f"{title}-part-{len(parts):05d}"
        part.write_bytes(origin.client().get_object(
            Bucket="origin", Key=f"catalog/{title}/{path}")["Body"].read())
        parts.append(part)
    return concat(parts, work / f"{title}.mp4"), len(segments)


def decrypted_frames(track: Path, keystore: Path, title: str, work: Path) -> int:
    """Shaka Packager decrypts the track with the title's key from the keystore, ffmpeg decodes
    the same frames from the encrypted track with that key; their count."""
    [key] = Keystore(keystore).keyset(title).distinct_keys
    clear = work / f"{title}-clear.mp4"
    done = run(find_tool("packager").path, f"in={track},stream=video,output={clear}",
               "--enable_raw_key_decryption", "--keys",
               f"key_id={key.kid.hex()}:key={key.key.hex()}")
    assert done.returncode == 0, done.stderr[-500:]
    by_shaka = framemd5(clear)
    assert framemd5(track, "-decryption_key", key.key.hex()) == by_shaka
    return len(by_shaka)


def framemd5(path: Path, *before_input: str) -> list[str]:
    done = run(find_tool("ffmpeg").path, "-v", "error", "-nostdin", *before_input, "-i", path,
               "-map", "0:v", "-f", "framemd5", "-")
    assert done.returncode == 0, done.stderr[-300:]
    return [line for line in done.stdout.splitlines() if not line.startswith("#")]


def worker_pids(watcher: Cluster) -> dict[str, int]:
    return {address: int(pid) for address, pid in watcher.client.run(os.getpid).items()}


def encoding(pid: int) -> bool:
    """Whether the worker process has an ffmpeg running (a job in its middle)."""
    try:
        return any(child.name().startswith("ffmpeg")
                   for child in psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return False


def chunk_keys(keys: object) -> list[str]:
    """Our encode tasks among `keys` that encode a chunk (the first CHUNKS jobs of a chunked
    plan; then the audio job)."""
    assert isinstance(keys, (list, set, tuple))
    return [str(k) for k in keys if "run_encode" in str(k)
            and int(str(k).rsplit("-", 1)[1]) < CHUNKS]


def test_a_catalog_of_s3_and_local_sources_runs_its_encodes_on_the_workers_and_no_job_holds_a_key(
        origin: MotoServer, cluster: DaskProcesses, task_log: Path, tmp_path: Path,
        sources: dict[str, Path]) -> None:
    """Four titles published, one broken source failing alone with its reason (recorded on the
    origin, shown by `catalog status`); every encode job ran on the two workers, reading an S3
    source in place and a local one from the stage; the chunked title has every frame once and
    decrypts; no job the workers received held key material (the scheduler's own record of
    each task, as the workers were sent it); the stage is empty afterwards. Once its source is
    fixed, the next run releases the broken title alone."""
    keystore = tmp_path / "keys"
    origin.client().put_object(Bucket="mezzanine", Key="masters/broken.mp4",
                               Body=os.urandom(64 * 1024))
    catalog = write_catalog(tmp_path / "catalog.yaml", [
        {"id": "broken", "source": "s3://mezzanine/masters/broken.mp4"},
        {"id": "ep1", "source": "s3://mezzanine/masters/short.mp4"},
        {"id": "ep2", "source": str(sources["short"]), "encrypt": "cbcs"},
        {"id": "ep3", "source": "s3://mezzanine/masters/short.mp4", "encrypt": "cenc",
         "per_class": True},
        FILM])
    proc = catalog_run(catalog, origin, cluster, "--keystore", keystore, "--max-parallel", "2")
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 1, err
    assert err.count("\n") == 1
    assert err.startswith("cdnpack: error: 1 title(s) failed: broken (")
    doc = json.loads(out)
    assert outcome(out) == {"broken": "failed",
                            **dict.fromkeys(("ep1", "ep2", "ep3", "film"), "published")}
    assert doc["cluster"] == f"scheduler {cluster.address} (2 workers)"
    chunks = {t["id"]: t.get("chunks") for t in doc["titles"]}
    assert chunks == {"broken": None, "ep1": 1, "ep2": 1, "ep3": 1, "film": CHUNKS}
    status = cdnpack_cli("catalog", "status", catalog, "--endpoint-url", origin.url, "--json")
    states = {t["id"]: t for t in json.loads(status.stdout)["titles"]}
    assert {t: s["state"] for t, s in states.items()} == {
        "broken": "failed", **dict.fromkeys(("ep1", "ep2", "ep3", "film"), "up to date")}
    assert states["broken"]["exit_code"] == 2
    assert states["broken"]["reason"] == (
        "s3://mezzanine/masters/broken.mp4: not readable media (moov atom not found)")
    film = published(origin, "film")
    assert film is not None
    assert isinstance(film["inputs"], dict)
    assert str(film["inputs"]["source_version"]).startswith("etag:")
    track, segments = top_video(origin, "film", tmp_path)
    assert segments == LONG.duration  # 1 s segments, none lost at a join
    assert decrypted_frames(track, keystore, "film", tmp_path) == LONG_FRAMES

    # Every encode job (3 whole titles; the film's chunks and its audio) finished on a worker.
    with connect(ClusterSpec(cluster.address)) as watcher:
        workers = set(worker_pids(watcher))
    finished = [p for p in placements(task_log) if p.state == "memory"]
    assert len(finished) == 3 + CHUNKS + 1
    assert {p.worker for p in finished} <= workers
    payloads = recorded(task_log)
    assert any(b"/mezzanine/masters/long.mp4?" in p and b"X-Amz-Signature=" in p
               for p in payloads)  # an S3 source is read in place, by a presigned URL
    assert any(b"/_cdnpack/stage/sources/" in p for p in payloads)  # ep2's local source

    keys = [k.key for title in ("ep2", "ep3", "film")
            for k in Keystore(keystore).keyset(title).distinct_keys]
    assert len(keys) == 1 + 4 + 1
    forms = [form for key in keys for form in (
        key, key.hex().encode(), key.hex().upper().encode(), base64.b64encode(key))]
    assert not [f for f in forms for p in payloads if f in p]
    assert [k for k in keys_in(origin) if "/_cdnpack/stage/" in k] == []  # stages emptied

    origin.client().upload_file(str(sources["short"]), "mezzanine", "masters/broken.mp4")
    proc = catalog_run(catalog, origin, cluster, "--keystore", keystore)  # the source is fixed
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    assert outcome(out) == {"broken": "published",
                            **dict.fromkeys(("ep1", "ep2", "ep3", "film"), "up to date")}
    assert [k for k in keys_in(origin) if "/_cdnpack/" in k] == []  # its failure forgotten


def test_a_worker_killed_in_the_middle_of_a_chunk_has_it_run_again_and_the_release_whole(
        origin: MotoServer, cluster: DaskProcesses, task_log: Path, tmp_path: Path) -> None:
    keystore = tmp_path / "keys"
    catalog = write_catalog(tmp_path / "catalog.yaml", [FILM])
    killed: list[tuple[str, list[str]]] = []  # the worker's address, the chunk it ran
    with connect(ClusterSpec(cluster.address)) as watcher:
        pids = worker_pids(watcher)

        def kill_a_chunk() -> None:
            deadline = time.monotonic() + 300
            while not killed and time.monotonic() < deadline:
                for worker, keys in watcher.client.processing().items():
                    if chunk_keys(keys) and encoding(pids[worker]):
                        os.kill(pids[worker], signal.SIGKILL)
                        killed.append((worker, chunk_keys(keys)))
                        return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_a_chunk, daemon=True)
        killer.start()
        proc = catalog_run(catalog, origin, cluster, "--keystore", keystore)
        out, err = proc.communicate(timeout=900)
        killer.join(timeout=10)
        survivors = set(watcher.client.scheduler_info()["workers"])
    assert killed, "no chunk was seen encoding"
    dead, lost = killed[0]  # the chunk it encoded (and one it held next, if any)
    assert survivors == set(pids) - {dead}
    assert proc.returncode == 0, err
    assert outcome(out) == {"film": "published"}
    [survivor] = survivors
    for chunk in lost:  # each run again on the other worker, to its end
        ran = [(p.state, p.worker) for p in placements(task_log) if p.key == chunk]
        assert ("processing", dead) in ran
        assert ran[-1] == ("memory", survivor)
    track, segments = top_video(origin, "film", tmp_path)
    assert segments == LONG.duration
    assert decrypted_frames(track, keystore, "film", tmp_path) == LONG_FRAMES


def test_the_scheduler_going_away_is_exit_3_and_the_next_run_finishes_only_what_is_missing(
        origin: MotoServer, cluster: DaskProcesses, tmp_path: Path, dask_env: dict[str, str]
) -> None:
    catalog = write_catalog(tmp_path / "catalog.yaml", [
        {"id": "ep1", "source": "s3://mezzanine/masters/short.mp4"}, FILM])
    proc = catalog_run(catalog, origin, cluster, "--max-parallel", "1", "--keystore",
                       tmp_path / "keys")
    deadline = time.monotonic() + 300
    with connect(ClusterSpec(cluster.address)) as watcher:
        # The first title is out; the film's chunks are encoding.
        while published(origin, "ep1") is None or not any(
                chunk_keys(keys) for keys in watcher.client.processing().values()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        cluster.kill_scheduler()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    assert err.count("\n") == 1
    assert err.startswith("cdnpack: error: lost the Dask scheduler at tcp://127.0.0.1:")
    # Nothing of the film is published. (Its stage may still receive what the workers, cut off
    # from their scheduler, finish: the next attempt clears it first, then again at its end.)
    assert [k for k in keys_in(origin, "catalog/film/") if "/_cdnpack/stage/" not in k] == []

    with dask_processes(2, tmp_path / "dask-again", env=dask_env) as again:
        proc = catalog_run(catalog, origin, again, "--keystore", tmp_path / "keys")
        out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    assert outcome(out) == {"ep1": "up to date", "film": "published"}
    assert [k for k in keys_in(origin) if "/_cdnpack/" in k] == []


def test_ctrl_c_cancels_the_title_s_tasks_on_the_cluster_and_publishes_nothing(
        origin: MotoServer, cluster: DaskProcesses, tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path / "catalog.yaml", [FILM])
    with connect(ClusterSpec(cluster.address)) as watcher:
        pids = worker_pids(watcher)
        command = start(["catalog", "run", catalog, "--endpoint-url", origin.url, "--scheduler",
                         cluster.address, "--keystore", tmp_path / "keys"])
        command.wait_until(lambda: any(encoding(pid) for pid in pids.values()),
                           "a chunk encoding on a worker", timeout=300)
        assert_stopped_cleanly(interrupt(command, signal.SIGINT), signal.SIGINT)

        def left() -> tuple[int, list[int]]:
            def tasks(dask_scheduler: object) -> int:
                return len(dask_scheduler.tasks)  # type: ignore[attr-defined]
            return (int(watcher.client.run_on_scheduler(tasks)),
                    [pid for pid in pids.values() if encoding(pid)])

        deadline = time.monotonic() + 30  # the cancels travel; the reaper kills each ffmpeg
        while left() != (0, []) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert left() == (0, [])  # no task held or queued, no ffmpeg left on a worker
        assert len(watcher.client.scheduler_info()["workers"]) == 2
    assert keys_in(origin) == []  # nothing published, the stage emptied


def test_a_cluster_without_a_worker_is_exit_3_after_the_worker_wait(
        origin: MotoServer, tmp_path: Path, dask_env: dict[str, str]) -> None:
    catalog = write_catalog(tmp_path / "catalog.yaml", [
        {"id": "ep1", "source": "s3://mezzanine/masters/short.mp4"}])
    with dask_processes(0, tmp_path / "dask", env=dask_env) as empty:
        proc = catalog_run(catalog, origin, empty, "--worker-wait", "2")
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err
    assert err == (f"cdnpack: error: the Dask scheduler at {empty.address} has had no worker "
                   "for 2 s; its jobs cannot run\n")
    assert keys_in(origin) == []
