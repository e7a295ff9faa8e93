"""A title's encode as jobs: plain data a worker runs anywhere, and the function that runs one.

A job names what it reads (the source and side files, by the coordinator's path, and where a
worker finds each: `locations`) and what it writes (stage keys under its own name), so it can
run on this machine or another, and run again after a lost worker without harm: it writes
only its own keys, each renamed into place whole. It carries no content key: what it writes
is clear media; segmenting and encryption stay on the coordinator, where the keys are.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from packager.encoding.chunks import Chunk
from packager.encoding.ladder import Rendition
from packager.encoding.media import MediaInfo
from packager.encoding.thumbnails import ThumbnailPlan
from packager.encoding.transcode import build_ladder_command, draw_thumbnails, run_ffmpeg
from packager.executor import Stage, report_progress

#: The job that encodes everything in one ffmpeg (no chunks).
WHOLE = "whole"
THUMBNAILS = "thumbnails"
TEXT = "text"


@dataclass(frozen=True)
class EncodeJob:
    """One ffmpeg run: `renditions` over the whole title, or the video renditions over one
    `chunk`; and, with `thumbnails`, the tile sheets (a branch of a whole video decode, or by
    seeks when no job decodes the whole video)."""

    name: str  # unique in its plan; its keys are prefix/name/FILE
    media: MediaInfo
    renditions: tuple[Rendition, ...]
    segment_duration: float
    starts: tuple[float, ...]  # the segment plan: key frames (seconds)
    stage: Stage
    prefix: str
    chunk: Chunk | None = None
    thumbnails: ThumbnailPlan | None = None
    #: (coordinator's path, where a worker reads it): a URL, a shared mount.
    locations: tuple[tuple[str, str], ...] = ()

    @property
    def seconds(self) -> float:
        """Seconds of the title this job encodes."""
        if self.chunk is None:
            return self.media.duration
        length = self.chunk.seconds
        return self.media.duration - float(self.chunk.start) if length is None else length

    def key(self, file_name: str) -> str:
        return f"{self.prefix}/{self.name}/{file_name}"


@dataclass(frozen=True)
class EncodeResult:
    """What a job wrote, small enough to travel back to the coordinator."""

    job: str
    outputs: tuple[tuple[str, str], ...]  # (file name, stage key), e.g. video_720p.mp4
    seconds: float  # wall time on its worker, from start to the last key written
    media_seconds: float  # of the title


def plan_encode(
    media: MediaInfo,
    renditions: list[Rendition],
    segment_duration: float,
    starts: list[float],
    chunks: list[Chunk],
    stage: Stage,
    prefix: str,
    thumbnails: ThumbnailPlan | None = None,
    locations: tuple[tuple[str, str], ...] = (),
) -> list[EncodeJob]:
    """One job for the whole title when there is one chunk or none (or no video); else one
    job per chunk (every video rendition), one per audio rendition (a language: encoded over
    the whole title, so no AAC priming and padding at the chunks' joins), one for the
    source's text streams and one for the thumbnails. Chunks first: they are the long jobs."""
    def job(name: str, tracks: list[Rendition], chunk: Chunk | None = None,
            sheets: ThumbnailPlan | None = None) -> EncodeJob:
        return EncodeJob(name, media, tuple(tracks), segment_duration, tuple(starts),
                         stage, prefix, chunk, sheets, locations)

    videos = [r for r in renditions if r.kind == "video"]
    if len(chunks) <= 1 or not videos:
        return [job(WHOLE, renditions, sheets=thumbnails)]
    jobs = [job(chunk.name, videos, chunk) for chunk in chunks]
    if thumbnails is not None:
        jobs.append(job(THUMBNAILS, [], sheets=thumbnails))
    jobs += [job(r.id, [r]) for r in renditions if r.kind == "audio"]
    texts = [r for r in renditions if r.kind == "text" and r.source is None and r.stream >= 0]
    if texts:
        jobs.append(job(TEXT, texts))
    return jobs


def run_encode(job: EncodeJob) -> EncodeResult:
    """Run one job on this machine: ffmpeg writes into a private temporary directory, and each
    file is put to the stage under the job's key (renamed into place there)."""
    started = time.perf_counter()
    locations = dict(job.locations)
    with tempfile.TemporaryDirectory(prefix=f"cdnpack-{job.name}-") as tmp:
        work = Path(tmp)
        plan = job.thumbnails and replace(
            job.thumbnails, directory=work / job.thumbnails.spec.directory)
        whole_video = job.chunk is None and any(r.kind == "video" for r in job.renditions)
        files: list[Path] = []
        if job.renditions:
            args, tracks = build_ladder_command(
                job.media, list(job.renditions), job.segment_duration, work,
                list(job.starts), plan if whole_video else None, job.chunk, locations)
            seconds = job.seconds
            run_ffmpeg(args, seconds,
                       lambda done: report_progress(done / seconds) if seconds > 0 else None)
            files += [track.path for track in tracks]
        if plan is not None:
            if not whole_video:
                draw_thumbnails(job.media, plan, work, locations.get(str(job.media.path)))
            files += sorted(plan.directory.glob("tile_*.jpg"))
        outputs = []
        for path in files:
            job.stage.put(path, job.key(path.name))
            outputs.append((path.name, job.key(path.name)))
    return EncodeResult(job.name, tuple(outputs), time.perf_counter() - started, job.seconds)
