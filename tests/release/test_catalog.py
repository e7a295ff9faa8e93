"""`catalog run` on this machine (a LocalCluster) against the local S3 origin: titles released,
resumed without an upload, re-released when they change; bad input refused before anything is
published; an interrupt stops everything. (A real cluster: test_catalog_cluster.py.)"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from testbed.clips import ClipSpec, make_clip
from tests.cdn.proxy import FaultProxy
from tests.conftest import cdnpack_cli
from tests.interrupts import assert_stopped_cleanly, descendants, interrupt, start
from tests.moto import MotoServer
from tests.release.conftest import outcome, write_catalog

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough that a title is still encoding when the test interrupts the run."""
    return make_clip(tmp_path_factory.mktemp("long") / "long.mp4",
                     ClipSpec(duration=30.0, width=1280, height=720))


@pytest.fixture
def origin(moto_s3: MotoServer) -> MotoServer:
    moto_s3.client().create_bucket(Bucket="origin")
    return moto_s3


def keys_in(moto: MotoServer, prefix: str = "") -> list[str]:
    listed = moto.client().list_objects_v2(Bucket="origin", Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def run(catalog: Path, endpoint: str, *more: str) -> tuple[int, str, str]:
    done = cdnpack_cli("catalog", "run", catalog, "--endpoint-url", endpoint, "--workers", "2",
                       "--json", *more)
    return done.returncode, done.stdout, done.stderr


def test_a_catalog_is_released_then_resumed_without_one_upload_and_a_change_redone(
        origin: MotoServer, short_clips: list[Path], tmp_path: Path) -> None:
    keystore = tmp_path / "keys"
    titles: list[dict[str, object]] = [{"id": "ep1", "source": str(short_clips[0])},
              {"id": "ep2", "source": str(short_clips[1]), "encrypt": "cbcs"}]
    catalog = write_catalog(tmp_path / "catalog.yaml", titles)
    code, out, err = run(catalog, origin.url, "--keystore", str(keystore))
    assert code == 0, err
    assert outcome(out) == {"ep1": "published", "ep2": "published"}
    for title in ("ep1", "ep2"):
        published = json.loads(origin.client().get_object(
            Bucket="origin", Key=f"catalog/{title}/release.json")["Body"].read())
        listed = set(keys_in(origin, f"catalog/{title}/"))
        assert {f"catalog/{title}/{f['path']}" for f in published["files"]} <= listed
        inputs = published["inputs"]
        assert inputs["source"] == str(short_clips[int(title[-1]) - 1])
        assert inputs["source_version"].startswith("sha256:")
        assert json.loads(inputs["options"]["encrypt"]) == ("cbcs" if title == "ep2" else None)
    assert not [k for k in keys_in(origin) if "key" in k.rsplit("/", 1)[-1].lower()]
    assert any(keystore.iterdir())  # the keys stayed on this machine

    with FaultProxy(origin.url) as proxy:  # the same catalog again: nothing to do
        code, out, err = run(catalog, proxy.url, "--keystore", str(keystore))
    assert code == 0, err
    assert outcome(out) == {"ep1": "up to date", "ep2": "up to date"}
    assert json.loads(out)["cluster"] is None  # no cluster was even started
    assert [m for m, _, _ in proxy.log.snapshot() if m not in ("GET", "HEAD")] == []

    titles[0]["segment_duration"] = 1.5  # one title changes
    write_catalog(catalog, titles)
    code, out, err = run(catalog, origin.url, "--keystore", str(keystore))
    assert code == 0, err
    assert outcome(out) == {"ep1": "published", "ep2": "up to date"}


def test_a_missing_s3_source_an_unreachable_scheduler_or_a_stray_stage_is_one_line(
        origin: MotoServer, short_clips: list[Path], tmp_path: Path) -> None:
    missing = write_catalog(tmp_path / "missing.yaml", [
        {"id": "ep1", "source": str(short_clips[0])},
        {"id": "ep2", "source": "s3://origin/masters/nope.mov"}])
    code, _, err = run(missing, origin.url)
    assert (code, err.count("\n")) == (2, 1), err
    assert "title ep2: s3://origin/masters/nope.mov: no such object" in err

    fine = write_catalog(tmp_path / "fine.yaml", [{"id": "ep1", "source": str(short_clips[0])}])
    code, _, err = run(fine, origin.url, "--scheduler", "tcp://127.0.0.1:9",
                       "--connect-timeout", "1")
    assert (code, err.count("\n")) == (3, 1), err
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err
    code, _, err = run(fine, origin.url, "--stage", "s3://origin/stage")
    assert (code, err.count("\n")) == (2, 1), err
    assert "--stage is for a --scheduler given by address" in err
    assert keys_in(origin) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_stops_every_title_and_leaves_no_child_and_nothing_published(
        origin: MotoServer, long_clip: Path, tmp_path: Path, sig: signal.Signals) -> None:
    catalog = write_catalog(tmp_path / "catalog.yaml", [
        {"id": "ep1", "source": str(long_clip)}, {"id": "ep2", "source": str(long_clip)}])
    command = start(["catalog", "run", catalog, "--endpoint-url", origin.url, "--workers", "1",
                     "--work-dir", tmp_path / "work"])
    command.wait_until(lambda: any("ffmpeg" in comm(pid)
                                   for pid in descendants(command.proc.pid)),
                       "a title encoding")
    ended = interrupt(command, sig)
    assert ended.survivors == [], ended.survivor_commands
    assert_stopped_cleanly(ended, sig)
    assert keys_in(origin) == []
    assert list((tmp_path / "work").iterdir()) == []


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text()
    except FileNotFoundError:
        return ""
