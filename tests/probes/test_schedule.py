"""`probe --every`: rounds on a schedule, each appended locally and stored as a new S3 object;
SIGTERM finishes the round and exits 0; a failing results bus is retried and reported."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

from probes.results import read_results
from probes.schedule import append_round
from testbed.edges import Edges
from tests.conftest import cdnpack_cli
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


def test_sigterm_lets_the_round_finish_and_exits_0(edges: Edges, tmp_path: Path) -> None:
    config = write_config(tmp_path / "regions.yaml", edges, LENIENT_BUDGETS, SMALL)
    out = tmp_path / "na.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "probe", "--region", "na", "--config", str(config), "-o",
         str(out), "--every", "1s", "--json"], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "no round reported within 60 s"
        first = json.loads(proc.stdout.readline())
        assert first["round"] == 1
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    runs = runs_in(out)
    assert len(runs) >= 1
    assert out.read_text().endswith("\n")


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
