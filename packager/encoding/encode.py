"""One title's encode on the coordinator: jobs planned, run by an executor, joined back.

The executor runs the jobs (packager/encoding/jobs.py) where it likes: in this process, a
local pool, a cluster. Their outputs come back through the stage; a chunked rendition's
chunks are joined into one fragmented MP4 (packager/mp4/stitch.py), so that what the
segmenter reads is the same whatever ran the encode. The stage keys of this encode (one
prefix, unique to it) are removed at the end, whether it succeeded or not.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packager.encoding.chunks import Chunk, plan_chunks
from packager.encoding.jobs import EncodeResult, plan_encode, run_encode
from packager.encoding.ladder import Rendition
from packager.encoding.media import MediaInfo
from packager.encoding.thumbnails import ThumbnailPlan
from packager.encoding.transcode import EncodedTrack
from packager.errors import TranscodeError
from packager.executor import Executor, Stage
from packager.mp4.stitch import stitch

#: Seconds of the title encoded so far (jobs done, and the running job's share where known).
EncodeProgress = Callable[[float], None]


@dataclass(frozen=True)
class JobTiming:
    """One job's wall time on its worker (bench/chunks.py and capacity planning read them)."""

    job: str
    seconds: float
    media_seconds: float


@dataclass(frozen=True)
class TitleEncode:
    """The encoded tracks in the work directory (ffmpeg's form: one fragmented MP4 per audio
    and video rendition, WebVTT per text stream), and how the work was split."""

    tracks: list[EncodedTrack]
    chunks: int
    timings: tuple[JobTiming, ...]


def encode_title(
    media: MediaInfo,
    renditions: list[Rendition],
    segment_duration: float,
    starts: list[float],
    work: Path,
    *,
    executor: Executor,
    stage: Stage,
    chunks: int = 1,
    thumbnails: ThumbnailPlan | None = None,
    locations: tuple[tuple[str, str], ...] = (),
    progress: EncodeProgress | None = None,
) -> TitleEncode:
    """Encode `renditions` in `chunks` chunks (1: one job for the whole title) on `executor`;
    the thumbnails, when planned, end up in their plan's directory."""
    videos = [r for r in renditions if r.kind == "video"]
    planned = plan_chunks(starts, videos[0].frame_rate, chunks) if chunks > 1 and videos else []
    if len(planned) == 1:  # a title of one segment
        planned = []
    prefix = f"encode-{uuid.uuid4().hex}"
    jobs = plan_encode(media, renditions, segment_duration, starts, planned, stage,
                       prefix, thumbnails, _located(media, renditions, locations))

    def report(done: float, total: int) -> None:
        if progress is not None:
            progress(media.duration * done / total)

    try:
        results = executor.map(run_encode, jobs, report)
        tracks = _collect(results, renditions, planned, stage, work, thumbnails)
    finally:
        stage.delete_prefix(prefix)
    return TitleEncode(tracks, max(1, len(planned)),
                       tuple(JobTiming(r.job, r.seconds, r.media_seconds) for r in results))


def _located(media: MediaInfo, renditions: list[Rendition],
             locations: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """Every input a job reads, with where workers find it: as given, else its absolute path
    (a worker on this machine need not share the coordinator's working directory)."""
    given = dict(locations)
    inputs = [media.path, *(r.source for r in renditions if r.source is not None)]
    for path in inputs:
        given.setdefault(str(path), str(path.absolute()))
    return tuple(given.items())


def _collect(results: list[EncodeResult], renditions: list[Rendition], chunks: list[Chunk],
             stage: Stage, work: Path, thumbnails: ThumbnailPlan | None) -> list[EncodedTrack]:
    """Fetch every output from the stage into `work`; join each video rendition's chunks."""
    keys: dict[str, list[str]] = {}
    for result in results:  # in the jobs' order: chunks in time order
        for name, key in result.outputs:
            keys.setdefault(name, []).append(key)
    tracks = []
    for rendition in renditions:
        name = f"{rendition.id}.{'vtt' if rendition.kind == 'text' else 'mp4'}"
        found = keys.get(name, [])
        if not found:
            if rendition.kind == "text":
                continue  # a side file: read by packager/text, never by ffmpeg
            raise TranscodeError(f"the encode wrote no {name}")
        path = work / name
        if rendition.kind == "video" and chunks:
            _join(rendition, found, chunks, stage, work, path)
        else:
            stage.get(found[0], path)
        tracks.append(EncodedTrack(rendition, path))
    if thumbnails is not None:
        for name in sorted(n for n in keys if n.endswith(".jpg")):  # the sheets (tile_N.jpg)
            stage.get(keys[name][0], thumbnails.directory / name)
    return tracks


def _join(rendition: Rendition, keys: list[str], chunks: list[Chunk], stage: Stage,
          work: Path, path: Path) -> None:
    if len(keys) != len(chunks):
        raise TranscodeError(f"{rendition.id}: {len(keys)} of {len(chunks)} chunks encoded")
    parts = [work / "chunks" / chunk.name / path.name for chunk in chunks]
    for key, part in zip(keys, parts, strict=True):
        stage.get(key, part)
    try:
        stitch(parts, [chunk.start for chunk in chunks], path, [c.skip for c in chunks])
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
