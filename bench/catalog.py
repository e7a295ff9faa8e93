"""Benchmark: what the Dask engine costs, what chunks gain on this machine, and how long a
cluster takes to publish a two-hour 1080p title, modelled from the per-chunk times measured here.

1. Engine overhead. A title's encode jobs (its video in N chunks of whole segments, plus its
   audio job) run by a plain local loop (each job in turn, in this process, outputs to a
   directory) against the same jobs through the engine: `encode_title` on a LocalCluster of one
   worker (a Dask task per job), an S3 stage on the local origin (every output put and fetched
   back) and the joins of each rendition's chunks (stitching). One worker on both sides, so the
   difference is the engine's own work. Goal: at most 5 %.
2. Chunked against single process. `package()` of the title encoded whole by one ffmpeg in this
   process (LocalExecutor(1): the single-process encode) against `package()` with N chunks on a
   LocalCluster of 2 workers (DaskExecutor, as `catalog run` runs it on this machine), this
   machine's 2 cores both ways. Goal: at most 1.0x. Each run's top rendition is checked: every
   source frame once.
3. Model. From the per-job times measured here, the time to encode and package a 7,200 s title
   on W workers (the model is printed with its inputs; docs/catalog.md states it).

Runs alternate (loop, engine, whole, chunked, then the reverse order, ...) so the machine's load
drifts over all alike, and every ratio is taken within this one run. Every figure is taken
twice: wall time, and CPU time of the whole process tree (this process, the LocalClusters'
workers and every ffmpeg they reaped; not the local S3 origin's, a stand-in for a service that
is nobody's CPU on the coordinator). On a shared machine the wall ratios also measure the CPU
share a variant wins from the other load (two ffmpeg processes get about twice one's share), so
the CPU ratios are the figures of record for the engine's work, and for the chunked encode its
wall time on 2 free cores is estimated as CPU time over the cores it kept busy (bench/chunks.py).

Usage: .venv/bin/python -m bench.catalog [--duration 48] [--size 1920x1080] [--chunks 2]
       [--ladder default] [--segment 4] [--runs 2] [--json FILE] [--from-json FILE]
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.chunks import Demand, count_frames, cpu_now, top_track
from bench.machine import machine_doc, machine_line
from cdn.s3 import S3Location
from cluster.connect import ClusterSpec, connect
from cluster.executor import DaskExecutor
from cluster.stage import S3Stage
from packager.encoding.chunks import LEAD_IN, chunk_count, plan_chunks
from packager.encoding.encode import encode_title
from packager.encoding.jobs import plan_encode, run_encode
from packager.encoding.ladder import audio_tracks, load_ladder, plan_renditions
from packager.encoding.media import probe
from packager.executor import DirectoryStage, LocalExecutor
from packager.output.pipeline import PackageRequest, package, planned_starts
from testbed.clips import ClipSpec, make_clip
from testbed.origin import FAKE_CREDENTIALS, local_connection, local_origin

#: The title the model publishes, and the worker counts it is modelled on.
MODEL_SECONDS = 7200.0
MODEL_WORKERS = (1, 8, 32)
#: The cores of a worker in the idle model (deploy/dask's: 4 vCPU each).
IDLE_CORES = 4


@dataclass(frozen=True)
class Job:
    job: str
    seconds: float  # wall, on its worker
    media_seconds: float  # of the title, lead-in excluded
    cpu_seconds: float = 0.0  # loop only: the job's ffmpeg and this process


@dataclass(frozen=True)
class Encode:
    variant: str  # loop | engine
    seconds: float
    cpu_seconds: float  # of the whole process tree
    jobs: list[Job]
    #: engine: seconds to put the bytes its jobs staged (the same bytes, timed again after the
    #: run: inside the run each put is part of its job's time; fetching them back is not)
    staging_seconds: float = 0.0


@dataclass(frozen=True)
class Package:
    variant: str  # whole | chunked
    seconds: float
    cpu_seconds: float  # of the whole process tree
    encode_seconds: float  # until segmenting began
    busy_cores: float  # mean of min(runnable threads, 2) over the run (bench/chunks.py)
    chunks: int
    frames: int
    source_frames: int
    jobs: list[Job] = field(default_factory=list)


def cpu_tree() -> float:
    """User + system seconds of this process and every descendant alive, each with the
    children it has reaped (an ffmpeg counts once its parent has waited for it); the local S3
    origin (moto_server) left out."""
    total = 0.0
    me = psutil.Process()
    for process in (me, *me.children(recursive=True)):
        try:
            if any("moto" in part for part in process.cmdline()):
                continue
            t = process.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


@contextmanager
def s3_stage() -> Iterator[S3Stage]:
    with local_origin() as origin:
        origin.client().create_bucket(Bucket="stage")
        yield S3Stage(S3Location("stage", "bench"), local_connection(origin.url))


def encode_jobs(source: Path, args: argparse.Namespace, work: Path, stage: S3Stage,
                executor: DaskExecutor, variant: str) -> Encode:
    """The chunked encode by a plain loop, or by the engine (one worker each)."""
    media = probe(source)
    renditions = plan_renditions(load_ladder(args.ladder), media, audio_tracks(media))
    starts = planned_starts(media, renditions, PackageRequest(
        source=source, output=work / "unused", segment_duration=args.segment))
    video = next(r for r in renditions if r.kind == "video")
    if variant == "loop":
        local = DirectoryStage(work / "loop-stage")
        jobs = plan_encode(media, renditions, args.segment, starts,
                           plan_chunks(starts, video.frame_rate, args.chunks), local,
                           f"loop-{uuid.uuid4().hex}")
        cpu, started = cpu_tree(), time.perf_counter()
        timings = []
        for job in jobs:
            before = cpu_now()
            result = run_encode(job)
            timings.append(Job(result.job, result.seconds, result.media_seconds,
                               cpu_now() - before))
        run = Encode("loop", time.perf_counter() - started, cpu_tree() - cpu, timings)
        local.delete_prefix("")
    else:
        out = work / "engine"
        out.mkdir(exist_ok=True)
        cpu, started = cpu_tree(), time.perf_counter()
        done = encode_title(media, renditions, args.segment, starts, out, executor=executor,
                            stage=stage, chunks=args.chunks)
        seconds, spent = time.perf_counter() - started, cpu_tree() - cpu
        staged = time.perf_counter()
        for track in done.tracks:
            stage.put(track.path, f"timing/{track.path.name}")
        putting = time.perf_counter() - staged
        stage.delete_prefix("timing")
        run = Encode("engine", seconds, spent,
                     [Job(t.job, t.seconds, t.media_seconds) for t in done.timings], putting)
        for track in done.tracks:
            track.path.unlink()
    print(f"  {variant:7s} {run.seconds:7.2f} s, cpu {run.cpu_seconds:7.2f} s "
          f"({len(run.jobs)} jobs)", flush=True)
    return run


def package_title(source: Path, args: argparse.Namespace, work: Path, variant: str,
                  executor: LocalExecutor | DaskExecutor) -> Package:
    marks: dict[str, float] = {}

    def sink(stage: str, done: float, total: float) -> None:
        marks.setdefault(stage, time.perf_counter())

    cpu, started = cpu_tree(), time.perf_counter()
    with Demand() as demand:
        result = package(PackageRequest(
            source=source, output=work / f"out-{variant}", ladder=args.ladder,
            segment_duration=args.segment, chunks=1 if variant == "whole" else args.chunks,
            force=True), sink, executor=executor)
    ended = time.perf_counter()
    spent = cpu_tree() - cpu
    track, _, _ = top_track(result, work)
    run = Package(variant, ended - started, spent, marks.get("segment", ended) - started,
                  demand.busy_cores, result.chunks, count_frames(track), count_frames(source),
                  [Job(j.job, j.seconds, j.media_seconds) for j in result.encode_jobs])
    track.unlink()
    print(f"  {variant:7s} {run.seconds:7.2f} s, cpu {run.cpu_seconds:7.2f} s (encode "
          f"{run.encode_seconds:.2f} s, {run.busy_cores:.2f} cores busy), {run.chunks} "
          f"chunk(s), frames {run.frames}/{run.source_frames}", flush=True)
    return run


def measure(args: argparse.Namespace) -> tuple[list[Encode], list[Package]]:
    width, height = (int(v) for v in args.size.split("x"))
    os.environ.update(FAKE_CREDENTIALS)  # the workers' own credentials for the local origin
    encodes: list[Encode] = []
    packages: list[Package] = []
    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as tmp, s3_stage() as stage:
        work = Path(tmp)
        source = make_clip(work / "source.mp4", ClipSpec(
            duration=args.duration, width=width, height=height, frame_rate="25",
            preset="veryfast"))
        with connect(ClusterSpec(workers=1)) as one, connect(ClusterSpec(workers=2)) as two:
            for run in range(args.runs):
                order = ["loop", "engine", "whole", "chunked"]
                for variant in order if run % 2 == 0 else order[::-1]:
                    if variant in ("loop", "engine"):
                        encodes.append(encode_jobs(source, args, work, stage,
                                                   DaskExecutor(one), variant))
                    elif variant == "whole":
                        packages.append(package_title(source, args, work, variant,
                                                      LocalExecutor(1)))
                    else:
                        packages.append(package_title(source, args, work, variant,
                                                      DaskExecutor(two)))
    return encodes, packages


def makespan(jobs: list[float], workers: int) -> float:
    """Jobs taken in order by the first free worker (Dask's placing of a title's jobs,
    submitted chunks first): the time the last one ends."""
    free = [0.0] * workers
    end = 0.0
    for seconds in jobs:
        start = heapq.heappop(free)
        end = max(end, start + seconds)
        heapq.heappush(free, start + seconds)
    return end


@dataclass(frozen=True)
class Rates:
    """A model's inputs, in seconds per second of media: a chunk job's (per second encoded,
    its lead-in included), the audio job's, the whole title's job (one worker) and the
    coordinator's serial work after the jobs (fetching their outputs from the stage, joining
    the chunks, segmenting, manifests); and the share of each job's time spent putting its
    outputs to the stage."""

    chunk: float
    audio: float
    whole: float
    serial: float
    engine: float
    lead_in: float = float(LEAD_IN)  # seconds encoded before each chunk but the first


def model(rates: Rates, segment: float) -> list[dict[str, float]]:
    """The encode of a MODEL_SECONDS title on W workers, split as `--chunks auto` splits it
    (packager/encoding/chunks.py), its jobs (chunks, then one audio job: one language) taken in
    order by the first free worker, each lengthened by its staging share; then the
    coordinator's serial work. One worker encodes the title whole, in one job."""
    segments = math.ceil(MODEL_SECONDS / segment)
    rows = []
    for workers in MODEL_WORKERS:
        chunks = chunk_count(None, workers, MODEL_SECONDS, segments)
        if chunks == 1:
            encode = rates.whole * MODEL_SECONDS * (1 + rates.engine)
        else:
            length = MODEL_SECONDS / chunks
            jobs = [rates.chunk * (length + (rates.lead_in if i else 0.0))
                    for i in range(chunks)]
            jobs.append(rates.audio * MODEL_SECONDS)
            encode = makespan([j * (1 + rates.engine) for j in jobs], workers)
        serial = rates.serial * MODEL_SECONDS
        rows.append({"workers": workers, "chunks": chunks, "chunk_seconds":
                     MODEL_SECONDS / chunks, "encode_seconds": encode,
                     "serial_seconds": serial, "total_seconds": encode + serial})
    return rows


def summarize(encodes: list[Encode], packages: list[Package],
              args: argparse.Namespace) -> dict[str, Any]:
    def median(runs: list[Encode] | list[Package], variant: str, name: str = "seconds") -> float:
        return statistics.median(float(getattr(r, name)) for r in runs if r.variant == variant)

    def jobs_time(run: Encode) -> float:
        return sum(j.seconds for j in run.jobs)

    def runs_of(variant: str) -> list[Encode] | list[Package]:
        return encodes if variant in ("loop", "engine") else packages

    variants = ("loop", "engine", "whole", "chunked")
    cpu = {v: median(runs_of(v), v, "cpu_seconds") for v in variants}
    wall = {v: median(runs_of(v), v) for v in variants}
    busy = {v: median(packages, v, "busy_cores") for v in ("whole", "chunked")}
    free = {v: cpu[v] / busy[v] for v in ("whole", "chunked")}  # est. wall on 2 free cores
    engines = [e for e in encodes if e.variant == "engine"]
    # Within each engine run (one worker: its jobs one after the other) the time the worker
    # was not running a job is the engine's own (scheduling; fetching and joining the outputs,
    # after the last job); its puts to the stage, inside the jobs, are timed again on the same
    # bytes. Both are immune to the load's drift between runs.
    gap = statistics.median((e.seconds - jobs_time(e)) / jobs_time(e) for e in engines)
    gap_rate = statistics.median((e.seconds - jobs_time(e)) / args.duration for e in engines)
    staging = statistics.median(e.staging_seconds / jobs_time(e) for e in engines)

    def loop_jobs(prefix: str) -> list[Job]:
        return [j for e in encodes if e.variant == "loop" for j in e.jobs
                if j.job.startswith(prefix)]

    def encoded(job: Job) -> float:  # every chunk but the first has a lead-in
        return job.media_seconds + (float(LEAD_IN) if job.job != "chunk_00001" else 0.0)

    def wall_rate(runs: list[Encode] | list[Package], prefix: str) -> float:
        rates = [j.seconds / (encoded(j) if prefix == "chunk_" else j.media_seconds)
                 for r in runs for j in r.jobs if j.job.startswith(prefix) and j.media_seconds]
        return statistics.median(rates)

    chunks, audio = loop_jobs("chunk_"), loop_jobs("audio")
    chunk_cpu = sum(j.cpu_seconds for j in chunks) / sum(encoded(j) for j in chunks)
    audio_cpu = sum(j.cpu_seconds for j in audio) / sum(j.media_seconds for j in audio)
    # The coordinator's work after the jobs: the engine's gap (scheduling, fetching, joining:
    # the worker idle) and what follows the encode in package() (segmenting, manifests).
    segmenting = statistics.median(p.seconds - p.encode_seconds for p in packages)
    serial = gap_rate + segmenting / args.duration
    measured = Rates(wall_rate(engines, "chunk_"), wall_rate(engines, "audio"),
                     wall_rate([p for p in packages if p.variant == "whole"], "whole"),
                     serial, staging)
    # Idle workers of IDLE_CORES cores: a video job's CPU seconds spread over the worker's
    # cores (ffmpeg's encoders use them all), the audio job's on one; the coordinator's serial
    # work at its measured (loaded) wall rate, an upper bound.
    idle = Rates(chunk_cpu / IDLE_CORES, audio_cpu, (chunk_cpu + audio_cpu) / IDLE_CORES,
                 serial, staging)
    return {
        "engine_gap": gap, "staging_share": staging, "engine_share": gap + staging,
        "engine_wall_overhead": wall["engine"] / wall["loop"] - 1,
        "engine_cpu_overhead": cpu["engine"] / cpu["loop"] - 1,
        # each run's pair (a loop and an engine run side by side in time): the spread
        "engine_cpu_overhead_runs": [
            pair["engine"].cpu_seconds / pair["loop"].cpu_seconds - 1
            for pair in ({e.variant: e for e in encodes[i:i + 2]}
                         for i in range(0, len(encodes), 2))],
        "chunked_wall_ratio": wall["chunked"] / wall["whole"],
        "chunked_cpu_ratio": cpu["chunked"] / cpu["whole"],
        "chunked_free_ratio": free["chunked"] / free["whole"],
        "wall_seconds": wall, "cpu_seconds": cpu, "busy_cores": busy,
        "chunk_cpu_per_second": chunk_cpu, "audio_cpu_per_second": audio_cpu,
        "frames_equal": all(p.frames == p.source_frames for p in packages),
        "rates_measured": asdict(measured), "rates_idle": asdict(idle),
        "model_measured": model(measured, args.segment),
        "model_idle": model(idle, args.segment),
    }


def report(summary: dict[str, Any]) -> None:
    wall, cpu, busy = summary["wall_seconds"], summary["cpu_seconds"], summary["busy_cores"]
    print(f"engine overhead: {summary['engine_share']:+.1%} of its jobs' time within each "
          f"engine run ({summary['engine_gap']:+.1%} scheduling, fetching and joining, "
          f"{summary['staging_share']:+.1%} putting to the stage); against the loop: cpu "
          f"{summary['engine_cpu_overhead']:+.1%} ({cpu['loop']:.1f} -> {cpu['engine']:.1f} s;"
          f" each run's pair " + ", ".join(f"{r:+.1%}" for r in
                                           summary["engine_cpu_overhead_runs"]) +
          f"), wall {summary['engine_wall_overhead']:+.1%} ({wall['loop']:.1f} -> "
          f"{wall['engine']:.1f} s)")
    print(f"chunked/single-process: cpu {summary['chunked_cpu_ratio']:.3f} ({cpu['whole']:.1f}"
          f" -> {cpu['chunked']:.1f} s), wall {summary['chunked_wall_ratio']:.3f} "
          f"({wall['whole']:.1f} -> {wall['chunked']:.1f} s), on 2 free cores "
          f"{summary['chunked_free_ratio']:.3f} (busy {busy['whole']:.2f} vs "
          f"{busy['chunked']:.2f} cores); every frame once: {summary['frames_equal']}")
    print(f"a chunk: {summary['chunk_cpu_per_second']:.3f} CPU-s per second encoded (lead-in "
          f"included); audio {summary['audio_cpu_per_second']:.4f} CPU-s per second")
    for name, title in (("idle", f"idle workers of {IDLE_CORES} cores, from CPU time"),
                        ("measured", "wall rates measured here (a worker: this loaded "
                                     "machine)")):
        r = summary[f"rates_{name}"]
        print(f"model, {title}: chunk {r['chunk']:.3f}, audio {r['audio']:.4f}, whole "
              f"{r['whole']:.3f}, serial {r['serial']:.4f} s per media s; staging "
              f"{r['engine']:+.1%} a job")
        for row in summary[f"model_{name}"]:
            print(f"  {row['workers']:3.0f} workers, {row['chunks']:3.0f} chunk(s) of "
                  f"{row['chunk_seconds']:5.0f} s: encode {row['encode_seconds'] / 60:6.1f} "
                  f"min + serial {row['serial_seconds'] / 60:4.1f} min = "
                  f"{row['total_seconds'] / 60:6.1f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=48.0)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--chunks", type=int, default=2)
    parser.add_argument("--ladder", default="default")
    parser.add_argument("--segment", type=float, default=4.0)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write every run and the summary here")
    parser.add_argument("--from-json", type=Path,
                        help="summarize the runs of an earlier --json (its options given again)")
    args = parser.parse_args()
    if args.from_json:
        doc = json.loads(args.from_json.read_text())
        encodes = [Encode(**{**e, "jobs": [Job(**j) for j in e["jobs"]]})
                   for e in doc["encodes"]]
        packages = [Package(**{**p, "jobs": [Job(**j) for j in p["jobs"]]})
                    for p in doc["packages"]]
        machine = doc["machine"]
    else:
        print(f"{args.duration:g} s of {args.size}, ladder {args.ladder}, {args.segment:g} s "
              f"segments, {args.chunks} chunks, {args.runs} runs", flush=True)
        print(machine_line(), flush=True)
        machine = machine_doc()
        encodes, packages = measure(args)
        machine["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    summary = summarize(encodes, packages, args)
    report(summary)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "options": vars(args) | {
            "json": str(args.json), "from_json": str(args.from_json)},
            "encodes": [asdict(e) for e in encodes],
            "packages": [asdict(p) for p in packages], "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
