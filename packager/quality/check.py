"""The `quality` job: every video rendition of a packaged release measured against its source
(VMAF on the delivered track, as packaging measured it), and the gate on it: a rendition under
--min-vmaf, or under the VMAF target it was built for, fails the release (exit 1)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from packager.encoding.media import probe
from packager.errors import InputError
from packager.keys.keystore import Keystore
from packager.keys.model import parse_kid
from packager.output.release import Release, RenditionSummary, read_release
from packager.quality.delivered import DeliveredTrack, measure_delivered, track_packets
from packager.quality.encode import Encode, video_packets
from packager.quality.vmaf import VMAF_MODEL, Viewing, VmafScore

#: A source matches a release when its video lasts as long as the rendition, to a frame or
#: two (a transcode's rate conversion may round the last one) and 0.2 % of a long title.
FRAME_TOLERANCE = 2
SHARE_TOLERANCE = 0.002


@dataclass(frozen=True)
class RenditionQuality:
    rendition: str
    codec: str
    width: int
    height: int
    bitrate: int  # the rendition's average bitrate (release.json, measured on its segments)
    score: VmafScore
    target: float | None  # the VMAF the per-title rung was placed for
    recorded: float | None  # the VMAF release.json records for it

    @property
    def bits_per_point(self) -> float:
        """Bits per second spent per VMAF point: what the quality costs."""
        return self.bitrate / self.score.mean if self.score.mean > 0 else float("inf")


@dataclass(frozen=True)
class QualityReport:
    release: Path
    source: Path
    viewing: Viewing
    model: str
    renditions: list[RenditionQuality]
    min_vmaf: float | None
    failures: list[str]


def check_quality(release_dir: Path, source: Path, min_vmaf: float | None = None,
                  keystore: Path | None = None) -> QualityReport:
    """Measure and gate; a source that is not the release's (duration, frame count) and a
    release with no measurable video are bad input."""
    if min_vmaf is not None and not 0 <= min_vmaf <= 100:
        raise InputError(f"--min-vmaf {min_vmaf:g} is outside 0-100")
    release = read_release(release_dir)
    videos = [r for r in release.renditions if r.kind == "video"]
    if not videos:
        raise InputError(f"{release_dir}: the release has no video rendition to measure")
    media = probe(source)
    if media.video is None:
        raise InputError(f"{source}: has no video: it is not this release's source")
    tracks = [_track(release_dir, release, r, keystore) for r in videos]
    _check_source(source, release, videos, tracks)
    viewing = _viewing(release, videos)
    scores = measure_delivered(source, tracks, viewing)
    measured = [
        RenditionQuality(r.id, r.codec, r.width, r.height, r.average_bandwidth, scores[r.id],
                         r.vmaf_target, r.vmaf.mean if r.vmaf is not None else None)
        for r in videos
    ]
    failures = []
    for m in measured:
        if min_vmaf is not None and m.score.mean < min_vmaf:
            failures.append(f"{m.rendition}: VMAF {m.score.mean:.2f} is under --min-vmaf "
                            f"{min_vmaf:g}")
        if m.target is not None and m.score.mean < m.target:
            failures.append(f"{m.rendition}: VMAF {m.score.mean:.2f} is under its target "
                            f"{m.target:g}")
    return QualityReport(release_dir, source, viewing, VMAF_MODEL, measured, min_vmaf, failures)


def _track(release_dir: Path, release: Release, rendition: RenditionSummary,
           keystore: Path | None) -> DeliveredTrack:
    """The rendition's init and media segments as the release lists them, and its key."""
    files = [f for f in release.files if f.rendition == rendition.id]
    inits = [f.path for f in files if f.role == "init"]
    segments = sorted(f.path for f in files if f.role == "segment" and f.path.endswith(".m4s"))
    if len(inits) != 1 or not segments:
        raise InputError(f"{release_dir}: {rendition.id} is not a CMAF track (an MPEG-TS "
                         "rendition of --encrypt aes-128 cannot be measured)")
    key = None
    protection = release.protection
    if protection is not None and rendition.id in protection.rendition_kids:
        kid = parse_kid(protection.rendition_kids[rendition.id])
        key = Keystore(keystore).get(kid).key.key  # in memory only, handed to ffmpeg by pipe
    return DeliveredTrack(rendition.id, tuple(release_dir / p for p in [inits[0], *segments]),
                          key)


def _check_source(source: Path, release: Release, videos: list[RenditionSummary],
                  tracks: list[DeliveredTrack]) -> None:
    """The source lasts as long as the release and has its frames, else it is another one."""
    theirs = video_packets(Encode((source,)))
    ours = track_packets(tracks[0])
    rate = _rate(videos[0])
    expected = round(theirs.duration * rate) if theirs.duration > 0 else theirs.frames
    slack = max(FRAME_TOLERANCE, round(SHARE_TOLERANCE * ours.frames))
    if abs(expected - ours.frames) > slack or abs(theirs.duration - ours.duration) > max(
            FRAME_TOLERANCE / float(rate), SHARE_TOLERANCE * ours.duration):
        raise InputError(
            f"{source} does not match the release ({release.source}): it has "
            f"{theirs.frames} frames over {theirs.duration:.2f} s, {videos[0].id} has "
            f"{ours.frames} over {ours.duration:.2f} s")


def _viewing(release: Release, videos: list[RenditionSummary]) -> Viewing:
    """The size the release was scored at (release.json), else its tallest rendition's."""
    top = max(videos, key=lambda r: (r.height, r.width))
    if release.quality is not None:
        width, _, height = release.quality.viewing.partition("x")
        return Viewing(int(width), int(height), _rate(top))
    return Viewing(top.width, top.height, _rate(top))


def _rate(rendition: RenditionSummary) -> Fraction:
    try:
        return Fraction(rendition.frame_rate)
    except (ValueError, ZeroDivisionError):
        raise InputError(f"{rendition.id}: frame rate {rendition.frame_rate!r} in release.json "
                         "is not a number") from None
