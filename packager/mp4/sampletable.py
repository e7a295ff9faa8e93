"""The sample tables of one trak of a progressive MP4/MOV (ISO/IEC 14496-12 §8.6, §8.7), and the
timeline ffmpeg's `-c copy` remux writes from them (see packager/mp4/demux.py for the rules)."""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass

from packager.errors import BitstreamError
from packager.mp4.isobmff import Box, find_box, iter_boxes


@dataclass(frozen=True)
class Tables:
    handler: str
    timescale: int
    deltas: array[int]  # stts, expanded: one decode duration per sample
    composition: array[int] | None  # ctts, expanded (signed)
    sync: set[int] | None  # stss sample numbers (1-based); None: every sample is sync
    sizes: list[int]
    offsets: list[int]
    media_time: int  # of the one edit, in media timescale; 0 without an edit list
    empty: int  # duration of a leading empty edit, in media timescale


def trak_boxes(moov: bytes) -> list[Box]:
    top = next(iter_boxes(moov))
    return [b for b in iter_boxes(moov, top.body, top.end) if b.type == b"trak"]


def child(buf: bytes, parent: Box, path: list[bytes]) -> Box | None:
    return find_box(buf, path, parent.body, parent.end)


def need(buf: bytes, parent: Box, path: list[bytes]) -> Box:
    found = child(buf, parent, path)
    if found is None:
        raise BitstreamError(f"missing {path[-1].decode()} box")
    return found


STBL = [b"mdia", b"minf", b"stbl"]




def first_pts(tables: Tables) -> int:
    """The earliest composition time of the first GOP (where an edit normally starts)."""
    dts, first = 0, None
    for i, delta in enumerate(tables.deltas):
        if i > 0 and (tables.sync is None or i + 1 in tables.sync):
            break
        pts = dts + (tables.composition[i] if tables.composition is not None else 0)
        first = pts if first is None else min(first, pts)
        dts += delta
    return first or 0


def movie_timescale(moov: bytes) -> int:
    mvhd = find_box(moov, [b"moov", b"mvhd"])
    if mvhd is None:
        raise BitstreamError("missing mvhd box")
    version = moov[mvhd.body]
    (timescale,) = struct.unpack_from(">I", moov, mvhd.body + (20 if version == 1 else 12))
    return int(timescale)


def single_edit(moov: bytes, elst: Box) -> tuple[int, int, int] | str:
    """(empty_duration, segment_duration, media_time) of an edit list made of one edit, maybe
    after one empty edit (a delayed start, as ffmpeg's concat writes); durations in the movie
    timescale (§8.6.6). Anything else: why not."""
    version = moov[elst.body]
    (count,) = struct.unpack_from(">I", moov, elst.body + 4)
    fmt = ">QqI" if version == 1 else ">IiI"
    step = struct.calcsize(fmt)
    edits = [struct.unpack_from(fmt, moov, elst.body + 8 + step * i) for i in range(count)]
    empty = 0
    if len(edits) == 2 and edits[0][1] == -1:
        empty = edits[0][0]
        edits = edits[1:]
    if len(edits) != 1:
        return f"{count} edits"
    duration, media_time, rate = edits[0]
    if media_time < 0 or rate != 0x00010000:
        return "an empty or rate-changed edit"
    return empty, duration, media_time


def read_tables(moov: bytes, trak: Box) -> Tables:
    hdlr = need(moov, trak, [b"mdia", b"hdlr"])
    handler = moov[hdlr.body + 8 : hdlr.body + 12].decode("latin-1")
    mdhd = need(moov, trak, [b"mdia", b"mdhd"])
    version = moov[mdhd.body]
    (timescale,) = struct.unpack_from(">I", moov, mdhd.body + (20 if version == 1 else 12))
    stbl = need(moov, trak, STBL)

    def table(kind: bytes) -> Box | None:
        return find_box(moov, [kind], stbl.body, stbl.end)

    sizes = sample_sizes(moov, table(b"stsz"), table(b"stz2"))
    deltas = _run_lengths(moov, _must(table(b"stts"), "stts"), signed=False)
    ctts = table(b"ctts")
    composition = _run_lengths(moov, ctts, signed=True) if ctts is not None else None
    stss = table(b"stss")
    sync = None
    if stss is not None:
        (n,) = struct.unpack_from(">I", moov, stss.body + 4)
        sync = set(_words(moov, stss.body + 8, n, "I"))
    chunk_offsets = _chunk_offsets(moov, table(b"stco"), table(b"co64"))
    offsets = _sample_offsets(moov, _must(table(b"stsc"), "stsc"), chunk_offsets, sizes)
    if len(deltas) != len(sizes) or (composition is not None and len(composition) < len(sizes)):
        raise BitstreamError("sample tables disagree on the number of samples")
    media_time = empty = 0
    elst = child(moov, trak, [b"edts", b"elst"])
    edit = single_edit(moov, elst) if elst is not None else None
    if isinstance(edit, tuple):
        empty_duration, _, media_time = edit
        # libavformat (mov_read_elst/mov_fix_index): the empty edit delays the track by its
        # duration in the media timescale, rounded to the nearest.
        empty = _rescale(empty_duration, movie_timescale(moov), timescale)
    return Tables(
        handler, timescale, deltas, composition, sync, sizes, offsets, media_time, empty
    )


def _must(found: Box | None, name: str) -> Box:
    if found is None:
        raise BitstreamError(f"missing {name} box")
    return found


def _words(buf: bytes, offset: int, count: int, code: str) -> array[int]:
    values = array(code)
    values.frombytes(buf[offset : offset + count * values.itemsize])
    if len(values) != count:
        raise BitstreamError("sample table is shorter than its entry count")
    if struct.pack("=H", 1) != struct.pack(">H", 1):
        values.byteswap()
    return values


def _run_lengths(buf: bytes, table: Box, signed: bool) -> array[int]:
    """stts or ctts (§8.6.1.2, §8.6.1.3) expanded to one value per sample. ctts values are
    read as signed in both versions, as ffmpeg does."""
    (n,) = struct.unpack_from(">I", buf, table.body + 4)
    pairs = _words(buf, table.body + 8, 2 * n, "i" if signed else "I")
    out = array("q")
    for i in range(0, len(pairs), 2):
        count = pairs[i] & 0xFFFFFFFF
        out.extend([pairs[i + 1]] * count)
    return out


def sample_sizes(buf: bytes, stsz: Box | None, stz2: Box | None) -> list[int]:
    if stsz is not None:
        size, count = struct.unpack_from(">II", buf, stsz.body + 4)
        if size:
            return [size] * count
        return list(_words(buf, stsz.body + 12, count, "I"))
    if stz2 is None:
        raise BitstreamError("missing stsz box")
    field, count = buf[stz2.body + 7], struct.unpack_from(">I", buf, stz2.body + 8)[0]
    pos = stz2.body + 12
    if field == 16:
        return list(_words(buf, pos, count, "H"))
    if field == 8:
        return list(buf[pos : pos + count])
    if field == 4:
        nibbles = [n for b in buf[pos : pos + (count + 1) // 2] for n in (b >> 4, b & 0xF)]
        return nibbles[:count]
    raise BitstreamError(f"stz2 field size {field}")


def _chunk_offsets(buf: bytes, stco: Box | None, co64: Box | None) -> list[int]:
    if stco is not None:
        (n,) = struct.unpack_from(">I", buf, stco.body + 4)
        return list(_words(buf, stco.body + 8, n, "I"))
    if co64 is None:
        raise BitstreamError("missing stco box")
    (n,) = struct.unpack_from(">I", buf, co64.body + 4)
    return list(_words(buf, co64.body + 8, n, "Q"))


def _sample_offsets(
    buf: bytes, stsc: Box, chunk_offsets: list[int], sizes: list[int]
) -> list[int]:
    """File offset of every sample, from sample-to-chunk runs (§8.7.4) and chunk offsets."""
    (n,) = struct.unpack_from(">I", buf, stsc.body + 4)
    runs = _words(buf, stsc.body + 8, 3 * n, "I")
    offsets: list[int] = []
    sample = 0
    for r in range(n):
        first_chunk, per_chunk = runs[3 * r], runs[3 * r + 1]
        last_chunk = runs[3 * (r + 1)] - 1 if r + 1 < n else len(chunk_offsets)
        for chunk in range(first_chunk - 1, min(last_chunk, len(chunk_offsets))):
            pos = chunk_offsets[chunk]
            for size in sizes[sample : sample + per_chunk]:
                offsets.append(pos)
                pos += size
            sample += per_chunk
            if sample >= len(sizes):
                return offsets[: len(sizes)]
    if len(offsets) != len(sizes):
        raise BitstreamError("chunks hold fewer samples than stsz lists")
    return offsets


def _rescale(value: int, source: int, target: int) -> int:
    """av_rescale_q with AV_ROUND_NEAR_INF: to the nearest, halves away from zero."""
    if source == target:
        return value
    if value < 0:
        return -((-value * target + source // 2) // source)
    return (value * target + source // 2) // source


def remux_timing(tables: Tables, timescale: int, first: int) -> tuple[list[int], list[int]]:
    """Durations and composition offsets of the samples from `first` on, as ffmpeg's remux
    writes them (module docstring)."""
    source, shift = tables.timescale, tables.media_time - tables.empty
    composition = tables.composition
    decode: list[int] = []
    present: list[int] = []
    dts = 0
    for i, delta in enumerate(tables.deltas):
        if i >= first:
            pts = dts + (composition[i] if composition is not None else 0)
            decode.append(_rescale(dts - shift, source, timescale))
            present.append(_rescale(pts - shift, source, timescale))
        dts += delta
    first_offset = present[0] - decode[0]
    kept = len(decode)
    if first:
        # libavformat walks stts from the table's start whatever it dropped, so each audio
        # packet (one per fragment) carries the duration of sample i, not first + i.
        durations = [_rescale(d, source, timescale) for d in tables.deltas[:kept]]
    else:
        durations = [decode[i + 1] - decode[i] for i in range(kept - 1)]
        durations.append(_rescale(tables.deltas[-1], source, timescale))
    return durations, [p - d - first_offset for p, d in zip(present, decode, strict=True)]


def first_kept(tables: Tables) -> int:
    """The first sample ffmpeg's demuxer keeps when an edit starts later in the media.

    Audio: the last sample starting at or before one second ahead of the edit (decoders such
    as AAC need that much run-in; libavformat's mov_fix_index). Video is only demuxed here when
    the first GOP reaches the edit start (`track_unsupported`), so it keeps every sample.
    """
    if tables.handler != "soun" or tables.media_time <= 0:
        return 0
    search = max(tables.media_time - tables.timescale, 0)
    dts, first = 0, 0
    for i, delta in enumerate(tables.deltas):
        if dts > search:
            break
        first = i
        dts += delta
    return first
