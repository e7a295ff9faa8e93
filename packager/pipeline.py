"""The `package` job: probe, ladder, transcode, segment, manifests, release.json; built aside."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from packager import dash, hls
from packager.bitrate import measure
from packager.errors import InputError, OutputExistsError
from packager.ladder import LadderSpec, Rendition, load_ladder, plan_renditions
from packager.media import MediaInfo, probe
from packager.release import (
    Release,
    ReleaseFile,
    RenditionSummary,
    describe_file,
    write_release,
)
from packager.segmenter import INIT_NAME, CmafTrack, segment_track
from packager.transcode import build_copy_command, build_ladder_command, run_ffmpeg

log = logging.getLogger(__name__)

FORMATS = ("hls", "dash")
COPY_VIDEO_CODECS = {"h264": "h264", "hevc": "hevc"}
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


@dataclass(frozen=True)
class PackageResult:
    output: Path
    media: MediaInfo
    release: Release
    seconds: float


#: (stage, done, total): "transcode" in seconds of media, "segment" in tracks.
ProgressSink = Callable[[str, float, float], None]


def package(request: PackageRequest, progress: ProgressSink | None = None) -> PackageResult:
    """Package a source into a release directory; on any failure nothing is left behind."""
    started = time.perf_counter()
    _check_request(request)
    media = probe(request.source)
    spec = load_ladder(request.ladder)
    renditions = copy_renditions(media) if request.copy else plan_renditions(spec, media)
    output = request.output.absolute()
    output.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{output.name}.build-", dir=output.parent))
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}.work-", dir=output.parent))
    build.chmod(0o755)  # mkdtemp makes it 0700; a release is meant to be served
    try:
        tracks = _encode_and_segment(request, media, spec, renditions, build, work, progress)
        release = _write_manifests(request, media, tracks, build)
        _move_into_place(build, output, request.force)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return PackageResult(output, media, release, time.perf_counter() - started)


def _check_request(request: PackageRequest) -> None:
    if request.output.exists() and not request.force:
        raise OutputExistsError(f"{request.output}: already exists (use --force to replace it)")
    if not 1.0 <= request.segment_duration <= 30.0:
        raise InputError("segment duration must be between 1 and 30 seconds")
    unknown = set(request.formats) - set(FORMATS)
    if unknown or not request.formats:
        raise InputError(f"formats must be among {', '.join(FORMATS)}")


def copy_renditions(media: MediaInfo) -> list[Rendition]:
    """--copy keeps the source's encoding: one rendition per stream, if players can take it."""
    renditions = []
    if media.video is not None:
        v = media.video
        if v.codec not in COPY_VIDEO_CODECS:
            raise InputError(
                f"--copy needs H.264 or HEVC video; {media.path} has {v.codec or 'unknown'}"
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
    if media.audio is not None:
        a = media.audio
        if a.codec not in COPY_AUDIO_CODECS:
            raise InputError(f"--copy needs AAC audio; {media.path} has {a.codec or 'unknown'}")
        renditions.append(
            Rendition(
                id="audio_aac",
                kind="audio",
                codec="aac",
                bitrate=0,
                channels=a.channels,
                sample_rate=a.sample_rate,
                language=a.language,
            )
        )
    return renditions


def _encode_and_segment(
    request: PackageRequest,
    media: MediaInfo,
    spec: LadderSpec,
    renditions: list[Rendition],
    build: Path,
    work: Path,
    progress: ProgressSink | None,
) -> list[CmafTrack]:
    if request.copy:
        args, encoded = build_copy_command(media, renditions, work)
    else:
        args, encoded = build_ladder_command(
            media, renditions, spec, request.segment_duration, work
        )
    report = (lambda s: progress("transcode", s, media.duration)) if progress else None
    run_ffmpeg(args, media.duration, report)
    # Video first: its real segment starts become the audio's cut points, so audio segments
    # line up with video segments to within one audio frame.
    encoded.sort(key=lambda e: e.rendition.kind != "video")
    tracks: list[CmafTrack] = []
    cut_times: list[float] = []
    for done, item in enumerate(encoded):
        track = segment_track(item.path, item.rendition, build, request.segment_duration, cut_times)
        if track.info.handler == "vide" and not cut_times:
            cut_times = [s.presentation_start / track.info.timescale for s in track.segments]
        _check_complete(media, track)
        tracks.append(track)
        item.path.unlink()
        if progress:
            progress("segment", done + 1, len(encoded))
    return tracks


def _check_complete(media: MediaInfo, track: CmafTrack) -> None:
    """A source that decodes to much less than its declared duration is truncated."""
    shortfall = media.duration - track.duration_seconds
    if shortfall > max(1.0, 0.05 * media.duration):
        raise InputError(
            f"{media.path}: {track.rendition.kind} decodes to {track.duration_seconds:.2f} s "
            f"of the {media.duration:.2f} s the container declares; the file is truncated"
        )


def _write_manifests(
    request: PackageRequest, media: MediaInfo, tracks: list[CmafTrack], build: Path
) -> Release:
    files: list[ReleaseFile] = []
    for track in tracks:
        rid = track.rendition.id
        files.append(describe_file(build, f"{track.directory}/{INIT_NAME}", "init", rid))
        files.extend(
            describe_file(build, f"{track.directory}/{s.name}", "segment", rid)
            for s in track.segments
        )
    if "hls" in request.formats:
        for track in tracks:
            playlist = hls.media_playlist(track)
            (build / playlist.path).write_text(playlist.text)
            files.append(
                describe_file(build, playlist.path, "media-playlist", track.rendition.id)
            )
        multivariant = hls.multivariant_playlist(tracks)
        (build / multivariant.path).write_text(multivariant.text)
        files.append(describe_file(build, multivariant.path, "multivariant", None))
    if "dash" in request.formats:
        (build / dash.MPD_NAME).write_text(dash.mpd(tracks, request.segment_duration))
        files.append(describe_file(build, dash.MPD_NAME, "mpd", None))
    release = Release(
        schema=1,
        source=media.path.name,
        duration=round(max(t.duration_seconds for t in tracks), 6),
        segment_duration=request.segment_duration,
        formats=[f for f in FORMATS if f in request.formats],
        renditions=[_summary(t) for t in tracks],
        files=files,
    )
    write_release(build, release)
    return release


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
