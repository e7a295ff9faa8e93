"""The `release` job: stage a release on the origin, probe it through every CDN, publish only if
the budgets hold.

Viewers find a release through its multivariant playlist and MPD, so those are what a gate holds
back.  The flow:
  1. stage    segments, inits and media playlists go up (verified, as `push` does); the
              multivariant playlist and MPD do not.  A prefix that already publishes other
              manifests is refused before anything is uploaded.
  2. candidates  each held manifest is uploaded under a staged name beside it
              (`master.m3u8` -> `master.staged-<sha256[:12]>.m3u8`, uncacheable), so its relative
              references resolve exactly as the published one's will, and no viewer or CDN cache
              ever sees the public name before the gate passes.
  3. probe    every configured region probes the candidates through every CDN (the config's
              targets are mapped onto the staged names).
  4. gate     the budgets of regions.yaml against the scorecard.
  5. publish  on a pass only: the real manifests go up (verified) and are invalidated. With
              steering, the static steering documents planned from these very probe runs go up
              just before them (steering/publish.py), so a steered manifest never names a
              steering document that is not there, and a failed gate publishes neither.
The candidates are deleted on every way out (pass, miss, error, Ctrl-C, SIGTERM); on the way
out of an error or a signal that deletion is bounded and quiet: what ends the command is what
stopped it, not an origin that is gone too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from cdn.publish import PHASE_MANIFESTS, PHASES, PushRequest, PushResult, push
from cdn.s3 import (
    Connection,
    OriginError,
    S3Location,
    Upload,
    client,
    delete_keys,
    file_facts,
    object_args,
    parse_s3_url,
    upload_all,
)
from packager.errors import InputError, UnlicensedError
from packager.files import write_atomic
from packager.output.release import CONTENT_TYPES, read_release
from packager.rights.instants import format_instant
from packager.rights.model import Rights
from probes.config import ProbeConfig, Target
from probes.gate import Verdict, evaluate
from probes.results import jsonl, parse_records
from probes.run import ProbeRun, probe_region
from probes.score import Scorecard, scorecard
from steering.plan import make_plan
from steering.publish import PublishRequest, PublishResult, publish

log = logging.getLogger(__name__)

#: Candidates must never be cached: a re-run with other bytes reuses no name, but a CDN that
#: kept one would be probing yesterday's candidate.
STAGED_CACHE_CONTROL = "no-store, max-age=0"

#: (stage, done, total) as in `push`, plus ("probe <region>", units done, units).
ProgressSink = Callable[[str, float, float], None]


@dataclass(frozen=True)
class RolloutRequest:
    push: PushRequest  # where and how to upload (stage is set by the job)
    config: ProbeConfig
    regions: tuple[str, ...]  # regions probed (their edges and budgets); empty: all of them
    results_dir: Path  # one JSONL per region, kept for `score`/`gate` and the audit trail
    #: --steering: where the static steering documents go once the gate passes (None: none)
    steering: S3Location | None = None


@dataclass(frozen=True)
class RolloutResult:
    staged: PushResult
    candidates: dict[str, str]  # release path -> staged path (relative to the prefix)
    runs: list[ProbeRun]
    results: list[Path]
    card: Scorecard
    verdict: Verdict
    published: PushResult | None  # None: the gate failed, nothing was published
    steering: PublishResult | None = None  # the steering documents published with them


def steering_destination(steering: bool, destination: str,
                         override: str | None) -> S3Location | None:
    """Where `release --steering` publishes the steering documents: `--steering-destination`,
    else `steering/` under the release's own prefix."""
    if override is not None and not steering:
        raise InputError("--steering-destination needs --steering")
    if not steering:
        return None
    if override is not None:
        return parse_s3_url(override)
    release = parse_s3_url(destination)
    return S3Location(release.bucket, release.key("steering"))


def refuse_unlicensed(rights: Rights | None, now: datetime) -> None:
    """A release whose every grant has closed would publish what may never play: refused
    (exit 1, like a missed budget) before anything is encoded or uploaded."""
    if rights is not None and not rights.current_or_upcoming(now):
        last = max((g.end for g in rights.grants if g.end is not None), default=now)
        raise UnlicensedError(f"{rights.source}: no grant is in force or upcoming at "
                              f"{format_instant(now)} (the last closed "
                              f"{format_instant(last)}): nothing to release")


def results_dir_for(output: Path, results_dir: Path | None) -> Path:
    """Where the probe results go: the given directory, else OUTPUT.probes beside the release;
    never inside the release tree, which is pushed as a whole."""
    results = results_dir if results_dir is not None else output.with_name(output.name + ".probes")
    if results.resolve().is_relative_to(output.resolve()):
        raise InputError(f"--results-dir {results} is inside the release tree {output}")
    return results


def check_regions(config: ProbeConfig, regions: tuple[str, ...]) -> None:
    """Unknown probe regions are refused before anything is encoded or uploaded."""
    for region in regions:
        config.region(region)


def staged_name(path: str, sha256: str) -> str:
    """`hls/master.m3u8` -> `hls/master.staged-1a2b3c4d5e6f.m3u8`: same directory, so relative
    URIs inside resolve identically; named by content, so a re-run of the same release reuses it."""
    p = PurePosixPath(path)
    return str(p.with_name(f"{p.stem}.staged-{sha256[:12]}{p.suffix}"))


def probe_config_for(config: ProbeConfig, candidates: dict[str, str],
                     public: set[str]) -> ProbeConfig:
    """The config's targets, held manifests replaced by their candidates.

    A target the release does not publish would be probed as a 404 and fail the gate for a
    reason that has nothing to do with delivery: refused up front instead.
    """
    targets: list[Target] = []
    for target in config.targets:
        path = target.path.lstrip("/")
        if path not in public:
            raise InputError(
                f"{config.path}: target {target.path!r} is not a public file of this release "
                f"(its manifests: {', '.join(sorted(candidates))})"
            )
        targets.append(replace(target, path=candidates.get(path, path)))
    return replace(config, targets=targets)


def rollout(request: RolloutRequest, progress: ProgressSink | None = None) -> RolloutResult:
    release_dir = request.push.release_dir
    release = read_release(release_dir)
    held = [f for f in release.files if PHASES.get(f.role) == PHASE_MANIFESTS]
    if not held:
        raise InputError(f"{release_dir}: the release has no multivariant playlist or MPD")
    candidates = {f.path: staged_name(f.path, f.sha256) for f in held}
    public = {f.path for f in release.files if f.role in PHASES}
    config = probe_config_for(request.config, candidates, public)
    regions = request.regions or tuple(r.id for r in config.regions)
    for region in regions:
        config.region(region)  # an unknown region fails before any upload

    if request.push.dry_run:
        raise InputError("a release cannot be dry-run: `cdnpack push --dry-run` shows the plan")
    staged = push(replace(request.push, stage=True, prune=False), progress)
    s3 = client(request.push.connection)
    destination = request.push.destination
    staged_keys = [destination.key(name) for name in candidates.values()]
    try:
        _upload_candidates(s3, request.push, {f.path: f.sha256 for f in held}, candidates)
        runs: list[ProbeRun] = []
        results: list[Path] = []
        for region in regions:
            def sink(done: int, total: int, label: str = f"probe {region}") -> None:
                if progress:
                    progress(label, done, total)
            run = probe_region(config, region, sink)
            target = request.results_dir / f"probe-{region}.jsonl"
            write_atomic(target, jsonl(run.lines))
            runs.append(run)
            results.append(target)
        card_results = parse_records(
            (f"run {run.run_id}", line) for run in runs for line in run.lines)
        card = scorecard(card_results, config)
        verdict = evaluate(card, config)
        published = None
        steering = None
        if verdict.passed:
            if request.steering is not None:
                plan = make_plan(card_results, request.config, datetime.now(UTC))
                steering = publish(PublishRequest(request.steering, request.config, plan,
                                                  request.push.connection))
            published = push(replace(request.push, stage=False, prune=False), progress)
        else:
            log.info("gate failed: %d budgets missed; manifests not published",
                     len(verdict.violations))
    except BaseException:
        _delete_quietly(request.push.connection, destination.bucket, staged_keys)
        raise
    delete_keys(s3, destination.bucket, staged_keys)
    return RolloutResult(staged, {p: destination.key(n) for p, n in candidates.items()}, runs,
                         results, card, verdict, published, steering)


#: Attempts and timeouts (s) of the deletion on the way out of an error or a signal: a few
#: seconds at most (signals are ignored meanwhile: packager/interrupts.py).
QUICK_ATTEMPTS, QUICK_CONNECT, QUICK_READ = 2, 1.0, 3.0


def _delete_quietly(connection: Connection, bucket: str, keys: list[str]) -> None:
    """Delete the candidates if the origin answers at once; say so at -v if it does not (they
    are uncacheable and named by content: the next run reuses or replaces them)."""
    try:
        quick = replace(connection, max_attempts=QUICK_ATTEMPTS, connect_timeout=QUICK_CONNECT,
                        read_timeout=QUICK_READ)
        delete_keys(client(quick), bucket, keys)
    except Exception as exc:  # the error or signal being unwound is what the user must see
        log.info("staged manifests not deleted (%s): %s", exc, ", ".join(keys))


def _upload_candidates(s3: Any, request: PushRequest, sha: dict[str, str],
                       candidates: dict[str, str]) -> None:
    """Put each held manifest under its staged name, verified like every other upload."""
    uploads: list[Upload] = []
    etags: dict[str, str] = {}
    for path, name in candidates.items():
        source = request.release_dir / path
        size, _, etags[path] = file_facts(source, request.transfer)  # the size that was hashed
        uploads.append(Upload(
            path=source, key=request.destination.key(name), size=size,
            extra_args=object_args(CONTENT_TYPES[PurePosixPath(path).suffix],
                                   STAGED_CACHE_CONTROL, sha[path], size, request.transfer),
        ))
    answered = upload_all(s3, request.destination.bucket, uploads, request.connection,
                          request.transfer)
    for path, name in candidates.items():
        key = request.destination.key(name)
        if answered.get(key) != etags[path]:
            raise OriginError(f"verify: staged {key} was not stored with our bytes")
