"""Cutting a fragmented MP4 into a CMAF track: init.mp4 plus seg_NNNNN.m4s on shared boundaries."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from packager.drm.protection import TrackProtection
from packager.encoding.ladder import Rendition
from packager.encryption.cenc import TrackEncryptor
from packager.encryption.spec import EncryptionSpec
from packager.errors import BitstreamError
from packager.mp4.demux import DemuxedSource, SampleReader, TrackTables, read_track
from packager.mp4.isobmff import (
    STYP,
    Fragment,
    TrackInfo,
    media_segment_boxes,
    media_segment_header,
    parse_fragment,
    parse_track_info,
    read_exact,
    read_top_level,
    trex_default_duration,
)

INIT_NAME = "init.mp4"
SEGMENT_PATTERN = "seg_{:05d}.m4s"


@dataclass(frozen=True)
class SyncRange:
    """The bytes of a segment that decode its leading sync sample on its own: the moof that
    describes it, the mdat header and the sample itself (the trailing samples are left out).

    This is what an HLS I-frame playlist's EXT-X-BYTERANGE points at: Apple's HLS authoring
    spec (trick play, 6.10) requires an fMP4 I-frame segment to include the moof associated
    with the I-frame, which allows only the first sync sample of a fragment; Shaka Packager
    writes the same range (offset of the moof after styp, length up to the end of the sample).
    """

    offset: int  # of the moof in the segment file (after styp)
    length: int  # moof + mdat header + the sync sample
    presentation_time: int  # of the sync sample, in track timescale ticks


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
    #: The leading sync sample's byte range (video segments that start with one), else None.
    sync_range: SyncRange | None = None


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
    #: A text track's HLS form: the same segments as WebVTT documents (RFC 8216 §3.5); the
    #: fMP4 `segments` (wvtt) are DASH's. Empty for audio and video.
    webvtt: tuple[Segment, ...] = ()

    @property
    def duration_seconds(self) -> float:
        return sum(s.duration for s in self.segments) / self.info.timescale

    def segment_seconds(self) -> list[float]:
        return [s.duration / self.info.timescale for s in self.segments]


def segment_track(
    source: Path | DemuxedSource,
    rendition: Rendition,
    release_root: Path,
    segment_duration: float,
    cut_times: Sequence[float] = (),
    encryption: EncryptionSpec | None = None,
    track_index: int = 0,
    part: tuple[int, int] = (0, 1),
) -> CmafTrack:
    """Write init + segments for one rendition and measure every segment.

    `source` is a fragmented MP4 (ffmpeg's output) or one track of a progressive source read
    by our demuxer (`package --copy`), whose sample bytes are read one segment at a time.

    A segment starts at the first sync fragment at or after a boundary (less half a sample,
    so that an AAC frame straddling the boundary goes to the side it mostly belongs to).
    Boundaries are `cut_times` (the video's real segment starts, so audio follows video)
    and then multiples of `segment_duration` past the last one.

    With `encryption`, each segment's samples are encrypted as it is written (one segment in
    memory at a time) and the init segment carries the protection scheme and pssh.

    `part` (index, count), for a demuxed source only: write the index-th of `count` runs of
    consecutive segments of about equal work (`work_estimate`), so that one track can be cut
    and encrypted by several processes; part 0 writes the init segment. The returned track
    lists that part's segments; `join_parts` puts the parts back together.
    """
    if isinstance(source, DemuxedSource):
        plan = plan_track(source, cut_times, segment_duration)
        return segment_part(plan, plan.parts(part[1])[part[0]], rendition, release_root,
                            encryption, track_index, write_init=part[0] == 0)
    directory = release_root / rendition.id
    directory.mkdir(parents=True, exist_ok=False)
    job = _TrackJob(rendition, directory, segment_duration, cut_times, encryption, track_index)
    if part != (0, 1):
        raise BitstreamError("only a demuxed source can be segmented in parts")
    with source.open("rb") as f:
        header, pairs = _read_fragments(f)
        info = parse_track_info(header.moov)
        encryptor = _encryptor(job, header.moov, 0)
        init = _write_init(job, header.ftyp, header.moov, encryptor)
        groups = _fold_short_tail(
            _group(fragments_of(pairs, header.moov),
                   _boundaries(cut_times, segment_duration, info.timescale)),
            info, segment_duration,
        )
        segments = [
            _write(directory, number, info, group, encryptor)
            for number, group in enumerate(groups, 1)
        ]
    if not segments:
        raise BitstreamError(f"{rendition.id}: encoder produced no samples")
    return _track(job, info, init, segments, encryptor)


def join_parts(parts: Sequence[CmafTrack]) -> CmafTrack:
    """One track from its parts, in part order (init and protection come from part 0)."""
    return replace(parts[0], segments=[s for p in parts for s in p.segments])


def work_estimate(samples: int, size: int) -> float:
    """Seconds of segmenting and encrypting work for so many samples and bytes: a per-sample
    cost (slice headers, subsample maps, AES calls, boxes) and a per-byte one (AES, reads,
    hashing, writes), fitted to segment_track's CPU time on the bench input (bench/encrypt.py,
    10 min of 720p, cbcs and cenc alike: H.264 0.74 s for 15,000 samples and 240 MB, AAC
    0.2 s for 28,000 samples and 10 MB). Its ratios split tracks into parts of equal work;
    the pipeline cuts a source estimated under _FORK_WORK seconds in one process."""
    return samples * 6e-6 + size * 2.7e-9


@dataclass(frozen=True)
class _TrackJob:
    rendition: Rendition
    directory: Path
    segment_duration: float
    cut_times: Sequence[float]
    encryption: EncryptionSpec | None
    track_index: int


def _encryptor(job: _TrackJob, moov: bytes, first_sample: int) -> TrackEncryptor | None:
    """The track's encryptor, as if it had already encrypted `first_sample` samples: cenc's
    per-sample IV is the spec's first IV plus the sample number (TrackEncryptor), so a part
    starts its counter where the part before it ends, and the IVs equal a single pass's."""
    spec = job.encryption
    if spec is None:
        return None
    if first_sample and spec.scheme == "cenc":
        if spec.iv is None:
            raise BitstreamError("a cenc track split in parts needs the release's first IV")
        start = (int.from_bytes(spec.iv[:8], "big") + first_sample) % (1 << 64)
        spec = replace(spec, iv=start.to_bytes(8, "big") + spec.iv[8:])
    return TrackEncryptor(spec, moov, job.track_index)


def _write_init(
    job: _TrackJob, ftyp: bytes, moov: bytes, encryptor: TrackEncryptor | None
) -> bytes:
    init = encryptor.init_segment(ftyp, moov) if encryptor else ftyp + moov
    (job.directory / INIT_NAME).write_bytes(init)
    return init


def _track(
    job: _TrackJob,
    info: TrackInfo,
    init: bytes,
    segments: list[Segment],
    encryptor: TrackEncryptor | None,
) -> CmafTrack:
    return CmafTrack(
        rendition=job.rendition,
        directory=job.rendition.id,
        info=info,
        init_size=len(init),
        init_sha256=hashlib.sha256(init).hexdigest(),
        segments=segments,
        protection=encryptor.protection if encryptor else None,
    )


@dataclass(frozen=True)
class _Span:
    """One planned segment of a demuxed track: its samples and where it starts."""

    first: int  # sample number (0-based)
    count: int
    base_decode_time: int
    presentation_start: int
    duration: int


@dataclass(frozen=True)
class TrackPlan:
    """A demuxed track's segments, planned from its sample tables before any is written.

    The pipeline plans every track once, in its own process, and the processes that cut the
    parts of a track inherit the plan (packager/fork_executor.py): no process reads the
    tables again.
    """

    source: DemuxedSource
    tables: TrackTables
    info: TrackInfo
    spans: list[_Span]

    @property
    def cut_times(self) -> list[float]:
        """The segment starts in seconds (what the other tracks are cut at)."""
        return [s.presentation_start / self.info.timescale for s in self.spans]

    def work(self, segments: range | None = None) -> float:
        """Estimated seconds to cut and encrypt these segments (all by default)."""
        spans = self.spans if segments is None else self.spans[segments.start : segments.stop]
        sizes = self.tables.sizes
        return sum(work_estimate(s.count, sum(sizes[s.first : s.first + s.count]))
                   for s in spans)

    def parts(self, count: int) -> list[range]:
        """`count` runs of consecutive segments (indexes into spans) of about equal work."""
        return _split(self.spans, self.tables, count)


def plan_track(source: DemuxedSource, cut_times: Sequence[float], segment_duration: float,
               tables: TrackTables | None = None) -> TrackPlan:
    """The segments of a demuxed track cut at `cut_times` and then every `segment_duration`
    (the rules of segment_track); `tables` when they were read already."""
    tables = read_track(source) if tables is None else tables
    info = parse_track_info(tables.moov)
    return TrackPlan(source, tables, info, _plan(tables, info, cut_times, segment_duration))


def segment_part(
    plan: TrackPlan,
    segments: range,
    rendition: Rendition,
    release_root: Path,
    encryption: EncryptionSpec | None = None,
    track_index: int = 0,
    write_init: bool = True,
) -> CmafTrack:
    """Write some consecutive segments of a planned track (and its init segment, if asked):
    one part of the track, which `join_parts` puts together with the others."""
    if not plan.spans:
        raise BitstreamError(f"{rendition.id}: the source track has no samples")
    directory = release_root / rendition.id
    directory.mkdir(parents=True, exist_ok=True)
    job = _TrackJob(rendition, directory, 0.0, (), encryption, track_index)
    tables, info, spans = plan.tables, plan.info, plan.spans
    encryptor = _encryptor(job, tables.moov, spans[segments.start].first if segments else 0)
    init = _write_init(job, tables.ftyp, tables.moov, encryptor) if write_init else b""
    written = []
    with SampleReader(plan.source.path, tables) as reader:
        for index in segments:
            span = spans[index]
            data = reader.read_into(span.first, span.count)
            aux = (encryptor.encrypt_samples(data, tables.sizes[span.first : span.first
                                                                  + span.count])
                   if encryptor is not None else None)
            entries = tables.trun_entries(span.first, span.count)
            header = media_segment_header(index + 1, info.track_id, span.base_decode_time,
                                          span.count, entries, len(data), aux)
            written.append(_emit(job.directory, index + 1, info, header, data,
                                 span.base_decode_time, span.presentation_start,
                                 span.duration, tables.sync[span.first],
                                 tables.sizes[span.first], span.base_decode_time
                                 + tables.composition_offsets[span.first]))
    return _track(job, info, init, written, encryptor)


def _plan(
    tables: TrackTables, info: TrackInfo, cut_times: Sequence[float], segment_duration: float
) -> list[_Span]:
    """The segments `_group` and `_fold_short_tail` make of the fragments ffmpeg's remux would
    have written, computed from the sample tables in one pass over integers (the same rule:
    tests/packager/test_demux.py compares both paths segment by segment)."""
    durations, offsets, sync = tables.durations, tables.composition_offsets, tables.sync
    boundaries = _boundaries(cut_times, segment_duration, info.timescale)
    next_cut = next(boundaries)
    groups: list[list[int]] = []  # [first, count, base decode time, presentation, duration]
    pending: list[int] | None = None
    starts = tables.fragment_starts()
    dts = 0
    for a, b in zip(starts, [*starts[1:], len(durations)], strict=True):
        base = dts
        earliest = dts + offsets[a]
        for i in range(a, b):
            earliest = min(earliest, dts + offsets[i])
            dts += durations[i]
        half = durations[a] // 2
        if pending is not None and sync[a] and earliest >= next_cut - half:
            groups.append(pending)
            pending = None
        while earliest >= next_cut - half:
            next_cut = next(boundaries)
        if pending is None:
            pending = [a, b - a, base, earliest, dts - base]
        else:
            pending[1] += b - a
            pending[3] = min(pending[3], earliest)
            pending[4] += dts - base
    if pending is not None:
        groups.append(pending)
    if len(groups) >= 2 and groups[-1][4] < segment_duration * info.timescale / 2:
        last = groups.pop()
        groups[-1][1] += last[1]
        groups[-1][3] = min(groups[-1][3], last[3])
        groups[-1][4] += last[4]
    return [_Span(*g) for g in groups]


def _split(spans: list[_Span], tables: TrackTables, parts: int) -> list[range]:
    """`parts` runs of consecutive spans (segment indexes) of about equal work."""
    costs = [
        work_estimate(s.count, sum(tables.sizes[s.first : s.first + s.count])) for s in spans
    ]
    total = sum(costs)
    runs: list[range] = []
    start, done = 0, 0.0
    for index, cost in enumerate(costs):
        done += cost
        if len(runs) < parts - 1 and done >= total * (len(runs) + 1) / parts:
            runs.append(range(start, index + 1))
            start = index + 1
    runs.append(range(start, len(spans)))
    runs += [range(len(spans), len(spans))] * (parts - len(runs))
    return runs


def plan_cut_times(source: Path | DemuxedSource, segment_duration: float) -> list[float]:
    """The segment starts (seconds) `segment_track` will choose for this track with no cut
    times given, from the moof boxes alone (mdat bodies are skipped, not read), or from the
    sample tables of a demuxed source.

    Knowing the video's cuts up front lets every other rendition be segmented at the same
    time as the video, in parallel, instead of after it.
    """
    if isinstance(source, DemuxedSource):
        return plan_track(source, (), segment_duration).cut_times
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
    data: bytes | None = None,
) -> Segment:
    """One segment from its fragments; `data`, when given, is the samples' bytes (the
    fragments then carry timing only)."""
    merged = Fragment(
        base_decode_time=fragments[0].base_decode_time,
        samples=[s for frag in fragments for s in frag.samples],
        data=b"".join(frag.data for frag in fragments) if data is None else data,
    )
    if encryptor is not None:
        protected, aux = encryptor.encrypt(merged)
        boxes, body = media_segment_boxes(number, info.track_id, protected, aux)
    else:
        boxes, body = media_segment_boxes(number, info.track_id, merged)
    first = merged.samples[0]
    return _emit(directory, number, info, boxes, body, merged.base_decode_time,
                 merged.earliest_presentation_time, merged.duration, first.is_sync, first.size,
                 merged.base_decode_time + first.composition_offset)


def _emit(
    directory: Path,
    number: int,
    info: TrackInfo,
    boxes: bytes,
    body: bytes | memoryview,
    start: int,
    presentation_start: int,
    duration: int,
    starts_with_sync: bool,
    first_size: int,
    first_presentation: int,
) -> Segment:
    """Write one segment (its boxes, then its sample data) and describe it; the first
    sample's size and presentation time place an I-frame playlist's byte range."""
    sync_range = None
    if info.handler == "vide" and starts_with_sync:
        # Samples keep their sizes when encrypted (cenc/cbcs encrypt in place).
        sync_range = SyncRange(len(STYP), len(boxes) - len(STYP) + first_size,
                               first_presentation)
    name = SEGMENT_PATTERN.format(number)
    with (directory / name).open("wb") as f:
        f.write(boxes)
        f.write(body)
    digest = hashlib.sha256(boxes)
    digest.update(body)
    return Segment(
        number=number,
        name=name,
        start=start,
        presentation_start=presentation_start,
        duration=duration,
        size=len(boxes) + len(body),
        sha256=digest.hexdigest(),
        starts_with_sync=starts_with_sync,
        sync_range=sync_range,
    )
