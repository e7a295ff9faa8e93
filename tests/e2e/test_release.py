"""The release job against a real local origin (moto_server) and emulated CDN edges pulling from
it: stage, probe, gate, then publish or hold the manifests back."""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from cdn.publish import PHASES, PushRequest, push
from cdn.s3 import S3Location
from packager.errors import InputError
from packager.output.pipeline import PackageResult
from packager.output.release import read_release
from probes.config import load_config
from release.flow import RolloutRequest, rollout, staged_name
from testbed.edges import Edges, EdgeSpec, edge_process
from testbed.origin import create_distribution, local_connection, origin_bucket
from tests.cdn.proxy import FaultProxy, Faults, RequestLog
from tests.conftest import cdnpack_cli
from tests.interrupts import assert_stopped_cleanly, interrupt, start
from tests.moto import MotoServer

BUCKET = "release-origin"
MANIFESTS = ("master.m3u8", "manifest.mpd")
PASSING = "  default: {ttfb_p95: 500ms, startup_p95: 3s, max_error_rate: 0.01}\n"
FAILING = "  default: {ttfb_p95: 500ms, startup_p95: 3s, max_error_rate: 0.01}\n" \
          "  eu: {ttfb_p95: 5ms}\n"  # eu's edges answer after 30-40 ms


@dataclass(frozen=True)
class Stage:
    moto: MotoServer
    prefix: str
    edges: Edges
    distribution: str
    workdir: Path

    def config(self, budgets: str, targets: tuple[str, ...] = MANIFESTS) -> Path:
        path = self.workdir / f"regions-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(
            "regions:\n  - {id: na, name: North America, weight: 0.6}\n"
            "  - {id: eu, name: Europe, weight: 0.4}\n"
            "cdns:\n"
            + "".join(
                f"  - id: {cdn}\n    base_url: {self.edges.url(f'{cdn}-na')}\n"
                f"    regions:\n      eu: {{host: \"{self.edges.host(f'{cdn}-eu')}\"}}\n"
                for cdn in ("alpha", "beta"))
            + "targets:\n" + "".join(f"  - {t}\n" for t in targets)
            + "probe: {samples: 2, segments: 1, concurrency: 4, timeout: 2s, deadline: 30s}\n"
            + "budgets:\n" + budgets
        )
        return path

    def request(self, release: Path, config: Path) -> RolloutRequest:
        return RolloutRequest(
            push=PushRequest(release, S3Location(BUCKET, self.prefix),
                             connection=local_connection(self.moto.url),
                             distribution=self.distribution),
            config=load_config(config), regions=(), results_dir=self.workdir / "results",
        )

    def keys(self) -> set[str]:
        answer = self.moto.client().list_objects_v2(Bucket=BUCKET, Prefix=self.prefix + "/")
        return {o["Key"].removeprefix(self.prefix + "/") for o in answer.get("Contents", [])}


@pytest.fixture
def stage(moto_s3: MotoServer, tmp_path: Path) -> Iterator[Stage]:
    origin_bucket(moto_s3.client(), BUCKET)
    distribution = create_distribution(moto_s3.client("cloudfront"), BUCKET)
    prefix = f"releases/{uuid.uuid4().hex[:8]}"
    origin = f"{moto_s3.url}/{BUCKET}/{prefix}/"
    specs = [EdgeSpec(f"{cdn}-{region}", delay=delay, origin=origin, cache=style)
             for cdn, style, delays in (("alpha", "cloudfront", (0.010, 0.030)),
                                        ("beta", "fastly", (0.015, 0.040)))
             for region, delay in zip(("na", "eu"), delays, strict=True)]
    with edge_process(specs, tmp_path) as edges:
        yield Stage(moto_s3, prefix, edges, distribution, tmp_path)


def public_paths(packaged: PackageResult) -> set[str]:
    return {f.path for f in packaged.release.files}


def test_a_passing_gate_publishes_the_manifests_after_probing_their_candidates(
    stage: Stage, packaged: PackageResult
) -> None:
    seen_while_probing: list[set[str]] = []
    regions_seen: set[str] = set()

    def progress(label: str, done: float, total: float) -> None:
        if label.startswith("probe ") and label not in regions_seen:
            regions_seen.add(label)
            seen_while_probing.append(stage.keys())

    result = rollout(stage.request(packaged.output, stage.config(PASSING)), progress)
    assert result.verdict.passed, [c.message for c in result.verdict.violations]
    # While the probes ran: every segment and media playlist was there, the manifests were
    # only there under their staged names.
    sha = {f.path: f.sha256 for f in packaged.release.files}
    candidates = {staged_name(m, sha[m]) for m in MANIFESTS}
    assert regions_seen == {"probe na", "probe eu"}
    for keys in seen_while_probing:
        assert keys == public_paths(packaged) - set(MANIFESTS) | candidates
    # The probes fetched the candidates through both CDNs from both regions, without errors.
    assert {r.region for r in result.runs} == {"na", "eu"}
    assert all(r.errors == 0 and r.fetches > 0 for r in result.runs)
    # Published: exactly the release, candidates gone, manifests invalidated.
    assert stage.keys() == public_paths(packaged)
    assert result.published is not None
    head = stage.moto.client().head_object(Bucket=BUCKET, Key=f"{stage.prefix}/master.m3u8")
    assert head["CacheControl"] == "public, max-age=30"
    [invalidation] = result.published.invalidations
    assert sorted(invalidation.paths) == sorted(f"/{stage.prefix}/{m}" for m in MANIFESTS)
    assert all(path.exists() for path in result.results)


def test_a_failing_gate_leaves_the_manifests_unpublished(
    stage: Stage, packaged: PackageResult
) -> None:
    result = rollout(stage.request(packaged.output, stage.config(FAILING)))
    assert not result.verdict.passed
    missed = {(c.region, c.budget) for c in result.verdict.violations}
    assert missed == {("eu", "ttfb_p95")}
    assert result.published is None
    assert stage.keys() == public_paths(packaged) - set(MANIFESTS)
    # Staging invalidated the media (and I-frame) playlists it changed; nothing named the
    # manifests.
    invalidated = {path for inv in result.staged.invalidations for path in inv.paths}
    assert invalidated == {f"/{stage.prefix}/{f.path}" for f in packaged.release.files
                           if f.role in ("media-playlist", "iframe-playlist")}


def test_a_prefix_publishing_another_release_is_refused_before_any_upload(
    stage: Stage, packaged: PackageResult, tmp_path: Path
) -> None:
    client = stage.moto.client()
    client.put_object(Bucket=BUCKET, Key=f"{stage.prefix}/master.m3u8", Body=b"#EXTM3U\n")
    with pytest.raises(InputError, match="already publishes a different release"):
        rollout(stage.request(packaged.output, stage.config(PASSING)))
    assert stage.keys() == {"master.m3u8"}


def test_a_target_the_release_does_not_have_is_refused_before_any_upload(
    stage: Stage, packaged: PackageResult
) -> None:
    config = stage.config(PASSING, targets=("master.m3u8", "{path: trailer.mp4, kind: file}"))
    with pytest.raises(InputError, match=r"trailer\.mp4"):
        rollout(stage.request(packaged.output, config))
    assert stage.keys() == set()


def test_rerunning_a_published_release_uploads_nothing_and_passes_again(
    stage: Stage, packaged: PackageResult
) -> None:
    request = stage.request(packaged.output, stage.config(PASSING))
    rollout(request)
    again = rollout(request)
    assert again.staged.uploaded == []
    assert again.published is not None
    assert again.published.uploaded == []
    assert stage.keys() == public_paths(packaged)


def test_push_stage_holds_the_manifests(stage: Stage, packaged: PackageResult) -> None:
    request = stage.request(packaged.output, stage.config(PASSING)).push
    result = push(replace(request, stage=True))
    held = {p.path for p in result.plan if p.action == "hold"}
    assert held == set(MANIFESTS)
    assert stage.keys() == public_paths(packaged) - set(MANIFESTS)



def release_args(stage: Stage, source: Path, out: Path, config: Path, endpoint: str,
                 *extra: str | Path) -> list[str | Path]:
    return ["release", source, f"s3://{BUCKET}/{stage.prefix}", "-o", out, "--config", config,
            "--ladder", "compact", "--segment-duration", "2", "--encrypt", "cbcs",
            "--keys", "generate", "--keystore", out.parent / "keys",
            "--endpoint-url", endpoint, "--distribution", stage.distribution, *extra]


def release_cli(stage: Stage, source: Path, out: Path, config: Path,
                *extra: str | Path) -> subprocess.CompletedProcess[str]:
    return cdnpack_cli(*release_args(stage, source, out, config, stage.moto.url, *extra))


def test_release_command_publishes_when_the_budgets_hold(
    stage: Stage, source_clip: Path, tmp_path: Path
) -> None:
    out = tmp_path / "title"
    done = release_cli(stage, source_clip, out, stage.config(PASSING), "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["package"]["protection"]["scheme"] == "cbcs"
    assert doc["gate"]["passed"] is True
    assert doc["published"]["uploaded"] == 2
    assert stage.keys() == {f.path for f in read_release(out).files}
    assert sorted(p.name for p in (tmp_path / "title.probes").iterdir()) == [
        "probe-eu.jsonl", "probe-na.jsonl"]


def test_release_command_exits_1_naming_the_missed_budgets(
    stage: Stage, source_clip: Path, tmp_path: Path
) -> None:
    out = tmp_path / "title"
    junit = tmp_path / "gate.xml"
    done = release_cli(stage, source_clip, out, stage.config(FAILING), "--junit", junit)
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("cdnpack: error: 2 of 12 budget checks missed")
    assert "eu/alpha ttfb_p95" in line
    assert "eu/beta ttfb_p95" in line
    assert "not published" in done.stdout
    assert not set(MANIFESTS) & stage.keys()
    assert junit.read_text().count("<failure") == 2


@pytest.mark.parametrize(("args", "message"), [
    (("s3://Bad_Bucket/p",), "not a valid S3 bucket name"),
    (("s3://bucket-ok/p", "--probe-region", "mars"), "no region 'mars'"),
    (("s3://bucket-ok/p", "--config", "/nonexistent.yaml"), "/nonexistent.yaml: cannot read"),
    (("s3://bucket-ok/p", "--results-dir", "{out}/probes"), "inside the release tree"),
])
def test_release_refuses_bad_input_before_encoding_anything(
    source_clip: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    out = tmp_path / "title"
    done = cdnpack_cli("release", source_clip, *(a.format(out=out) for a in args), "-o", out,
                       "--encrypt", "cbcs", "--keys", "generate", "--keystore", tmp_path / "keys")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert message in line
    assert sorted(tmp_path.iterdir()) == []  # no release, no keystore, no results


STEERING = "steering:\n  server: https://steer.example/title/\n  ttl: 10s\n"


def test_release_steering_publishes_the_documents_with_the_manifests(
    stage: Stage, source_clip: Path, tmp_path: Path
) -> None:
    """`release --steering`: steered manifests, each CDN probed through its own pathway, and
    on a pass the steering documents published beside the manifests."""
    out = tmp_path / "title"
    config = stage.config(PASSING)
    config.write_text(config.read_text() + STEERING)
    done = release_cli(stage, source_clip, out, config, "--steering", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["gate"]["passed"] is True
    steering = doc["steering"]
    assert steering["destination"] == f"s3://{BUCKET}/{stage.prefix}/steering"
    assert set(steering["documents"]) == {f"{kind}/{region}.json" for kind in ("hls", "dash")
                                          for region in ("na", "eu", "_overall")}
    stored = stage.moto.client().get_object(Bucket=BUCKET,
                                            Key=f"{stage.prefix}/steering/hls/eu.json")
    assert json.loads(stored["Body"].read())["PATHWAY-PRIORITY"] == steering["documents"][
        "hls/eu.json"]
    master = stage.moto.client().get_object(Bucket=BUCKET, Key=f"{stage.prefix}/master.m3u8")
    assert b'SERVER-URI="https://steer.example/title/hls.json"' in master["Body"].read()
    # Each CDN was probed through its own pathway of the steered manifests.
    hosts = {cdn: {stage.edges.host(f"{cdn}-{r}") for r in ("na", "eu")}
             for cdn in ("alpha", "beta")}
    fetched = 0
    for results in (tmp_path / "title.probes").iterdir():
        for line in results.read_text().splitlines():
            record = json.loads(line)
            if record["type"] == "fetch":
                fetched += 1
                assert record["url"].split("/")[2] in hosts[record["cdn"]], record["url"]
    assert fetched


def test_a_failed_gate_publishes_no_steering_documents(
    stage: Stage, source_clip: Path, tmp_path: Path
) -> None:
    out = tmp_path / "title"
    config = stage.config(FAILING)
    config.write_text(config.read_text() + STEERING)
    done = release_cli(stage, source_clip, out, config, "--steering")
    assert done.returncode == 1, done.stderr
    published = stage.keys()
    assert not {k for k in published if k.startswith("steering/")}
    assert not set(MANIFESTS) & stage.keys()


def encoding(out: Path) -> Callable[[RequestLog], bool]:
    """ffmpeg is writing into the release's work directory."""
    return lambda log: any(p.name.startswith(f".{out.name}.work-") and any(p.rglob("*.mp4"))
                           for p in out.parent.iterdir())


def staging(out: Path) -> Callable[[RequestLog], bool]:
    return lambda log: len(log.stored_objects()) >= 3


def probing(out: Path) -> Callable[[RequestLog], bool]:
    """The first region's results are written: the second region is being probed."""
    return lambda log: (out.parent / f"{out.name}.probes" / "probe-na.jsonl").exists()


def publishing(out: Path) -> Callable[[RequestLog], bool]:
    """The multivariant playlist is published, the MPD (slow to answer) not yet."""
    return lambda log: any(k.endswith("/master.m3u8") for k in log.stored_objects())


@pytest.mark.parametrize(("moment", "sig"), [
    (encoding, signal.SIGINT), (staging, signal.SIGTERM), (probing, signal.SIGINT),
    (publishing, signal.SIGTERM)], ids=["encode", "stage", "probe", "publish"])
def test_a_release_stopped_by_a_signal_leaves_nothing_half_published(
    stage: Stage, source_clip: Path, tmp_path: Path,
    moment: Callable[[Path], Callable[[RequestLog], bool]], sig: signal.Signals,
) -> None:
    """One line, exit 130/143, no process left; the staged candidates are deleted, and a
    manifest is in the bucket only with everything it names."""
    out = tmp_path / "title"
    faults = Faults(delay_all=0.02, delay_paths=(("/manifest.mpd", 1.0),))
    with FaultProxy(stage.moto.url, faults) as proxy:
        command = start(release_args(stage, source_clip, out, stage.config(PASSING), proxy.url,
                                     "--json"))
        came = moment(out)
        command.wait_until(lambda: came(proxy.log), moment.__name__)
        assert_stopped_cleanly(interrupt(command, sig), sig)
        proxy.wait_idle()
    keys = stage.keys()
    assert not [k for k in keys if ".staged-" in k], keys
    assert not list(tmp_path.glob(".title.work-*"))
    if moment is encoding:
        assert keys == set()
        assert not out.exists()
        return
    phases = {f.path: PHASES[f.role] for f in read_release(out).files}
    highest = max((phases[k] for k in keys), default=0)
    assert {k for k, p in phases.items() if p < highest} <= keys
