"""Cutting a fragmented MP4 into a CMAF track: init.mp4 plus seg_NNNNN.m4s on shared boundaries."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from packager.cenc import EncryptionSpec, TrackEncryptor, TrackProtection
from packager.errors import BitstreamError
from packager.isobmff import (
    Fragment,
    TrackInfo,
    media_segment,
    parse_fragment,
    parse_track_info,
    read_exact,
    read_top_level,
    trex_default_duration,
)
from packager.ladder import Rendition

INIT_NAME = "init.mp4"
SEGMENT_PATTERN = "seg_{:05d}.m4s"


@dataclass(frozen=True)
class Segment:
    """One media segment as written: where it sits on the timeline, measured from its boxes."""

    number: int  # 1-based, as in the file name and DASH $Number$
    name: str
    start: int  # decode time of the first sample, in track timescale ticks
    presentation_start: int  # earliest presentation time, in ticks
    duration: int  # sum of sample durations, in ticks
    size: int  # bytes on disk, styp + moof + mdat
    sha256: str  # of those bytes, taken while they are in memory (release.json needs it)
    starts_with_sync: bool


@dataclass(frozen=True)
class CmafTrack:
    """A segmented rendition on disk: what the manifest writers and release.json describe."""

    rendition: Rendition
    directory: str  # relative to the release root
    info: TrackInfo
    init_size: int
    init_sha256: str
    segments: list[Segment]
    protection: TrackProtection | None = None

    @property
    def duration_seconds(self) -> float:
        return sum(s.duration for s in self.segments) / self.info.timescale

    def segment_seconds(self) -> list[float]:
        return [s.duration / self.info.timescale for s in self.segments]


def segment_track(
    source: Path,
    rendition: Rendition,
    release_root: Path,
    segment_duration: float,
    cut_times: Sequence[float] = (),
    encryption: EncryptionSpec | None = None,
    track_index: int = 0,
) -> CmafTrack:
    """Write init + segments for one rendition and measure every segment.

    A segment starts at the first sync fragment at or after a boundary (less half a sample,
    so that an AAC frame straddling the boundary goes to the side it mostly belongs to).
    Boundaries are `cut_times` (the video's real segment starts, so audio follows video)
    and then multiples of `segment_duration` past the last one.

    With `encryption`, each segment's samples are encrypted as it is written (one segment in
    memory at a time) and the init segment carries the protection scheme and pssh.
    """
    directory = release_root / rendition.id
    directory.mkdir(parents=True, exist_ok=False)
    with source.open("rb") as f:
        header, fragments = _read_fragments(f)
        info = parse_track_info(header.moov)
        encryptor = (
            TrackEncryptor(encryption, header.moov, track_index) if encryption else None
        )
        init = (
            encryptor.init_segment(header.ftyp, header.moov)
            if encryptor
            else header.ftyp + header.moov
        )
        (directory / INIT_NAME).write_bytes(init)
        boundaries = _boundaries(cut_times, segment_duration, info.timescale)
        groups = _group(fragments_of(fragments, header.moov), boundaries)
        segments = [
            _write(directory, number, info, group, encryptor)
            for number, group in enumerate(_fold_short_tail(groups, info, segment_duration), 1)
        ]
    if not segments:
        raise BitstreamError(f"{rendition.id}: encoder produced no samples")
    return CmafTrack(
        rendition=rendition,
        directory=rendition.id,
        info=info,
        init_size=len(init),
        init_sha256=hashlib.sha256(init).hexdigest(),
        segments=segments,
        protection=encryptor.protection if encryptor else None,
    )


def plan_cut_times(source: Path, segment_duration: float) -> list[float]:
    """The segment starts (seconds) `segment_track` will choose for this track with no cut
    times given, from the moof boxes alone (mdat bodies are skipped, not read).

    Knowing the video's cuts up front lets every other rendition be segmented at the same
    time as the video, in parallel, instead of after it.
    """
    with source.open("rb") as f:
        boxes = read_top_level(f)
        moov = b""
        for kind, size, head in boxes:
            if kind == b"moov":
                moov = head + read_exact(f, size - len(head))
                break
            f.seek(size - len(head), 1)
        if not moov:
            raise BitstreamError("no moov box: not a fragmented MP4 written by ffmpeg")
        info = parse_track_info(moov)
        trex_duration = trex_default_duration(moov)

        def timings() -> Iterator[Fragment]:
            for kind, size, head in boxes:
                if kind == b"moof":
                    moof = head + read_exact(f, size - len(head))
                    fragment = parse_fragment(moof, b"", trex_duration, with_data=False)
                    if fragment.samples:
                        yield fragment
                else:
                    f.seek(size - len(head), 1)

        boundaries = _boundaries((), segment_duration, info.timescale)
        groups = _fold_short_tail(_group(timings(), boundaries), info, segment_duration)
        return [
            Fragment(g[0].base_decode_time, [s for x in g for s in x.samples], b"")
            .earliest_presentation_time / info.timescale
            for g in groups
        ]


@dataclass(frozen=True)
class _Header:
    ftyp: bytes
    moov: bytes


def _read_fragments(f: BinaryIO) -> tuple[_Header, Iterator[tuple[bytes, bytes]]]:
    """Read ftyp + moov eagerly; yield (moof, mdat payload) pairs lazily, one at a time."""
    boxes = read_top_level(f)
    ftyp = moov = b""
    for kind, size, head in boxes:
        body = read_exact(f, size - len(head))
        if kind == b"ftyp":
            ftyp = head + body
        elif kind == b"moov":
            moov = head + body
            break
    if not moov:
        raise BitstreamError("no moov box: not a fragmented MP4 written by ffmpeg")

    def pairs() -> Iterator[tuple[bytes, bytes]]:
        moof = b""
        for kind, size, head in boxes:
            body = read_exact(f, size - len(head))
            if kind == b"moof":
                moof = head + body
            elif kind == b"mdat" and moof:
                if len(head) != 8:
                    raise BitstreamError("64-bit mdat inside a fragment is not supported")
                yield moof, body
                moof = b""

    return _Header(ftyp, moov), pairs()


def fragments_of(pairs: Iterator[tuple[bytes, bytes]], moov: bytes) -> Iterator[Fragment]:
    trex_duration = trex_default_duration(moov)
    for moof, payload in pairs:
        fragment = parse_fragment(moof, payload, trex_duration)
        if fragment.samples:
            yield fragment


def _group(fragments: Iterator[Fragment], boundaries: Iterator[int]) -> Iterator[list[Fragment]]:
    """Fragments grouped into segments: a group closes at the first sync fragment that starts
    at or after the next boundary (less half a sample)."""
    next_cut = next(boundaries)
    pending: list[Fragment] = []
    for fragment in fragments:
        start = fragment.earliest_presentation_time
        half = fragment.samples[0].duration // 2
        if pending and fragment.samples[0].is_sync and start >= next_cut - half:
            yield pending
            pending = []
        while start >= next_cut - half:
            next_cut = next(boundaries)
        pending.append(fragment)
    if pending:
        yield pending


def _fold_short_tail(
    groups: Iterator[list[Fragment]], info: TrackInfo, segment_duration: float
) -> Iterator[list[Fragment]]:
    """A last group under half a segment joins the one before it.

    Audio runs a frame or two past the video (encoder priming and padding); without this the
    release would end on a 40 ms segment that players fetch for nothing. Two groups are held,
    so memory stays at two segments whatever the input length.
    """
    limit = segment_duration * info.timescale / 2
    before: list[Fragment] | None = None
    last: list[Fragment] | None = None
    for group in groups:
        if before is not None:
            yield before
        before, last = last, group
    if before is not None and last is not None and sum(f.duration for f in last) < limit:
        yield before + last
        return
    yield from (g for g in (before, last) if g is not None)


def _boundaries(
    cut_times: Sequence[float], segment_duration: float, timescale: int
) -> Iterator[int]:
    last = 0.0
    for t in sorted(cut_times):
        if t > 0:
            last = t
            yield round(t * timescale)
    k = 1
    while True:
        yield round((last + k * segment_duration) * timescale)
        k += 1


def _write(
    directory: Path,
    number: int,
    info: TrackInfo,
    fragments: list[Fragment],
    encryptor: TrackEncryptor | None = None,
) -> Segment:
    merged = Fragment(
        base_decode_time=fragments[0].base_decode_time,
        samples=[s for frag in fragments for s in frag.samples],
        data=b"".join(frag.data for frag in fragments),
    )
    if encryptor is not None:
        protected, aux = encryptor.encrypt(merged)
        payload = media_segment(number, info.track_id, protected, aux)
    else:
        payload = media_segment(number, info.track_id, merged)
    name = SEGMENT_PATTERN.format(number)
    (directory / name).write_bytes(payload)
    return Segment(
        number=number,
        name=name,
        start=merged.base_decode_time,
        presentation_start=merged.earliest_presentation_time,
        duration=merged.duration,
        size=len(payload),
        sha256=hashlib.sha256(payload).hexdigest(),
        starts_with_sync=merged.samples[0].is_sync,
    )
