"""Reading one track of a progressive MP4/MOV from its sample tables: a CMAF header and timings.

`package --copy` used to remux the source with ffmpeg into one fragmented MP4 per track and
then cut those into segments: a whole extra pass over the file, and audio written one frame
per fragment. Here the moov's sample tables (ISO/IEC 14496-12 §8.6, §8.7) are read instead,
and the segmenter reads each segment's sample bytes straight from the source.

What comes out must equal what the ffmpeg remux produced (same samples, same timeline), so
the timing rules below reproduce ffmpeg's (8.1) `-c copy` to fragmented MP4 with our movflags
(tests/packager/test_demux.py compares the two releases segment by segment):
  - the edit list's media_time M (one edit covering the media, maybe after one empty edit E)
    shifts the presentation: a sample's decode time is its rescaled (dts - M + E) and its
    composition offset its rescaled (pts - M + E) less that, both counted from the first
    sample's (negative_cts_offsets: B-frame video starts presenting at 0 with no edit list;
    AAC priming is kept, at 0);
  - video is rescaled to the 90 kHz timescale, rounding to nearest (av_rescale_q);
  - a sample's duration is the next one's decode time less its own; the last sample keeps
    its own stts delta, rescaled;
  - an edit starting over a second into audio drops the samples before its last second
    (libavformat's mov_fix_index keeps that much decoder run-in).
The CMAF header keeps the source's sample entry (a QuickTime v1 sound description becomes the
ISO one). Anything else (fragmented input, several sample entries or edits, a late edit over
several video GOPs, other codecs, other containers) is left to the ffmpeg remux:
`unsupported()` says why, and the pipeline logs it at debug level.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from packager.encoding.transcode import VIDEO_TIMESCALE
from packager.errors import BitstreamError, InputError
from packager.mp4.isobmff import (
    Box,
    box,
    find_box,
    full_box,
    iter_boxes,
    parse_track_info,
    read_exact,
    read_top_level,
    sample_entry_config,
    trun_entries,
)
from packager.mp4.sampletable import (
    STBL,
    child,
    first_kept,
    first_pts,
    movie_timescale,
    need,
    read_tables,
    remux_timing,
    single_edit,
    trak_boxes,
)

#: Sample flags ffmpeg writes in trun (ISO/IEC 14496-12 §8.8.3.1): sample_depends_on = 2 for a
#: sync sample; depends_on = 1 and sample_is_non_sync_sample for the others.
SYNC_FLAGS = 0x02000000
NON_SYNC_FLAGS = 0x01010000

#: Sample entries whose ffmpeg remux keeps the entry as it is (hev1 would be renamed hvc1,
#: avc3 and others are left to ffmpeg), and the decoder configuration box each must carry.
_ENTRIES = {"vide": {b"avc1", b"hvc1", b"av01"}, "soun": {b"mp4a"}}
_CONFIGS = {"avc1": b"avcC", "hvc1": b"hvcC", "av01": b"av1C", "mp4a": b"esds"}

_FTYP = box(b"ftyp", b"iso6", struct.pack(">I", 0x200), b"iso6", b"mp41")


@dataclass(frozen=True)
class DemuxedSource:
    """One track of a progressive ISO-BMFF source, named for a worker process to read."""

    path: Path
    track_index: int  # position among the moov's trak boxes (ffprobe's stream index)


@dataclass(frozen=True)
class TrackTables:
    """A track as the segmenter needs it: CMAF header, per-sample timing as ffmpeg's remux
    writes it (decode order), and where each sample's bytes are in the source."""

    ftyp: bytes
    moov: bytes  # ftyp + moov is a CMAF header: original sample entry, empty tables, mvex
    durations: list[int]
    sizes: list[int]
    sync: list[bool]
    composition_offsets: list[int]
    offsets: list[int]  # file offset of each sample

    def trun_entries(self, first: int, count: int) -> bytes:
        """The trun entries of the samples first..first+count (isobmff.trun_entries): with
        composition offsets when one of them has one. Both forms are made once for the whole
        track; a segment's are a slice."""
        end = first + count
        if any(self.composition_offsets[first:end]):
            return self._entries_with_offsets[16 * first : 16 * end]
        return self._entries_without_offsets[12 * first : 12 * end]

    @cached_property
    def _flags(self) -> list[int]:
        return [SYNC_FLAGS if k else NON_SYNC_FLAGS for k in self.sync]

    @cached_property
    def _entries_with_offsets(self) -> bytes:
        return trun_entries(self.durations, self.sizes, self._flags, self.composition_offsets)

    @cached_property
    def _entries_without_offsets(self) -> bytes:
        return trun_entries(self.durations, self.sizes, self._flags, None)

    def fragment_starts(self) -> list[int]:
        """First sample of each fragment ffmpeg's remux would have written: one per GOP (at
        each sync sample) for video, one per frame when every sample is sync (audio)."""
        return [i for i, is_sync in enumerate(self.sync) if is_sync or i == 0]


class SampleReader:
    """Reads the bytes of consecutive samples, one read per contiguous run (os.pread: no mmap,
    so the source's pages are not counted in our resident set)."""

    def __init__(self, path: Path, tables: TrackTables) -> None:
        self.sample_sizes, self._offsets = tables.sizes, tables.offsets
        self._fd = os.open(path, os.O_RDONLY)
        self._buffer = bytearray()
        self._gap = bytearray(_GAP)

    def __enter__(self) -> SampleReader:
        return self

    def __exit__(self, *_: object) -> None:
        os.close(self._fd)

    def read_into(self, first: int, count: int) -> memoryview:
        """The samples' bytes, read straight into this reader's buffer (no copies; the buffer
        is reused, so the view is good until the next call).

        Runs of samples that lie back to back are read whole; runs a few bytes apart (an
        interleaved file puts an AAC frame between two video frames) are read in one call
        too, the bytes between them landing in a scratch buffer: one system call per segment
        instead of one per frame."""
        sizes, offsets = self.sample_sizes, self._offsets
        end = first + count
        total = sum(sizes[first:end])
        if len(self._buffer) < total:
            self._buffer = bytearray(total)
        view = memoryview(self._buffer)[:total]
        gap = memoryview(self._gap)
        group: list[memoryview] = []
        group_start = group_end = 0
        i, at = first, 0
        while i < end:
            start = offsets[i]
            stop = start + sizes[i]
            i += 1
            while i < end and offsets[i] == stop:
                stop += sizes[i]
                i += 1
            between = start - group_end
            if not group or not 0 <= between <= len(gap) or len(group) >= _IOV_MAX - 1:
                self._read(group, group_start, group_end)
                group, group_start = [], start
            elif between:
                group.append(gap[:between])
            group.append(view[at : at + stop - start])
            at += stop - start
            group_end = stop
        self._read(group, group_start, group_end)
        return view

    def _read(self, buffers: list[memoryview], start: int, stop: int) -> None:
        if buffers and os.preadv(self._fd, buffers, start) != stop - start:
            raise InputError("source is corrupt or truncated: sample data ends past the end of "
                             "the file")


#: Bytes between two runs of samples that are read (into a scratch buffer) rather than
#: skipped with a system call of their own.
_GAP = 4096
#: Buffers per preadv (Linux's IOV_MAX).
_IOV_MAX = 1024


def read_moov(path: Path) -> bytes:
    """The moov box of a file (read past mdat without reading it); b"" if there is none, or if
    the file is fragmented (moof boxes, or mvex in the moov)."""
    with path.open("rb") as f:
        moov = b""
        for kind, size, head in read_top_level(f):
            if kind == b"moov":
                moov = head + read_exact(f, size - len(head))
            elif kind == b"moof":
                return b""
            else:
                f.seek(size - len(head), 1)
        if moov and find_box(moov, [b"moov", b"mvex"]) is not None:
            return b""
        return moov


def unsupported(path: Path, tracks: dict[int, str], moov: bytes | None = None) -> str | None:
    """Why our demuxer cannot take these tracks (stream index: expected handler, "vide" or
    "soun") of this file (None: it can); `moov` when it was read already (read_moov)."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
        if len(head) < 8 or head[4:8] not in (b"ftyp", b"moov", b"free", b"mdat", b"wide"):
            return "not an ISO-BMFF file"
        moov = read_moov(path) if moov is None else moov
        if not moov:
            return "no moov box, or a fragmented file"
        traks = trak_boxes(moov)
        for index, handler in tracks.items():
            if index >= len(traks):
                return f"stream {index} is not a trak of the moov"
            hdlr = need(moov, traks[index], [b"mdia", b"hdlr"])
            if moov[hdlr.body + 8 : hdlr.body + 12] != handler.encode():
                return f"stream {index} is not the {handler} trak"
            reason = _track_unsupported(moov, traks[index])
            if reason:
                return f"stream {index}: {reason}"
    except (BitstreamError, struct.error, OSError, IndexError) as e:
        return f"unreadable structure ({e})"
    return None


def read_track(source: DemuxedSource, moov: bytes | None = None) -> TrackTables:
    """The CMAF header and sample timings of one track (its tables are read whole: a few
    bytes per sample, about 1 MB for a two-hour film); `moov` when it was read already."""
    moov = read_moov(source.path) if moov is None else moov
    trak = trak_boxes(moov)[source.track_index]
    tables = read_tables(moov, trak)
    handler = tables.handler
    timescale = VIDEO_TIMESCALE if handler == "vide" else tables.timescale
    first = first_kept(tables)
    durations, composition = remux_timing(tables, timescale, first)
    sizes, offsets = tables.sizes[first:], tables.offsets[first:]
    if max(o + n for o, n in zip(offsets, sizes, strict=True)) > source.path.stat().st_size:
        raise InputError(
            f"{source.path}: source is corrupt or truncated: sample data ends past the end "
            "of the file"
        )
    sync_numbers = tables.sync
    sync = (
        [True] * len(sizes)
        if sync_numbers is None
        else [n in sync_numbers for n in range(first + 1, len(tables.sizes) + 1)]
    )
    return TrackTables(
        _FTYP, _cmaf_moov(moov, trak, timescale), durations, sizes, sync, composition, offsets
    )


def _track_unsupported(moov: bytes, trak: Box) -> str | None:
    hdlr = need(moov, trak, [b"mdia", b"hdlr"])
    handler = moov[hdlr.body + 8 : hdlr.body + 12].decode("latin-1")
    if handler not in _ENTRIES:
        return f"handler {handler!r}"
    stsd = need(moov, trak, [*STBL, b"stsd"])
    (count,) = struct.unpack_from(">I", moov, stsd.body + 4)
    entries = list(iter_boxes(moov, stsd.body + 8, stsd.end))
    if count != 1 or len(entries) != 1:
        return f"{count} sample entries"
    if entries[0].type not in _ENTRIES[handler]:
        return f"sample entry {entries[0].type.decode('latin-1')!r}"
    mdhd = need(moov, trak, [b"mdia", b"mdhd"])
    version = moov[mdhd.body]
    (timescale,) = struct.unpack_from(">I", moov, mdhd.body + (20 if version == 1 else 12))
    if handler == "soun":
        (entry_version,) = struct.unpack_from(">H", moov, entries[0].body + 8)
        if entry_version not in (0, 1):
            return f"QuickTime sound description version {entry_version}"
        (rate,) = struct.unpack_from(">I", moov, entries[0].body + 24)
        if rate >> 16 != timescale:
            return f"audio timescale {timescale} is not the sample rate {rate >> 16}"
    if any(child(moov, trak, [*STBL, kind]) is None for kind in (b"stts", b"stsc")):
        return "missing stts or stsc"
    stsc = need(moov, trak, [*STBL, b"stsc"])
    (n,) = struct.unpack_from(">I", moov, stsc.body + 4)
    if any(
        struct.unpack_from(">I", moov, stsc.body + 8 + 12 * i + 8)[0] != 1 for i in range(n)
    ):
        return "chunks refer to another sample entry"
    try:
        header = _cmaf_moov(moov, trak, VIDEO_TIMESCALE if handler == "vide" else timescale)
        info = parse_track_info(header)
        sample_entry_config(header, _CONFIGS[info.sample_entry])
    except BitstreamError as e:
        return f"sample entry: {e}"
    tables = read_tables(moov, trak)
    if not tables.sizes:
        return "no samples"
    elst = child(moov, trak, [b"edts", b"elst"])
    if elst is not None:
        edit = single_edit(moov, elst)
        if isinstance(edit, str):
            return edit
        _, duration, media_time = edit
        total = sum(tables.deltas)
        movie_scale = movie_timescale(moov)
        # An edit ending before the media does (encoder padding given as an edit, as Apple
        # writes it) makes ffmpeg drop or trim samples; that is left to ffmpeg.
        if duration and duration * timescale < (total - media_time) * movie_scale - (
            max(tables.deltas) * movie_scale
        ):
            return "the edit ends before the media"
    if first_kept(tables) and len(set(tables.deltas[:-1])) > 1:
        return "audio before a late edit with varying sample durations"
    if handler == "vide" and VIDEO_TIMESCALE % timescale and tables.media_time > first_pts(tables):
        # Frames before the edit (a cut made with -ss and -c copy): ffmpeg's rescaling to
        # 90 kHz then rounds from a start we do not reproduce; exact timescales are fine.
        return "an edit starting after the first frame, in a timescale 90 kHz is no multiple of"
    if handler == "vide" and tables.media_time > 0 and tables.sync is not None:
        # A later GOP starting at or before the edit would make ffmpeg drop the GOPs before it.
        dts = 0
        for i, delta in enumerate(tables.deltas):
            pts = dts + (tables.composition[i] if tables.composition is not None else 0)
            if i > 0 and i + 1 in tables.sync and min(dts, pts) <= tables.media_time:
                return "the edit starts after a later sync sample"
            if dts > tables.media_time:
                break
            dts += delta
    return None


# --- the CMAF header -------------------------------------------------------------------------


def _cmaf_moov(moov: bytes, trak: Box, timescale: int) -> bytes:
    """moov for a fragmented track: the source's sample entry, handler and media header
    boxes, empty sample tables, and mvex/trex (ISO/IEC 23000-19 §7.3.1); track ID 1."""
    tkhd = need(moov, trak, [b"tkhd"])
    tail = moov[tkhd.end - 60 : tkhd.end]  # layer .. height: the same in both versions
    new_tkhd = full_box(b"tkhd", 0, 3, struct.pack(">IIIII", 0, 0, 1, 0, 0), tail)
    mdhd = need(moov, trak, [b"mdia", b"mdhd"])
    language = moov[mdhd.end - 4 : mdhd.end]
    new_mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIII", 0, 0, timescale, 0), language)
    hdlr = need(moov, trak, [b"mdia", b"hdlr"])
    minf = need(moov, trak, [b"mdia", b"minf"])
    header = next(
        (b for b in iter_boxes(moov, minf.body, minf.end) if b.type in (b"vmhd", b"smhd")),
        None,
    )
    if header is None:
        raise BitstreamError("missing vmhd/smhd box")
    dinf = child(moov, minf, [b"dinf"])
    dinf_bytes = (
        moov[dinf.offset : dinf.end]
        if dinf is not None
        else box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))
    )
    stsd = need(moov, trak, [*STBL, b"stsd"])
    entry = next(iter_boxes(moov, stsd.body + 8, stsd.end))
    stbl = box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), _iso_sample_entry(moov, entry)),
        full_box(b"stts", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsc", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        full_box(b"stco", 0, 0, struct.pack(">I", 0)),
    )
    minf_box = box(b"minf", moov[header.offset : header.end], dinf_bytes, stbl)
    mdia = box(b"mdia", new_mdhd, moov[hdlr.offset : hdlr.end], minf_box)
    identity = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = full_box(
        b"mvhd", 0, 0, struct.pack(">IIII", 0, 0, 1000, 0), struct.pack(">IH", 0x10000, 0x100),
        bytes(10), identity, bytes(24), struct.pack(">I", 2),
    )
    trex = full_box(b"trex", 0, 0, struct.pack(">IIIII", 1, 1, 0, 0, 0))
    return box(b"moov", mvhd, box(b"trak", new_tkhd, mdia), box(b"mvex", trex))


def _iso_sample_entry(moov: bytes, entry: Box) -> bytes:
    """The sample entry as an MP4 one: as it is, except a QuickTime version 1 sound
    description (a MOV's AAC: 16 more bytes, esds inside a 'wave' box), which becomes the ISO
    AudioSampleEntry (ISO/IEC 14496-12 §12.2.3: version 0, 16-bit samples) with that esds,
    as ffmpeg's MP4 muxer writes it."""
    if entry.type != b"mp4a" or struct.unpack_from(">H", moov, entry.body + 8)[0] != 1:
        return moov[entry.offset : entry.end]
    esds = find_box(moov, [b"wave", b"esds"], entry.body + 44, entry.end)
    if esds is None:
        raise BitstreamError("QuickTime sound description without wave/esds")
    channels = moov[entry.body + 16 : entry.body + 18]
    rate = moov[entry.body + 24 : entry.body + 28]
    body = moov[entry.body : entry.body + 8] + bytes(8) + channels + struct.pack(">HI", 16, 0)
    return box(b"mp4a", body, rate, moov[esds.offset : esds.end])
