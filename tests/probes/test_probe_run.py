"""The probe job: JSONL records, video sessions, deadline, S3 results, through the real CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from packager.output.pipeline import PackageResult
from probes.config import load_config
from probes.run import probe_region
from testbed.edges import Edges
from tests.conftest import cdnpack_cli
from tests.moto import MotoServer
from tests.probes.conftest import DELAY_FAST, LENIENT_BUDGETS, ProbeRuns, write_config

PHASES = ("dns_s", "connect_s", "tls_s", "ttfb_s", "transfer_s", "total_s")


def records(path: Path, kind: str) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    return [x for x in lines if x["type"] == kind]


def test_run_file_starts_with_the_run_record(probe_runs: ProbeRuns) -> None:
    (run,) = records(probe_runs.na, "run")
    first = json.loads(probe_runs.na.read_text().splitlines()[0])
    assert first["type"] == "run"
    assert first["region"] == "na"
    assert run["completed"] == run["units"] == 4 * 2 * 3
    assert run["abandoned"] == 0
    assert not run["deadline_hit"]
    assert run["fetches"] == len(records(probe_runs.na, "fetch"))


def test_every_fetch_record_has_phases_status_cache_and_address(probe_runs: ProbeRuns) -> None:
    fetches = records(probe_runs.na, "fetch")
    assert fetches
    for f in fetches:
        assert all(f[p] is None or f[p] >= 0 for p in PHASES)
        assert f["status"] == 200
        assert f["error"] is None
        assert f["remote_addr"].startswith("127.0.0.1:")
        assert f["started_at"] < f["ended_at"]
        assert f["cache"] in ("hit", "miss")
        assert f["cache_headers"]
        assert f["connect_s"] is not None
        assert not f["reused"]
    fast = [f for f in fetches if f["cdn"] == "fast"]
    assert len(fast) == len(fetches) // 2  # two CDNs, probed alike
    assert all(f["url"].startswith("http://fast.cdn.test:") for f in fast)
    assert all(f["dns_s"] is not None for f in fast)  # a name was resolved (pinned)
    assert {f["step"] for f in fetches} == {"manifest", "playlist", "init", "segment", "file",
                                            "audio"}


def test_video_sessions_record_startup_as_manifest_then_the_slowest_rendition_to_its_first_segment(
    probe_runs: ProbeRuns,
) -> None:
    """The video rendition and the default audio are fetched side by side, as a player does:
    startup is the manifest, then the later of the two chains (playlist, init, first
    segment) to finish."""
    fetches = records(probe_runs.na, "fetch")
    plays = records(probe_runs.na, "playback")
    assert len(plays) == 4 * 2 * 2  # samples x CDNs x (HLS + DASH), lowest rendition
    for p in plays:
        steps = [f for f in fetches if (f["cdn"], f["target"], f["sample"]) ==
                 (p["cdn"], p["target"], p["sample"])]
        manifest = sum(f["total_s"] for f in steps if f["step"] == "manifest")
        chains = []
        for rendition in {f["rendition"] for f in steps if f["rendition"]}:
            chain = [f for f in steps if f["rendition"] == rendition]
            first = next(i for i, f in enumerate(chain) if f["step"] in ("segment", "audio"))
            chains.append(sum(f["total_s"] for f in chain[: first + 1]))
        assert len(chains) == 2  # the video and the default audio
        assert p["startup_s"] == pytest.approx(manifest + max(chains), abs=1e-5)
        assert p["error"] is None
        assert p["sustainable_ratio"] > 1
        assert p["top_bandwidth_bps"] >= p["bandwidth_bps"] > 0
        assert len([f for f in steps if f["step"] == "segment"]) == 2
    hls = [p for p in plays if p["target"] == "master.m3u8" and p["cdn"] == "fast"]
    assert len(hls) == 4  # one per sample
    # four sequential fetches (multivariant, media playlist, init, segment), each >= 20 ms
    assert all(p["startup_s"] >= 4 * DELAY_FAST for p in hls)


@pytest.mark.parametrize(("which", "count"), [("lowest", 1), ("highest", 1), ("all", None)])
def test_rendition_choice(edges: Edges, packaged: PackageResult, tmp_path: Path, which: str,
                          count: int | None) -> None:
    settings = f"  samples: 1\n  renditions: {which}\n  segments: 1\n"
    config = load_config(write_config(tmp_path / "r.yaml", edges, LENIENT_BUDGETS, settings))
    run = probe_region(config, "na")
    plays = [x for x in run.lines if x["type"] == "playback" and x["target"] == "manifest.mpd"
             and x["cdn"] == "fast"]
    videos = sorted(r.bandwidth for r in packaged.release.renditions if r.kind == "video")
    assert len(plays) == (count or len(videos))
    if which == "lowest":
        assert plays[0]["rendition"] == min(
            (r for r in packaged.release.renditions if r.kind == "video"),
            key=lambda r: r.bandwidth).id
    if which == "highest":
        assert plays[0]["bandwidth_bps"] == plays[0]["top_bandwidth_bps"]
    manifests = [x for x in run.lines if x["type"] == "fetch" and x["step"] == "manifest"
                 and x["cdn"] == "fast" and x["target"] == "manifest.mpd"]
    assert len(manifests) == 1  # shared by every rendition of the session


def test_run_ends_by_its_deadline_whatever_the_servers_do(edges: Edges, tmp_path: Path) -> None:
    path = tmp_path / "stall.yaml"
    path.write_text(f"""\
regions: [{{id: na, name: North America, weight: 1}}]
cdns: [{{id: stuck, base_url: "{edges.url('fail-stall')}"}}]
targets: [master.m3u8, a.bin, b.bin]
probe: {{samples: 20, concurrency: 4, timeout: 5s, deadline: 600ms}}
""")
    started = time.perf_counter()
    run = probe_region(load_config(path), "na")
    elapsed = time.perf_counter() - started
    assert elapsed < 0.6 + 0.4
    assert run.deadline_hit
    assert run.abandoned == run.units == 60
    assert run.completed == 0
    assert run.lines[0]["deadline_hit"] is True


def test_probe_appends_the_run_to_an_s3_prefix(
    edges: Edges, moto_s3: MotoServer, tmp_path: Path
) -> None:
    moto_s3.client("s3").create_bucket(Bucket="probe-results")
    config = write_config(tmp_path / "c.yaml", edges, LENIENT_BUDGETS)
    for region in ("na", "eu"):
        result = cdnpack_cli(
            "probe", "--region", region, "--config", config, "--samples", "1",
            "-o", tmp_path / f"{region}.jsonl", "--results", "s3://probe-results/ci/run-1",
            "--endpoint-url", moto_s3.url, "--json",
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["stored"].startswith(f"s3://probe-results/ci/run-1/{region}/")
    listing = moto_s3.client("s3").list_objects_v2(Bucket="probe-results", Prefix="ci/run-1/")
    keys = sorted(o["Key"] for o in listing["Contents"])
    assert len(keys) == 2
    body = moto_s3.client("s3").get_object(Bucket="probe-results", Key=keys[1])["Body"].read()
    assert body == (tmp_path / "na.jsonl").read_bytes()
    scored = cdnpack_cli("score", "s3://probe-results/ci/run-1", "--config", config,
                         "--endpoint-url", moto_s3.url, "--json")
    assert scored.returncode == 0, scored.stderr
    assert {r["id"] for r in json.loads(scored.stdout)["regions"]} == {"na", "eu"}


def test_unknown_region_is_bad_input_before_any_traffic(probe_runs: ProbeRuns) -> None:
    result = cdnpack_cli("probe", "--region", "mars", "--config", probe_runs.config)
    assert result.returncode == 2
    assert result.stderr.startswith("cdnpack: error: ")
    assert "mars" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_results_store_is_an_environment_error(probe_runs: ProbeRuns) -> None:
    result = cdnpack_cli("score", "s3://results/ci", "--endpoint-url", "http://127.0.0.1:1",
                         "--config", probe_runs.config)
    assert result.returncode == 3
    assert result.stderr.startswith("cdnpack: error: cannot read results from s3://results/ci")


def test_missing_bucket_is_bad_input_and_the_local_file_is_kept(
    edges: Edges, moto_s3: MotoServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.yaml", edges, LENIENT_BUDGETS, "  samples: 1\n")
    result = cdnpack_cli("probe", "--region", "na", "--config", config, "-o",
                         tmp_path / "na.jsonl", "--results", "s3://absent/ci",
                         "--endpoint-url", moto_s3.url)
    assert result.returncode == 2
    assert "no such bucket" in result.stderr
    assert records(tmp_path / "na.jsonl", "run")
