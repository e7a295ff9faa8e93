"""`probe --every`: rounds on a schedule, each appended locally and stored as a new S3 object;
a signal lets the round in flight finish and be written, then stops in one line (130/143);
a failing results bus is retried and reported."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from probes.results import read_results
from probes.schedule import append_round
from testbed.edges import Edges
from tests.conftest import cdnpack_cli
from tests.interrupts import assert_stopped_cleanly, interrupt, start
from tests.moto import FAKE_CREDENTIALS, MotoServer
from tests.probes.conftest import LENIENT_BUDGETS, write_config

REPO = Path(__file__).resolve().parents[2]
SMALL = "  samples: 1\n  segments: 1\n"


def runs_in(path: Path) -> list[str]:
    return [json.loads(x)["run_id"] for x in path.read_text().splitlines()
            if json.loads(x)["type"] == "run"]


def objects(moto: MotoServer, bucket: str) -> list[str]:
    listed = moto.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(o["Key"] for o in listed)


def test_each_round_is_appended_and_stored_as_a_new_object(
        edges: Edges, moto_s3: MotoServer, tmp_path: Path) -> None:
    config = write_config(tmp_path / "regions.yaml", edges, LENIENT_BUDGETS, SMALL)
    moto_s3.client("s3").create_bucket(Bucket="probes")
    out = tmp_path / "na.jsonl"
    done = cdnpack_cli("probe", "--region", "na", "--config", config, "-o", out, "--every",
                       "500ms", "--rounds", "3", "--results", "s3://probes/runs",
                       "--endpoint-url", moto_s3.url, "--json")
    assert done.returncode == 0, done.stderr
    rounds = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["round"] for r in rounds] == [1, 2, 3]
    assert len(runs_in(out)) == 3
    assert len(objects(moto_s3, "probes")) == 3
    assert all(k.startswith("runs/na/") for k in objects(moto_s3, "probes"))
    assert len(read_results([str(out)]).runs) == 3  # the appended file reads as results


def test_a_signal_while_waiting_for_the_next_round_stops_at_once(
        edges: Edges, tmp_path: Path) -> None:
    config = write_config(tmp_path / "regions.yaml", edges, LENIENT_BUDGETS, SMALL)
    out = tmp_path / "na.jsonl"
    command = start(["probe", "--region", "na", "--config", config, "-o", out, "--every", "1h",
                     "--json"])
    command.wait_until(lambda: bool(command.stdout), "round 1")
    assert json.loads(command.stdout[0])["round"] == 1
    assert_stopped_cleanly(interrupt(command, signal.SIGINT), signal.SIGINT)
    assert len(runs_in(out)) == 1


def held_config(path: Path, port: int, timeout: str) -> Path:
    """One fetch, from a server that accepts the connection and never answers."""
    path.write_text(f"""\
regions: [{{id: na, name: North America, weight: 1}}]
cdns: [{{id: held, base_url: "http://127.0.0.1:{port}/"}}]
targets: [{{path: release.json, kind: file}}]
probe: {{samples: 1, timeout: {timeout}, deadline: 30s}}
""")
    return path


@pytest.mark.slow
def test_a_signal_mid_round_lets_the_round_finish_and_write(tmp_path: Path) -> None:
    """The round's one fetch hangs on a server that never answers (probe.timeout 1s): the
    signal comes while it hangs; the round still ends and is written whole, then the command
    stops in one line."""
    with socket.create_server(("127.0.0.1", 0)) as held:
        config = held_config(tmp_path / "regions.yaml", held.getsockname()[1], "1s")
        out = tmp_path / "na.jsonl"
        command = start(["probe", "--region", "na", "--config", config, "-o", out, "--every",
                         "1h", "--json"])
        held.settimeout(60)
        connection, _ = held.accept()  # the round's fetch is waiting for an answer
        with connection:
            assert_stopped_cleanly(interrupt(command, signal.SIGTERM), signal.SIGTERM)
    assert [json.loads(line)["round"] for line in command.stdout] == [1]
    assert len(runs_in(out)) == 1
    assert out.read_text().endswith("\n")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_single_probe_run_stopped_mid_fetch_writes_nothing(
        tmp_path: Path, sig: signal.Signals) -> None:
    """Without --every a signal cancels the run: its tasks unwind as cancelled (no 'task
    exception never retrieved' from asyncio after the line), and no results file is written."""
    with socket.create_server(("127.0.0.1", 0)) as held:
        config = held_config(tmp_path / "regions.yaml", held.getsockname()[1], "20s")
        out = tmp_path / "na.jsonl"
        command = start(["probe", "--region", "na", "--config", config, "-o", out, "--json"])
        held.settimeout(60)
        connection, _ = held.accept()
        with connection:
            assert_stopped_cleanly(interrupt(command, sig), sig)
    assert not out.exists()


def test_a_failing_results_bus_is_retried_and_reported(
        edges: Edges, moto_s3: MotoServer, tmp_path: Path) -> None:
    """The bucket does not exist during round 1: its results wait, are said to wait, and are
    stored with a later round once the bucket is there."""
    config = write_config(tmp_path / "regions.yaml", edges, LENIENT_BUDGETS, SMALL)
    out = tmp_path / "na.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "probe", "--region", "na", "--config", str(config), "-o",
         str(out), "--every", "1s", "--rounds", "3", "--results", "s3://late-bucket/runs",
         "--endpoint-url", moto_s3.url, "--json"], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, **FAKE_CREDENTIALS})
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        moto_s3.client("s3").create_bucket(Bucket="late-bucket")
        rest, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert first["round"] == 1
    assert first["bus_errors"]
    assert first["pending"] == 1
    assert "results bus: round 1" in stderr
    later = [json.loads(line) for line in rest.splitlines()]
    assert later[-1]["pending"] == 0
    assert sum(len(r["stored"]) for r in later) == 3  # round 1's results too
    assert len(objects(moto_s3, "late-bucket")) == 3


def test_a_torn_last_line_is_cut_before_the_next_round(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    out.write_text('{"type": "run"}\n{"type": "fet')
    append_round(out, '{"type": "run", "n": 2}\n')
    assert out.read_text() == '{"type": "run"}\n{"type": "run", "n": 2}\n'
