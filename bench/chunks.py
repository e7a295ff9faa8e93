"""Benchmark: a title packaged with its video encoded in chunks against the same title encoded
whole, both by `package()` with LocalExecutor(2) on this machine, same source, same ladder.

Runs alternate (whole, each chunk count, whole, ...) so that the machine's load drifts over
all alike; the ratio of medians to the whole encode's is the figure of record. Each run is
checked, so a broken variant cannot look fast: the top rendition's frame count against the
source's, and its VMAF (libvmaf, model vmaf_v0.6.1, in ffmpeg-full) against the source, which
says what the chunks cost in quality. Every job's wall time is kept (per chunk: seconds of
wall per second of media), the figure a capacity model of a cluster starts from.

The machine is shared, and a loaded machine favours the variant running more processes (each
gets a share of the busy cores). So each run also reports its CPU time and how many of the two
cores it could keep busy: the process tree's runnable threads are sampled every 20 ms, and the
mean of min(runnable, 2) is the cores it would use on a free machine. CPU time over that is the
run's estimated wall time on 2 free cores, and the ratio of those estimates is reported beside
the measured one.

Usage: .venv/bin/python -m bench.chunks [--durations 120] [--runs 2] [--chunks auto,2,...]
       [--size 1280x720] [--ladder default] [--segment 4] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from packager.encoding.chunks import parse_chunks
from packager.executor import LocalExecutor
from packager.output.pipeline import PackageRequest, PackageResult, package
from packager.tools import find_tool
from testbed.clips import ClipSpec, make_clip

WORKERS = 2


@dataclass(frozen=True)
class Run:
    variant: str  # "whole", or the --chunks value ("auto", "2", ...)
    duration: float  # of the source, seconds
    seconds: float  # package() wall time
    encode_seconds: float  # wall time until segmenting began
    cpu_seconds: float  # user + system of this process and every child reaped
    busy_cores: float  # mean of min(runnable threads, WORKERS) over the run
    chunks: int
    frames: int  # decoded from the top rendition's segments
    source_frames: int
    vmaf: float  # top rendition against the source
    jobs: list[dict[str, float | str]]


def cpu_now() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def runnable_threads(pid: int) -> int:
    """Threads in state R (running or waiting for a core) in the process tree below pid."""
    count = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return 0
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
            children = (task / "children").read_text().split()
        except OSError:
            continue
        count += stat[stat.rindex(")") + 2] == "R"
        count += sum(runnable_threads(int(child)) for child in children)
    return count


class Demand:
    """Samples how many cores the run could keep busy (see the module's docstring)."""

    def __init__(self) -> None:
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.02):
            # less the sampler itself, which is running while it reads /proc
            self.samples.append(min(WORKERS, max(0, runnable_threads(me) - 1)))

    def __enter__(self) -> Demand:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def busy_cores(self) -> float:
        return statistics.fmean(self.samples) if self.samples else float(WORKERS)


def package_once(source: Path, out: Path, args: argparse.Namespace, chunks: int | None,
                 variant: str) -> tuple[PackageResult, float, float, float, float]:
    marks: dict[str, float] = {}

    def sink(stage: str, done: float, total: float) -> None:
        marks.setdefault(stage, time.perf_counter())

    cpu, started = cpu_now(), time.perf_counter()
    with Demand() as demand:
        result = package(PackageRequest(source=source, output=out, ladder=args.ladder,
                                        segment_duration=args.segment, chunks=chunks,
                                        force=True),
                         sink, executor=LocalExecutor(WORKERS))
    ended = time.perf_counter()
    encode = marks.get("segment", ended) - started
    used = cpu_now() - cpu
    print(f"  {variant:8s} {ended - started:7.2f} s (encode {encode:.2f} s), "
          f"{result.chunks} chunk(s), {used:.1f} CPU-s, {demand.busy_cores:.2f} cores busy",
          flush=True)
    return result, ended - started, encode, used, demand.busy_cores


def top_track(result: PackageResult, work: Path) -> tuple[Path, int, int]:
    top = max((r for r in result.release.renditions if r.kind == "video"),
              key=lambda r: r.height)
    directory = result.output / top.id
    joined = work / f"{result.output.name}-{top.id}.mp4"
    with joined.open("wb") as f:
        for part in [directory / "init.mp4", *sorted(directory.glob("seg_*.m4s"))]:
            f.write(part.read_bytes())
    return joined, top.width, top.height


def count_frames(path: Path) -> int:
    done = subprocess.run(
        [str(find_tool("ffprobe").path), "-v", "error", "-select_streams", "v:0",
         "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0",
         str(path)], capture_output=True, text=True, check=True)
    return int(done.stdout.strip())


def vmaf(track: Path, width: int, height: int, source: Path, work: Path) -> float:
    log = work / f"vmaf-{track.stem}.json"
    graph = (f"[0:v]setpts=PTS-STARTPTS[d];[1:v]scale={width}:{height},setpts=PTS-STARTPTS[r];"
             f"[d][r]libvmaf=model=version=vmaf_v0.6.1:n_threads={WORKERS}:log_fmt=json:"
             f"log_path={log}")
    subprocess.run([str(find_tool("ffmpeg-full").path), "-v", "error", "-nostdin",
                    "-i", str(track), "-i", str(source), "-lavfi", graph, "-f", "null", "-"],
                   check=True)
    return float(json.loads(log.read_text())["pooled_metrics"]["vmaf"]["mean"])


def measure(source: Path, duration: float, args: argparse.Namespace, variant: str,
            work: Path) -> Run:
    chunks = 1 if variant == "whole" else parse_chunks(variant)
    out = work / f"out-{variant}"
    result, seconds, encode, cpu, busy = package_once(source, out, args, chunks, variant)
    track, width, height = top_track(result, work)
    run = Run(variant, duration, seconds, encode, cpu, busy, result.chunks, count_frames(track),
              count_frames(source), vmaf(track, width, height, source, work),
              [asdict(j) for j in result.encode_jobs])
    track.unlink()
    return run


def report(runs: list[Run], duration: float, variant: str) -> dict[str, float | str]:
    whole = [r for r in runs if r.variant == "whole" and r.duration == duration]
    chunked = [r for r in runs if r.variant == variant and r.duration == duration]

    def median(group: list[Run], name: str) -> float:
        return statistics.median(float(getattr(r, name)) for r in group)

    summary: dict[str, float | str] = {
        "duration": duration,
        "variant": variant,
        "chunks": chunked[0].chunks,
        "whole_seconds": median(whole, "seconds"),
        "chunked_seconds": median(chunked, "seconds"),
        "ratio": median(chunked, "seconds") / median(whole, "seconds"),
        "encode_ratio": median(chunked, "encode_seconds") / median(whole, "encode_seconds"),
        "cpu_ratio": median(chunked, "cpu_seconds") / median(whole, "cpu_seconds"),
        "whole_busy_cores": median(whole, "busy_cores"),
        "chunked_busy_cores": median(chunked, "busy_cores"),
        "free_ratio": (median(chunked, "cpu_seconds") / median(chunked, "busy_cores"))
        / (median(whole, "cpu_seconds") / median(whole, "busy_cores")),
        "whole_vmaf": median(whole, "vmaf"),
        "chunked_vmaf": median(chunked, "vmaf"),
        "vmaf_delta": median(chunked, "vmaf") - median(whole, "vmaf"),
        "frames_equal": float(all(r.frames == r.source_frames for r in whole + chunked)),
    }
    chunk_jobs = [j for r in chunked for j in r.jobs if str(j["job"]).startswith("chunk_")]
    per_second = [float(j["seconds"]) / float(j["media_seconds"]) for j in chunk_jobs]
    summary["chunk_wall_per_media_second"] = statistics.median(per_second or [0.0])
    print(f"{duration:5.0f} s, --chunks {variant} ({summary['chunks']}): whole "
          f"{summary['whole_seconds']:.2f} s, chunked {summary['chunked_seconds']:.2f} s, "
          f"ratio {summary['ratio']:.3f} (encode {summary['encode_ratio']:.3f}, "
          f"cpu {summary['cpu_ratio']:.3f}, on 2 free cores {summary['free_ratio']:.3f}: busy "
          f"{summary['whole_busy_cores']:.2f} vs {summary['chunked_busy_cores']:.2f}); "
          f"VMAF {summary['whole_vmaf']:.2f} -> "
          f"{summary['chunked_vmaf']:.2f} ({summary['vmaf_delta']:+.2f}); frames equal "
          f"{bool(summary['frames_equal'])}; a chunk: "
          f"{summary['chunk_wall_per_media_second']:.3f} s wall per media second", flush=True)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--durations", default="120",
                        help="source lengths in seconds, comma-separated")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--chunks", default="auto",
                        help="chunk counts to compare with the whole encode, comma-separated")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--ladder", default="default")
    parser.add_argument("--segment", type=float, default=4.0)
    parser.add_argument("--json", type=Path, help="write every run and the summaries here")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    runs: list[Run] = []
    summaries: list[dict[str, float | str]] = []
    variants = args.chunks.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-chunks-") as tmp:
        work = Path(tmp)
        for duration in (float(d) for d in args.durations.split(",")):
            source = make_clip(work / f"source-{duration:g}.mp4",
                               ClipSpec(duration=duration, width=width, height=height,
                                        frame_rate="25", preset="veryfast"))
            print(f"{duration:g} s of {args.size}, ladder {args.ladder}, "
                  f"{args.segment:g} s segments, chunks {args.chunks}, {WORKERS} workers",
                  flush=True)
            for _ in range(args.runs):
                for variant in ("whole", *variants):
                    runs.append(measure(source, duration, args, variant, work))
            summaries += [report(runs, duration, variant) for variant in variants]
            source.unlink()
    if args.json:
        args.json.write_text(json.dumps({"runs": [asdict(r) for r in runs],
                                         "summaries": summaries}, indent=2))


if __name__ == "__main__":
    main()
