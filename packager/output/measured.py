"""What release.json says about picture quality: each video rendition's VMAF, measured on the
delivered track (packager/quality/delivered.py), and what a per-title ladder was chosen from."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from packager.encoding.placement import rendition_id
from packager.encryption.spec import EncryptionSpec
from packager.output.release import (
    PerTitleSummary,
    QualitySummary,
    RatePointSummary,
    RungSummary,
    VmafSummary,
)
from packager.output.segmenter import INIT_NAME, CmafTrack
from packager.quality.hull import RatePoint

if TYPE_CHECKING:
    from packager.encoding.per_title import PerTitleLadder
    from packager.quality.vmaf import Viewing

#: How per-title rungs are encoded (bench/quality.py measured it against VBR at the hull's
#: bitrate; BENCHMARKS.md).
PER_TITLE_RATE_CONTROL = "capped-crf"

#: (rendition id) -> the key its track is encrypted with, or None (clear).
KeyFor = Callable[[CmafTrack], bytes | None]


@dataclass(frozen=True)
class MeasuredQuality:
    """What the measurement found: each video rendition's VMAF and per-title target by id,
    and the release's quality summary (None: nothing measured)."""

    scores: dict[str, VmafSummary] = field(default_factory=dict)
    targets: dict[str, float] = field(default_factory=dict)
    summary: QualitySummary | None = None

    def scored(self, tracks: list[CmafTrack]) -> list[CmafTrack]:
        """The tracks, each measured rendition carrying its VMAF as its score (HLS SCORE)."""
        return [replace(t, rendition=replace(t.rendition, score=self.scores[t.rendition.id].mean))
                if t.rendition.id in self.scores else t for t in tracks]


def measure_release(source: Path, tracks: Sequence[CmafTrack], build: Path,
                    ladder: PerTitleLadder | None, key_for: KeyFor) -> MeasuredQuality:
    """Every video track of a release being built, scored at its viewing size."""
    viewing = viewing_for(tracks, ladder)
    if viewing is None:
        return MeasuredQuality()
    return MeasuredQuality(measure_tracks(source, tracks, build, viewing, key_for),
                           targets_of(ladder), quality_summary(viewing, ladder))


def viewing_for(tracks: Sequence[CmafTrack], ladder: PerTitleLadder | None) -> Viewing | None:
    """The size every rendition is scored at: a per-title analysis' (its tallest candidate),
    else the tallest video rendition's; None without video."""
    # The measuring side loads only when something is measured: --copy measures nothing,
    # and its start-up is issue 25's (tests/test_startup.py).
    from packager.quality.vmaf import Viewing  # noqa: PLC0415
    if ladder is not None:
        return ladder.viewing
    videos = [t for t in tracks if t.info.handler == "vide"]
    if not videos:
        return None
    top = max(videos, key=lambda t: (t.info.height, t.info.width))
    rate = top.rendition.frame_rate or Fraction(25)
    return Viewing(top.info.width, top.info.height, rate)


def measure_tracks(source: Path, tracks: Sequence[CmafTrack], build: Path, viewing: Viewing,
                   key_for: KeyFor) -> dict[str, VmafSummary]:
    """VMAF of every video track as written in the release tree, by rendition id."""
    from packager.quality.delivered import DeliveredTrack, measure_delivered  # noqa: PLC0415
    delivered = [
        DeliveredTrack(t.rendition.id,
                       (build / t.directory / INIT_NAME,
                        *(build / t.directory / s.name for s in t.segments)),
                       key_for(t) if t.protection is not None else None)
        for t in tracks if t.info.handler == "vide"
    ]
    return {rid: VmafSummary(round(s.mean, 4), round(s.p5, 4), s.model, s.frames)
            for rid, s in measure_delivered(source, delivered, viewing).items()}


def track_key(spec: EncryptionSpec | None) -> KeyFor:
    """The key each track was encrypted with (its class's key with per-class keys)."""
    def key_for(track: CmafTrack) -> bytes | None:
        if spec is None:
            return None
        key = (spec.keyset.key_for(track.rendition.kind, track.rendition.height)
               if spec.keyset is not None else spec.key)
        return key.key
    return key_for


def quality_summary(viewing: Viewing, ladder: PerTitleLadder | None) -> QualitySummary:
    from packager.quality.vmaf import VMAF_MODEL  # noqa: PLC0415
    return QualitySummary(VMAF_MODEL, f"{viewing.width}x{viewing.height}",
                          per_title_summary(ladder) if ladder is not None else None)


def per_title_summary(ladder: PerTitleLadder) -> PerTitleSummary:
    spec = ladder.spec
    return PerTitleSummary(
        codecs=list(spec.codecs), targets=list(spec.targets),
        floor_bitrate=spec.floor_bitrate, rate_control=PER_TITLE_RATE_CONTROL,
        excerpts=[[e.start, e.duration] for e in ladder.excerpts],
        analysis_cpu_seconds=ladder.cpu_seconds, analysis_seconds=ladder.seconds,
        points=[_point(p) for p in ladder.points], hull=[_point(p) for p in ladder.hull],
        rungs=[RungSummary(rendition_id(r), r.codec, r.width, r.height, r.crf, r.bitrate,
                           round(r.vmaf, 4), r.role, r.target) for r in ladder.rungs],
    )


def _point(p: RatePoint) -> RatePointSummary:
    return RatePointSummary(p.codec, p.width, p.height, p.quality, p.bitrate, p.vmaf, p.vmaf_p5)


def targets_of(ladder: PerTitleLadder | None) -> dict[str, float]:
    """Rendition id -> the VMAF target it was placed for."""
    if ladder is None:
        return {}
    return {rendition_id(r): r.target for r in ladder.rungs if r.target is not None}
