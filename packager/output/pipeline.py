"""The `package` job: probe, ladder, transcode, segment, manifests, release.json; built aside."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from packager.drm import pssh as drm
from packager.encoding.chunks import chunk_count
from packager.encoding.codecs import (
    check_build,
    codec_names,
    source_decoder_tool,
    video_codec,
)
from packager.encoding.ladder import (
    LadderSpec,
    Rendition,
    load_ladder,
    plan_renditions,
    track_rendition,
)
from packager.encoding.media import MediaInfo, probe
from packager.encoding.segments import segment_starts
from packager.encoding.thumbnails import (
    ThumbnailPlan,
    ThumbnailSpec,
    ThumbnailTrack,
    collect_thumbnails,
    plan_thumbnails,
)
from packager.encoding.transcode import (
    EncodedTrack,
    build_copy_command,
    build_text_command,
    draw_thumbnails,
    ladder_tool,
    run_ffmpeg,
)
from packager.encryption.iv import with_release_iv
from packager.encryption.spec import AES_128, EncryptionSpec
from packager.errors import InputError, OutputExistsError
from packager.executor import DirectoryStage, Executor, LocalExecutor, Stage
from packager.fork_executor import ForkExecutor
from packager.mp4.demux import DemuxedSource, TrackTables, read_moov, read_track, unsupported
from packager.output import dash, hls
from packager.output.bitrate import measure
from packager.output.measured import MeasuredQuality, measure_release, track_key
from packager.output.release import (
    FORMATS,
    ProtectionSummary,
    Release,
    ReleaseFile,
    RenditionSummary,
    describe_file,
    finish_release,
)
from packager.output.segmenter import (
    INIT_NAME,
    CmafTrack,
    TrackPlan,
    join_parts,
    plan_cut_times,
    plan_track,
    segment_part,
    segment_track,
)
from packager.output.trickplay_release import write_trick_play
from packager.title.localize import localize, text_renditions
from packager.title.model import Title
from packager.title.tracks import TitleTrack
from packager.tools import own_process_group

if TYPE_CHECKING:
    from packager.encoding.encode import JobTiming
    from packager.encoding.per_title import PerTitleLadder

    # Text, steering, rights and MPEG-TS are loaded by the runs that make them (a release of
    # video and audio alone starts sooner without their modules).
    from packager.output import hls_ts
    from packager.output.steering import SteeringSpec
    from packager.rights.model import Rights
    from packager.text.cues import TextTrack

log = logging.getLogger(__name__)

COPY_VIDEO_CODECS = {"h264", "hevc", "av1"}
COPY_AUDIO_CODECS = {"aac"}


@dataclass(frozen=True)
class PackageRequest:
    source: Path
    output: Path
    ladder: str = "default"
    segment_duration: float = 4.0
    formats: tuple[str, ...] = FORMATS
    copy: bool = False
    force: bool = False
    #: Common Encryption of every track (cenc or cbcs); None packages in the clear.
    encryption: EncryptionSpec | None = None
    #: --copy reads an MP4/MOV source's sample tables itself (packager/mp4/demux.py); False
    #: forces the ffmpeg remux it otherwise falls back to (for comparisons and diagnosis).
    demux: bool = True
    #: Languages beyond the source's own streams: dubs, descriptions, subtitles, captions.
    title: Title = field(default_factory=Title)
    #: --thumbnails: JPEG tile sheets (encoding/thumbnails.py); None draws none.
    thumbnails: ThumbnailSpec | None = None
    #: --steering: the multivariant playlist and MPD name every CDN pathway and the steering
    #: server (packager/output/steering.py); None writes single-origin manifests.
    steering: SteeringSpec | None = None
    #: Territories and windows (packager/rights): a multivariant playlist and an MPD per grant
    #: beside the unrestricted ones; None writes no grant manifests.
    rights: Rights | None = None
    #: --codec: the video codecs every rung is encoded in (packager/encoding/codecs.py);
    #: None: the ladder's own (`codecs:` in a ladder file; h264).
    codecs: tuple[str, ...] | None = None
    #: Measure every video rendition's VMAF on the delivered track for release.json and the
    #: HLS SCORE (the CLI does unless --no-vmaf; --copy renditions are the source itself and
    #: are never measured).
    vmaf: bool = False
    #: --chunks: the video encoded in this many chunks of whole segments, each a job of its
    #: own (encoding/chunks.py); 1 encodes the title in one job; None (auto) chunks a title
    #: long enough to gain when the executor has more than one worker.
    chunks: int | None = None
    #: Where the executor's workers read an input file (the source, a dub) that this machine
    #: has at a path: (path, URL or shared-mount path) pairs. Unlisted inputs are read at their
    #: path (workers on this machine).
    locations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PackageResult:
    output: Path
    media: MediaInfo
    release: Release
    seconds: float
    #: How the encode was split (1: one job for the whole title) and each job's wall time.
    chunks: int = 1
    encode_jobs: tuple[JobTiming, ...] = ()


#: (stage, done, total): "transcode" in seconds of media, "segment" in tracks.
ProgressSink = Callable[[str, float, float], None]


def package(request: PackageRequest, progress: ProgressSink | None = None,
            executor: Executor | None = None, stage: Stage | None = None) -> PackageResult:
    """Package a source into a release directory; on any failure nothing is left behind.

    The encode runs as jobs on `executor` (default: a process pool on this machine), whose
    outputs move through `stage` (default: a directory in this package's work directory);
    segmenting, encryption and manifests stay here, with the keys."""
    started = time.perf_counter()
    _check_request(request)
    if request.encryption is not None:
        request = replace(request, encryption=with_release_iv(request.encryption))
    media = probe(request.source)
    spec = load_ladder(request.ladder)
    # Every side file is read (text) or probed (audio) before anything is written: a bad one
    # is refused while there is nothing to undo.
    localized = localize(request.title, media, request.segment_duration)
    audio = [t for t in localized.tracks if t.kind == "audio"]
    renditions = (copy_renditions(media, audio) if request.copy
                  else plan_renditions(spec, media, audio, request.codecs))
    renditions += text_renditions(localized.tracks)
    if spec.per_title is not None:
        from packager.encoding import per_title  # a per-title ladder's analysis, trials
        spec = replace(spec, per_title=per_title.checked(spec, media, request.codecs,
                                                         request.copy))
    else:
        renditions = _ts_renditions(request, renditions)
    if request.rights is not None:  # refused while there is nothing to undo
        from packager.rights.allowance import check_rights
        check_rights(request.rights, renditions)
    _check_tools(request, media, renditions)
    output = request.output.absolute()
    output.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{output.name}.build-", dir=output.parent))
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}.work-", dir=output.parent))
    build.chmod(0o755)  # mkdtemp makes it 0700; a release is meant to be served
    runner = _Runner(executor or LocalExecutor(), stage or DirectoryStage(work / "stage"))
    try:
        ladder = None
        if spec.per_title is not None:
            ladder = _analyse(request, spec, media, work, progress)
            from packager.encoding.per_title import renditions as per_title_renditions
            renditions = [*per_title_renditions(ladder, spec.preset), *renditions]
            renditions = _ts_renditions(request, renditions)
            if request.rights is not None:  # a grant's max_height against the rungs placed
                from packager.rights.allowance import check_rights
                check_rights(request.rights, renditions)
        if request.encryption is not None and request.encryption.scheme == AES_128:
            release = _package_ts(request, media, renditions, build, work, progress, runner)
        else:
            tracks = _encode_and_segment(request, media, renditions, build, work,
                                         progress, localized.texts, runner)
            images = _thumbnails(request, media, work, build)
            quality = _measure(request, media, tracks, build, ladder, progress)
            tracks = quality.scored(tracks)
            release = _write_manifests(request, media, tracks, build, images, quality)
        _move_into_place(build, output, request.force)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return PackageResult(output, media, release, time.perf_counter() - started,
                         runner.chunks, runner.timings)


@dataclass
class _Runner:
    """Where this package's encode runs and what it reported (one package call's state)."""

    executor: Executor
    stage: Stage
    chunks: int = 1
    timings: tuple[JobTiming, ...] = ()


def _analyse(request: PackageRequest, spec: LadderSpec, media: MediaInfo, work: Path,
             progress: ProgressSink | None) -> PerTitleLadder:
    """The per-title analysis (trial encodes on a sample, VMAF), and the rungs it places."""
    assert spec.per_title is not None
    assert media.video is not None
    report = (lambda done, total: progress("analyse", done, total)) if progress else None
    from packager.encoding.per_title import analyse  # its pool: only a per-title ladder's
    ladder = analyse(spec.per_title, spec, media, media.video.frame_rate,
                     request.segment_duration, work, progress=report)
    log.info("per-title: %d trial points, %d rungs, analysis %.1f s CPU",
             len(ladder.points), len(ladder.rungs), ladder.cpu_seconds)
    return ladder


def _measure(request: PackageRequest, media: MediaInfo, tracks: list[CmafTrack], build: Path,
             ladder: PerTitleLadder | None,
             progress: ProgressSink | None) -> MeasuredQuality:
    """VMAF of each delivered video track (a transcode's; --copy's are the source itself)."""
    if request.copy or not request.vmaf:
        return MeasuredQuality()
    if progress:
        progress("vmaf", 0, 1)
    measured = measure_release(media.path, tracks, build, ladder, track_key(request.encryption))
    if progress:
        progress("vmaf", 1, 1)
    return measured


def _check_request(request: PackageRequest) -> None:
    if request.output.exists() and not request.force:
        raise OutputExistsError(f"{request.output}: already exists (use --force to replace it)")
    if not 1.0 <= request.segment_duration <= 30.0:
        raise InputError("segment duration must be between 1 and 30 seconds")
    unknown = set(request.formats) - set(FORMATS)
    if unknown or not request.formats:
        raise InputError(f"formats must be among {', '.join(FORMATS)}")
    if request.encryption is not None and request.encryption.scheme == AES_128 and set(
        request.formats
    ) != {"hls"}:
        raise InputError("--encrypt aes-128 makes MPEG-TS for HLS only: add --format hls")
    if request.copy and (request.chunks or 1) > 1:
        raise InputError("--copy encodes nothing: --chunks applies to a transcode")
    if request.chunks is not None and request.chunks < 1:
        raise InputError(f"--chunks {request.chunks}: the count must be 1 or more (or auto)")
    if request.codecs is not None:
        if request.copy:
            raise InputError("--codec chooses what a transcode encodes; --copy keeps the "
                             "source's codec: use one or the other")
        codec_names(request.codecs)


def _check_tools(request: PackageRequest, media: MediaInfo, renditions: list[Rendition]) -> None:
    """The ffmpeg build the job runs has every encoder and decoder it needs (exit 3 naming
    the build and what it lacks), checked before anything is written."""
    source = media.video.codec if media.video is not None else None
    if not request.copy:
        codecs = [video_codec(r.codec) for r in renditions if r.kind == "video"]
        check_build(ladder_tool(media, renditions), codecs, source)
    elif request.thumbnails is not None and source is not None:
        check_build(source_decoder_tool(source), [], source)


def copy_renditions(media: MediaInfo, audio: list[TitleTrack]) -> list[Rendition]:
    """--copy keeps the source's encoding: one rendition per stream, if players can take it."""
    renditions = []
    if media.video is not None:
        v = media.video
        if v.codec not in COPY_VIDEO_CODECS:
            raise InputError(
                f"--copy needs H.264, HEVC or AV1 video; {media.path} has {v.codec or 'unknown'}"
            )
        renditions.append(
            Rendition(
                id=f"video_{v.height}p",
                kind="video",
                codec=v.codec,
                bitrate=0,
                width=v.width,
                height=v.height,
                frame_rate=v.frame_rate,
                profile=v.profile.lower(),
            )
        )
    for track in audio:
        a = track.audio
        assert a is not None
        if a.codec not in COPY_AUDIO_CODECS:
            raise InputError(f"--copy needs AAC audio; {track.file} has {a.codec or 'unknown'}")
        renditions.append(track_rendition(track, id=f"{track.id}_aac", codec="aac", bitrate=0,
                                          channels=a.channels, sample_rate=a.sample_rate))
    return renditions


def _ts_renditions(request: PackageRequest, renditions: list[Rendition]) -> list[Rendition]:
    """--encrypt aes-128 muxes one audio track into each MPEG-TS rendition: side files are
    refused; of the source's own languages the default audio is kept, the rest left out with
    a warning (as before localized releases, which packaged the first audio stream only)."""
    if request.encryption is None or request.encryption.scheme != AES_128:
        return renditions
    other = sorted({r.codec for r in renditions if r.kind == "video" and r.codec != "h264"})
    if other:
        # HLS carries HEVC in fMP4 only (Apple's authoring spec) and AV1 has no MPEG-TS form
        # players take.
        raise InputError(f"--encrypt aes-128 makes MPEG-TS, which HLS players take with "
                         f"H.264 only: package {', '.join(other)} as CMAF (clear, cenc or "
                         "cbcs)")
    if request.title.side_files:
        raise InputError("--encrypt aes-128 makes MPEG-TS with one audio language and no "
                         "text: package a localized title as CMAF (clear, cenc or cbcs)")
    videos = [r for r in renditions if r.kind == "video"]
    audio = [r for r in renditions if r.kind == "audio"]
    kept = [*videos, next((r for r in audio if r.default), audio[0])] if audio else videos
    left = [r.id for r in renditions if r not in kept]
    if left:
        log.warning("--encrypt aes-128 (MPEG-TS) carries one audio language and no text: "
                    "leaving out %s", ", ".join(left))
    return kept


def _encode_and_segment(
    request: PackageRequest,
    media: MediaInfo,
    renditions: list[Rendition],
    build: Path,
    work: Path,
    progress: ProgressSink | None,
    texts: dict[str, TextTrack],
    runner: _Runner,
) -> list[CmafTrack]:
    planned = None if request.copy else planned_starts(media, renditions, request)
    sources, extracted, tables = _track_sources(request, media, renditions, work, progress,
                                                planned, runner)
    # Every track is cut at the video's segment starts, so audio segments line up with video
    # segments to within one audio frame. A transcode forced its key frames at the planned
    # starts; a copy keeps the source's key frames, read from the first video's moof boxes (or
    # sample tables) up front. Either way all tracks can then be cut (and encrypted) at once,
    # one process per track or per part of a track, across the cores.
    sources.sort(key=lambda s: s[0].kind != "video")
    plans: list[TrackPlan | None] = []
    cut_times: list[float] = [] if planned is None else planned
    for index, (_, source) in enumerate(sources):
        if isinstance(source, DemuxedSource):
            own = [] if index == 0 and planned is None else cut_times
            plans.append(plan_track(source, own, request.segment_duration, tables[source]))
        else:
            plans.append(None)
        if index == 0 and planned is None and sources[0][0].kind == "video":
            first = plans[0]
            cut_times = (first.cut_times if first is not None
                         else plan_cut_times(source, request.segment_duration))
    effort = [plan.work() if plan is not None else 0.0 for plan in plans]
    # A short source is cut in this process: forking would cost more than it saves.
    cpus = (os.cpu_count() or 1) if sum(effort) >= _FORK_WORK or not all(effort) else 1
    parts = _parts(effort, cpus)
    jobs = []
    for index, ((rendition, source), plan) in enumerate(zip(sources, plans, strict=True)):
        runs = plan.parts(parts[index]) if plan is not None else [range(0)]
        encryption = track_encryption(request.encryption, rendition)
        jobs += [
            _SegmentJob(source, plan, run, rendition, build, request.segment_duration,
                        [] if index == 0 and planned is None else cut_times, encryption,
                        index, part, plan.work(run) if plan is not None else 0.0)
            for part, run in enumerate(runs)
        ]
    # Largest parts first: the workers take them in this order, which keeps the cores busy
    # until the end (longest-processing-time-first). A whole track from ffmpeg's output has
    # no estimate (0) and keeps its place: the sort is stable.
    jobs.sort(key=lambda job: -job.effort)

    def report(done: int, total: int) -> None:
        if progress is not None:
            progress("segment", len(sources) * done / total, len(sources))

    done_parts: list[list[CmafTrack | None]] = [[None] * n for n in parts]
    # Workers in a process group of their own (a terminal's Ctrl-C is ours to handle: it
    # stops them); whichever way the map ends, none outlives it (packager/fork_executor.py).
    for job, part in zip(jobs, ForkExecutor(cpus, initializer=own_process_group)
                         .map(_segment_job, jobs, report), strict=True):
        done_parts[job.index][job.part] = part
    tracks = [join_parts([p for p in track_parts if p is not None]) for track_parts in done_parts]
    for (rendition, source), track in zip(sources, tracks, strict=True):
        if rendition.source is None:  # a dub's length was checked against the video's
            _check_complete(media, track)
        if isinstance(source, Path):
            source.unlink()  # ffmpeg's intermediate file in the work directory
    return tracks + _text_tracks(request, renditions, tracks[0], build, texts, extracted)


def _text_tracks(request: PackageRequest, renditions: list[Rendition], reference: CmafTrack,
                 build: Path, texts: dict[str, TextTrack],
                 extracted: dict[str, Path]) -> list[CmafTrack]:
    """Every text track cut at the first track's (the video's) segment starts, to its end."""
    if not any(r.kind == "text" for r in renditions):
        return []
    from packager.output.text_track import within, write_text_track
    from packager.text.read import read_text_file
    scale = reference.info.timescale
    starts = [0] + [round(s.presentation_start * 1000 / scale) for s in reference.segments[1:]]
    last = reference.segments[-1]
    end = round((last.presentation_start + last.duration) * 1000 / scale)
    out = []
    for rendition in (r for r in renditions if r.kind == "text"):
        origin = rendition.source or extracted[rendition.id]
        text = texts.get(rendition.id) or read_text_file(extracted[rendition.id])
        out.append(write_text_track(rendition, within(text, end, origin), build, starts, end,
                                    webvtt="hls" in request.formats))
    return out


#: Parts per core a demuxed track's work is split into: the workers take parts from one
#: queue as they become free, so the last part to finish is small and the cores finish
#: within a sixteenth of the work of each other; a part's own set-up (a file descriptor, a
#: cipher) is next to nothing.
_PARTS_PER_CPU = 8
#: Estimated seconds of cutting and encrypting (segmenter.work_estimate) below which the
#: tracks are cut in this process: a fork and the results' way back cost more than the
#: second core saves on a source of a few seconds.
_FORK_WORK = 0.05


def _parts(work: list[float], cpus: int) -> list[int]:
    """How many processes cut each track: one for ffmpeg's output (read front to back, no
    estimate: work 0); a demuxed track (its segments planned from the tables, so any run of
    them can be written on its own) in parts of about 1/(_PARTS_PER_CPU x cpus) of the job."""
    if cpus <= 1 or not any(work):
        return [1] * len(work)
    target = sum(work) / (_PARTS_PER_CPU * cpus)
    return [max(1, round(w / target)) if w else 1 for w in work]


def _track_sources(
    request: PackageRequest,
    media: MediaInfo,
    renditions: list[Rendition],
    work: Path,
    progress: ProgressSink | None,
    planned: list[float] | None,
    runner: _Runner,
) -> tuple[list[tuple[Rendition, Path | DemuxedSource]], dict[str, Path],
           dict[DemuxedSource, TrackTables]]:
    """Where each audio and video rendition's samples come from: ffmpeg's fragmented output or,
    with --copy from MP4/MOV files our demuxer takes, the files themselves (no remux pass);
    the WebVTT ffmpeg made of each text stream of the source (by rendition id); and the sample
    tables of each demuxed track, read once (one moov read per file)."""
    if request.copy and request.demux:
        wanted: dict[Path, dict[int, str]] = {}
        demuxed: list[tuple[Rendition, Path | DemuxedSource]] = []
        for r in (r for r in renditions if r.kind != "text"):
            path = r.source or media.path
            index = r.stream if r.kind == "audio" else media.video.index if media.video else -1
            wanted.setdefault(path, {})[index] = "soun" if r.kind == "audio" else "vide"
            demuxed.append((r, DemuxedSource(path, index)))
        moovs = {p: read_moov(p) for p in wanted}
        reasons = [(p, why) for p, streams in wanted.items()
                   if (why := unsupported(p, streams, moovs[p])) is not None]
        if not reasons:
            tables = {source: read_track(source, moovs[source.path])
                      for _, source in demuxed if isinstance(source, DemuxedSource)}
            log.debug("--copy: reading the sample tables of %s (no ffmpeg remux)", media.path)
            command = build_text_command(media, renditions, work)
            if command is not None:
                run_ffmpeg(command[0], media.duration, None)
            if progress:
                progress("transcode", media.duration, media.duration)
            texts = {e.rendition.id: e.path for e in (command[1] if command else [])}
            return demuxed, texts, tables
        log.debug("--copy: remuxing %s with ffmpeg (our demuxer: %s)", *reasons[0])
    encoded = _encode(request, media, renditions, work, progress, planned, runner)
    return ([(e.rendition, e.path) for e in encoded if e.rendition.kind != "text"],
            {e.rendition.id: e.path for e in encoded if e.rendition.kind == "text"}, {})


def planned_starts(
    media: MediaInfo, renditions: list[Rendition], request: PackageRequest
) -> list[float]:
    """The segment plan of a transcode, on the video's frame grid (encoding/segments.py)."""
    video = next((r for r in renditions if r.kind == "video"), None)
    return segment_starts(media.duration, request.segment_duration,
                          video.frame_rate if video is not None else None)


def track_encryption(spec: EncryptionSpec | None, rendition: Rendition) -> EncryptionSpec | None:
    """The spec one track is encrypted with: its own key (keyset.key_for its kind and
    height) and the pssh boxes of the chosen DRM systems for that key. The key set itself
    stays behind (only the track's key goes to the worker process)."""
    if spec is None or spec.keyset is None:
        return spec
    keyset = spec.keyset
    key = keyset.key_for(rendition.kind, rendition.height)
    boxes = drm.track_pssh(keyset.distinct_keys, spec.scheme, spec.systems, key,
                           content_id=spec.widevine_content_id, la_url=spec.la_url)
    return replace(spec, key=key, keyset=None, drm=boxes)


def protection_summary(
    spec: EncryptionSpec | None, tracks: list[CmafTrack]
) -> ProtectionSummary | None:
    """What release.json says about the encryption: scheme, KIDs, systems (never a key)."""
    if spec is None:
        return None
    kids = {t.rendition.id: t.protection.kid_uuid for t in tracks if t.protection is not None}
    return ProtectionSummary(
        scheme=spec.scheme,
        kids=list(dict.fromkeys(kids.values())),
        systems=list(spec.systems),
        rendition_kids=kids,
    )


@dataclass(frozen=True)
class _SegmentJob:
    """One track, or one part of a demuxed one, for a worker (inherited by fork, not pickled:
    a plan holds the track's sample tables)."""

    source: Path | DemuxedSource
    plan: TrackPlan | None  # a demuxed track's; None for a whole track of ffmpeg's output
    segments: range  # of the plan's segments, this part's
    rendition: Rendition
    build: Path
    segment_duration: float
    cut_times: list[float]
    encryption: EncryptionSpec | None
    index: int
    part: int
    effort: float  # estimated seconds (TrackPlan.work); 0 for a whole track of ffmpeg's output


def _segment_job(job: _SegmentJob) -> CmafTrack:
    """One track's (or one part of a track's) segmentation and encryption, in a worker."""
    if job.plan is not None:
        return segment_part(job.plan, job.segments, job.rendition, job.build, job.encryption,
                            job.index, write_init=job.part == 0)
    return segment_track(
        job.source, job.rendition, job.build, job.segment_duration, job.cut_times,
        encryption=job.encryption, track_index=job.index,
    )


def _encode(
    request: PackageRequest,
    media: MediaInfo,
    renditions: list[Rendition],
    work: Path,
    progress: ProgressSink | None,
    planned: list[float] | None,
    runner: _Runner,
) -> list[EncodedTrack]:
    report = (lambda s: progress("transcode", s, media.duration)) if progress else None
    if request.copy:
        args, encoded = build_copy_command(media, renditions, work)
        run_ffmpeg(args, media.duration, report)
        return encoded
    # Only a transcode loads the encode's planning and jobs: --copy's start-up is issue 25's.
    from packager.encoding.encode import encode_title

    starts = planned if planned is not None else planned_starts(media, renditions, request)
    chunks = chunk_count(request.chunks, runner.executor.workers, media.duration, len(starts))
    done = encode_title(
        media, renditions, request.segment_duration, starts, work,
        executor=runner.executor, stage=runner.stage, chunks=chunks,
        thumbnails=_thumbnail_plan(request, media, work), locations=request.locations,
        progress=report)
    runner.chunks, runner.timings = done.chunks, done.timings
    return done.tracks


def _thumbnail_plan(
    request: PackageRequest, media: MediaInfo, work: Path
) -> ThumbnailPlan | None:
    if request.thumbnails is None:
        return None
    return plan_thumbnails(request.thumbnails, media, work)


def _thumbnails(
    request: PackageRequest, media: MediaInfo, work: Path, build: Path
) -> list[ThumbnailTrack]:
    """The sheets, moved into the release: a transcode drew them in its one ffmpeg graph;
    --copy decodes nothing else, so they are drawn here (one seek per thumbnail)."""
    plan = _thumbnail_plan(request, media, work)
    if plan is None:
        return []
    if request.copy:
        draw_thumbnails(media, plan, work)
    return [collect_thumbnails(plan, build)]


def _package_ts(
    request: PackageRequest,
    media: MediaInfo,
    renditions: list[Rendition],
    build: Path,
    work: Path,
    progress: ProgressSink | None,
    runner: _Runner,
) -> Release:
    """--encrypt aes-128: encode as usual, then one muxed MPEG-TS rendition per video rung
    (audio-only when there is no video), whole segments encrypted, HLS playlists."""
    from packager.output import hls_ts
    assert request.encryption is not None
    planned = planned_starts(media, renditions, request)
    encoded = _encode(request, media, renditions, work, progress,
                      None if request.copy else planned, runner)
    videos = [e for e in encoded if e.rendition.kind == "video"]
    audio = next((e for e in encoded if e.rendition.kind == "audio"), None)
    cuts = planned[1:]
    jobs: list[tuple[Rendition, Path | None, Path | None]] = [
        (v.rendition, v.path, audio.path if audio else None) for v in videos
    ]
    if not videos and audio is not None:
        jobs = [(audio.rendition, None, audio.path)]
    outputs: list[hls_ts.TsRendition] = []
    files: list[ReleaseFile] = []
    for done, (rendition, video_path, audio_path) in enumerate(jobs):
        ts = hls_ts.write_ts_rendition(
            rendition, video_path, audio_path, build, cuts, request.encryption, done, work,
        )
        outputs.append(ts)
        files.extend(
            ReleaseFile(f"{ts.directory}/{s.name}", "segment", rendition.id, s.size, s.sha256)
            for s in ts.segments
        )
        playlist = hls_ts.media_playlist(ts)
        (build / playlist.path).write_text(playlist.text)
        files.append(describe_file(build, playlist.path, "media-playlist", rendition.id))
        if progress:
            progress("segment", done + 1, len(jobs))
    duration = max(ts.duration for ts in outputs)
    images = _thumbnails(request, media, work, build)
    trick = write_trick_play(build, [], images, duration, hls=True)
    files += trick.files
    multivariant = hls_ts.multivariant_playlist(outputs, trick.stream_infs)
    (build / multivariant.path).write_text(multivariant.text)
    files.append(describe_file(build, multivariant.path, "multivariant", None))
    grants = None
    if request.rights is not None:
        from packager.output.grants import write_ts_grant_manifests
        written = write_ts_grant_manifests(build, request.rights, outputs, trick, images,
                                           audio.rendition.language if audio else None)
        files, grants = files + written.files, written.grants
    if request.steering is not None:
        from packager.output.steering import steer_files
        files = steer_files(build, files, request.steering)
    return finish_release(
        build,
        source=media.path.name,
        duration=duration,
        segment_duration=request.segment_duration,
        formats=["hls"],
        renditions=[
            RenditionSummary(
                id=ts.rendition.id, kind=ts.rendition.kind, codec=",".join(ts.codecs),
                bandwidth=ts.peak_bandwidth, average_bandwidth=ts.average_bandwidth,
                width=ts.width, height=ts.height,
                frame_rate=str(ts.rendition.frame_rate) if ts.width else "",
                channels=ts.rendition.channels if not ts.width else 0,
                sample_rate=ts.rendition.sample_rate if not ts.width else 0,
                segments=len(ts.segments), duration=round(ts.duration, 6),
            )
            for ts in outputs
        ],
        files=files,
        protection=ProtectionSummary(
            scheme=AES_128,
            kids=[request.encryption.key.kid_uuid],
            systems=[],
            rendition_kids={ts.rendition.id: request.encryption.key.kid_uuid for ts in outputs},
        ),
        thumbnails=trick.thumbnails,
        rights=grants,
    )


def _check_complete(media: MediaInfo, track: CmafTrack) -> None:
    """A source that decodes to much less than its declared duration is truncated."""
    shortfall = media.duration - track.duration_seconds
    if shortfall > max(1.0, 0.05 * media.duration):
        raise InputError(
            f"{media.path}: {track.rendition.kind} decodes to {track.duration_seconds:.2f} s "
            f"of the {media.duration:.2f} s the container declares; the file is truncated"
        )


def _write_manifests(
    request: PackageRequest,
    media: MediaInfo,
    tracks: list[CmafTrack],
    build: Path,
    images: list[ThumbnailTrack],
    quality: MeasuredQuality,
) -> Release:
    duration = max(t.duration_seconds for t in tracks)
    trick = write_trick_play(build, tracks, images, duration, hls="hls" in request.formats)
    files: list[ReleaseFile] = []
    for track in tracks:
        rid = track.rendition.id
        # Media bytes were hashed by the segmenter while in memory; only manifests are read back.
        files.append(ReleaseFile(f"{track.directory}/{INIT_NAME}", "init", rid,
                                 track.init_size, track.init_sha256))
        files.extend(
            ReleaseFile(f"{track.directory}/{s.name}", "segment", rid, s.size, s.sha256)
            for s in (*track.segments, *track.webvtt)
        )
    files += trick.files
    if "hls" in request.formats:
        for track in tracks:
            playlist = hls.media_playlist(track)
            (build / playlist.path).write_text(playlist.text)
            files.append(
                describe_file(build, playlist.path, "media-playlist", track.rendition.id)
            )
        multivariant = hls.multivariant_playlist(tracks, trick.stream_infs)
        (build / multivariant.path).write_text(multivariant.text)
        files.append(describe_file(build, multivariant.path, "multivariant", None))
    if "dash" in request.formats:
        (build / dash.MPD_NAME).write_text(dash.mpd(tracks, request.segment_duration, images))
        files.append(describe_file(build, dash.MPD_NAME, "mpd", None))
    grants = None
    if request.rights is not None:
        from packager.output.grants import write_grant_manifests
        written = write_grant_manifests(build, request.rights, tracks, trick, images,
                                        request.formats, request.segment_duration)
        files, grants = files + written.files, written.grants
    if request.steering is not None:
        from packager.output.steering import steer_files
        files = steer_files(build, files, request.steering)
    return finish_release(
        build, source=media.path.name, duration=max(t.duration_seconds for t in tracks),
        segment_duration=request.segment_duration, formats=list(request.formats),
        renditions=[replace(_summary(t), vmaf=quality.scores.get(t.rendition.id),
                            vmaf_target=quality.targets.get(t.rendition.id)) for t in tracks],
        files=files,
        protection=protection_summary(request.encryption, tracks),
        iframes=trick.iframes,
        thumbnails=trick.thumbnails,
        rights=grants,
        quality=quality.summary,
    )


def _summary(track: CmafTrack) -> RenditionSummary:
    rates = measure(track)
    rate = track.rendition.frame_rate
    return RenditionSummary(
        id=track.rendition.id,
        kind=track.rendition.kind,
        codec=track.info.codec,
        bandwidth=rates.peak,
        average_bandwidth=rates.average,
        width=track.info.width,
        height=track.info.height,
        frame_rate=str(rate) if rate != Fraction(0) else "",
        channels=track.info.channels,
        sample_rate=track.info.sample_rate,
        segments=len(track.segments),
        duration=round(track.duration_seconds, 6),
        language=track.rendition.language,
        role=track.rendition.role,
        flags=[flag for flag, on in (("default", track.rendition.default),
                                     ("forced", track.rendition.forced)) if on],
        name=track.rendition.name,
    )


def _move_into_place(build: Path, output: Path, force: bool) -> None:
    """Rename the finished tree into place; an old release is swapped out, then removed."""
    if output.exists():
        if not force:
            raise OutputExistsError(f"{output}: appeared while packaging; not replacing it")
        old = Path(tempfile.mkdtemp(prefix=f".{output.name}.old-", dir=output.parent))
        old.rmdir()
        output.rename(old)
        build.rename(output)
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()
        return
    build.rename(output)
