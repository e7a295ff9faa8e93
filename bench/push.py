"""Benchmark `cdnpack push` against `aws s3 sync` on the same release and the same local S3.

Both run as commands (interpreter start included) against one moto_server, reset before each
contender's first push and followed by its no-op re-push, in an order that rotates from one
repetition to the next. awscli lives in
its own venv (bench/out/awscli), made on first use, so its pinned botocore cannot disturb ours.
`--baseline DIR` times a third contender in the same runs: the cdnpack of another source tree
(e.g. `git archive <commit> | tar -x -C DIR`), so a change is measured against its parent
under the same load on a shared machine. `--rtt MS` puts a proxy between the clients and moto
that delays every byte as a distant origin would (testbed/delay.py): on loopback the endpoint's
own work per request decides, at a round trip of tens of milliseconds the client's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from bench.bytecode import compile_ours
from bench.machine import machine_doc, machine_line
from cdn.digest_cache import SETTLED
from cdn.s3 import DEFAULT_CONCURRENCY
from packager.output.release import Release, ReleaseFile, describe_file, finish_release
from testbed.delay import DelayProxy
from testbed.origin import FAKE_CREDENTIALS
from testbed.origin import local_origin as moto_server

REPO = Path(__file__).resolve().parent.parent
BUCKET = "bench-origin"
#: Issue 25's goals on loopback, wall time of the medians, cdnpack / aws s3 sync.
FIRST_PUSH_GOAL = 0.9
NOOP_GOAL = 0.4


def make_release(root: Path, objects: int, seed: int) -> Release:
    """A release of `objects` files shaped like a real one: 10 renditions of init + ~4 s
    segments (15-60 KB, seeded sizes) + media playlists, a multivariant playlist and an MPD."""
    rng = random.Random(seed)
    renditions = 10
    per = (objects - 2) // renditions - 2  # segments per rendition
    files: list[ReleaseFile] = []
    master = ["#EXTM3U", "#EXT-X-VERSION:6"]
    for r in range(renditions):
        rid = f"video_{r}"
        (root / rid).mkdir(parents=True)
        (root / rid / "init.mp4").write_bytes(rng.randbytes(800))
        files.append(describe_file(root, f"{rid}/init.mp4", "init", rid))
        playlist = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-TARGETDURATION:4",
                    '#EXT-X-MAP:URI="init.mp4"']
        for n in range(1, per + 1):
            name = f"seg_{n:05d}.m4s"
            (root / rid / name).write_bytes(rng.randbytes(rng.randint(15_000, 60_000)))
            files.append(describe_file(root, f"{rid}/{name}", "segment", rid))
            playlist += ["#EXTINF:4.00000,", name]
        (root / rid / "playlist.m3u8").write_text("\n".join([*playlist, "#EXT-X-ENDLIST", ""]))
        files.append(describe_file(root, f"{rid}/playlist.m3u8", "media-playlist", rid))
        master += [f"#EXT-X-STREAM-INF:BANDWIDTH={(r + 1) * 400_000}", f"{rid}/playlist.m3u8"]
    (root / "master.m3u8").write_text("\n".join(master) + "\n")
    files.append(describe_file(root, "master.m3u8", "multivariant", None))
    (root / "manifest.mpd").write_text('<?xml version="1.0"?><MPD type="static"/>\n')
    files.append(describe_file(root, "manifest.mpd", "mpd", None))
    return finish_release(root, source="synthetic", duration=per * 4.0, segment_duration=4.0,
                          formats=["hls", "dash"], renditions=[], files=files)


def awscli(workdir: Path) -> Path:
    venv = workdir / "awscli"
    aws = venv / "bin" / "aws"
    if not aws.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "awscli"], check=True)
    return aws


def positive(text: str) -> float:
    """An argparse type: a number above zero, or a one-line usage error."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not above zero")
    return value


def positive_int(text: str) -> int:
    value = positive(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(value)


def timed(args: list[str], env: dict[str, str], cwd: Path = REPO) -> tuple[float, float]:
    """Wall seconds, and the CPU seconds (user + system) the command itself used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{args[0]} exited {result.returncode}: {result.stderr.strip()[-300:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def count(s3: Any, prefix: str) -> int:
    paginator = s3.get_paginator("list_objects_v2")
    return sum(page.get("KeyCount", 0) for page in paginator.paginate(Bucket=BUCKET,
                                                                          Prefix=prefix))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds of quiet before each timed run (moto finishing the last)")
    parser.add_argument("--baseline", type=Path,
                        help="a cdnpack source tree to time beside this one ('baseline' rows)")
    parser.add_argument("--aws-concurrency", type=positive_int,
                        help="aws s3 sync's max_concurrent_requests (default: its own, 10)")
    parser.add_argument("--rtt", type=positive,
                        help="milliseconds of round trip the clients see (0: plain loopback)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    aws = awscli(args.workdir)
    aws_version = subprocess.run([str(aws), "--version"], capture_output=True, text=True,
                                 check=True).stdout.split(" ")[0]
    cdnpack = Path(sys.executable).parent / "cdnpack"
    # awscli's modules were byte-compiled when pip installed them: ours too (bench/bytecode.py).
    compile_ours(*([args.baseline] if args.baseline else []))
    env = {**os.environ, **FAKE_CREDENTIALS}
    aws_env = dict(env)
    if args.aws_concurrency:
        config = args.workdir / "aws-config"
        config.write_text(f"[default]\ns3 =\n  max_concurrent_requests = {args.aws_concurrency}\n")
        aws_env["AWS_CONFIG_FILE"] = str(config)
    names = ["cdnpack first", "aws first", "cdnpack no-op", "aws no-op"]
    if args.baseline:
        names += ["baseline first", "baseline no-op"]
        base_env = {**env, "PYTHONPATH": str(args.baseline.resolve())}
    times: dict[str, list[float]] = {k: [] for k in names}
    cpu_times: dict[str, list[float]] = {k: [] for k in names}  # the client's own CPU
    with (tempfile.TemporaryDirectory(prefix="cdnpack-push-bench-") as tmp,
          moto_server() as moto,
          DelayProxy(moto.url, args.rtt / 1000) if args.rtt else nullcontext() as proxy):
        endpoint = proxy.url if proxy else moto.url  # setup and checks go to moto directly
        root = Path(tmp) / "release"
        release = make_release(root, args.objects, seed=1)
        # A push remembers the digests of files that had settled (cdn/digest_cache.py): as
        # for a release packaged a while ago, they have. Each repetition has a cache of its
        # own: its first push reads every file, its no-op re-push reads none.
        time.sleep(SETTLED)
        listed = len(release.files)
        s3 = moto.client()
        for rep in range(args.repeat):
            # (name, command, environment, working directory, prefix)
            runs: list[tuple[str, list[str], dict[str, str], Path, str]] = [
                ("cdnpack", [str(cdnpack), "push", str(root), f"s3://{BUCKET}/ours{rep}",
                             "--endpoint-url", endpoint, "--json"],
                 {**env, "XDG_CACHE_HOME": str(Path(tmp) / f"cache{rep}")}, REPO,
                 f"ours{rep}/"),
                ("aws", [str(aws), "s3", "sync", str(root), f"s3://{BUCKET}/aws{rep}",
                         "--endpoint-url", endpoint, "--only-show-errors", "--exclude",
                         "release.json"], aws_env, REPO, f"aws{rep}/"),
            ]
            if args.baseline:
                runs.append(("baseline", [sys.executable, "-m", "cli", "push", str(root),
                                          f"s3://{BUCKET}/base{rep}", "--endpoint-url",
                                          endpoint, "--json"],
                             base_env, args.baseline, f"base{rep}/"))
            # The order rotates per repetition, so no contender always meets the machine right
            # after the same other one.
            runs = runs[rep % len(runs):] + runs[:rep % len(runs)]
            for name, command, run_env, cwd, prefix in runs:
                # Each contender meets an empty moto: moto keeps objects in memory and answers
                # more slowly the more it holds (its garbage collector walks them all).
                moto.reset()
                s3.create_bucket(Bucket=BUCKET)
                for stage in ("first", "no-op"):
                    time.sleep(args.settle)
                    wall, cpu = timed(command, run_env, cwd)
                    times[f"{name} {stage}"].append(wall)
                    cpu_times[f"{name} {stage}"].append(cpu)
                if count(s3, prefix) != listed:
                    raise SystemExit(f"{prefix} holds {count(s3, prefix)} objects, not {listed}")
    median = {k: statistics.median(v) for k, v in times.items()}
    cpu_median = {k: statistics.median(v) for k, v in cpu_times.items()}
    doc = {
        "objects": listed,
        "bytes": release.total_bytes,
        "repeat": args.repeat,
        "rtt_ms": args.rtt or 0,
        "aws_concurrency": args.aws_concurrency or 10,
        "machine": machine_doc(),
        "aws": aws_version,
        "cpus": os.cpu_count(),
        "seconds": {k: {"median": median[k], "runs": v} for k, v in times.items()},
        "client_cpu_seconds": {k: {"median": statistics.median(v), "runs": v}
                               for k, v in cpu_times.items()},
        "first_push_ratio": median["cdnpack first"] / median["aws first"],
        "noop_ratio": median["cdnpack no-op"] / median["aws no-op"],
        "first_push_cpu_ratio": cpu_median["cdnpack first"] / cpu_median["aws first"],
        "noop_cpu_ratio": cpu_median["cdnpack no-op"] / cpu_median["aws no-op"],
        "goals": {"first_push": FIRST_PUSH_GOAL, "noop": NOOP_GOAL},
        # Each repetition's own ratio: their spread says how far to trust the median's.
        "first_push_ratio_per_repetition": [
            ours / theirs for ours, theirs in zip(times["cdnpack first"], times["aws first"],
                                                  strict=True)],
    }
    if args.baseline:
        doc["baseline_first_push_ratio"] = median["baseline first"] / median["aws first"]
        doc["baseline_noop_ratio"] = median["baseline no-op"] / median["aws no-op"]
    if args.json:
        print(json.dumps(doc, indent=2))
        return
    where = f"through {args.rtt:g} ms of round trip" if args.rtt else "on loopback"
    print(machine_line())
    print(f"{listed} objects, {release.total_bytes / 1e6:.1f} MB, local moto_server {where}, "
          f"median of {args.repeat}; concurrency cdnpack {DEFAULT_CONCURRENCY}, "
          f"aws {doc['aws_concurrency']} ({aws_version})\n")
    print(f"{'run':<15} {'median s':>9} {'client CPU s':>13}   runs")
    for k, v in times.items():
        print(f"{k:<15} {median[k]:>9.2f} {statistics.median(cpu_times[k]):>13.2f}   "
              + " ".join(f"{x:.2f}" for x in v))
    spread = sorted(doc["first_push_ratio_per_repetition"])
    print(f"\ncdnpack/aws first push  {doc['first_push_ratio']:.3f}x wall, "
          f"{doc['first_push_cpu_ratio']:.3f}x client CPU   (goal <= {FIRST_PUSH_GOAL}; per "
          f"repetition {spread[0]:.2f}-{spread[-1]:.2f})")
    print(f"cdnpack/aws no-op push  {doc['noop_ratio']:.3f}x wall, {doc['noop_cpu_ratio']:.3f}x "
          f"client CPU   (goal <= {NOOP_GOAL})")
    if args.baseline:
        print(f"baseline/aws first push {doc['baseline_first_push_ratio']:.3f}x, "
              f"no-op push {doc['baseline_noop_ratio']:.3f}x")


if __name__ == "__main__":
    main()
