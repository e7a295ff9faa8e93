"""ISO-BMFF boxes: reading init segments and fragments, writing CMAF media segments.

Only this module (and the NAL parsing it needs) looks at bytes. References: ISO/IEC 14496-12
(boxes), ISO/IEC 14496-15 (avcC, hvcC), ISO/IEC 14496-14 (esds), RFC 6381 (codec strings).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from packager.errors import BitstreamError

_CONTAINERS = frozenset(
    {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf", b"edts", b"dinf",
     b"sinf", b"schi"}
)

# trun/tfhd flag bits (ISO/IEC 14496-12 §8.8.7, §8.8.8).
TFHD_BASE_DATA_OFFSET = 0x000001
TFHD_SAMPLE_DESCRIPTION_INDEX = 0x000002
TFHD_DEFAULT_DURATION = 0x000008
TFHD_DEFAULT_SIZE = 0x000010
TFHD_DEFAULT_FLAGS = 0x000020
TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
TRUN_DATA_OFFSET = 0x000001
TRUN_FIRST_SAMPLE_FLAGS = 0x000004
TRUN_DURATION = 0x000100
TRUN_SIZE = 0x000200
TRUN_FLAGS = 0x000400
TRUN_CTO = 0x000800
#: sample_is_non_sync_sample bit of the sample flags (§8.8.3.1).
SAMPLE_NON_SYNC = 0x00010000


@dataclass(frozen=True)
class Box:
    type: bytes
    offset: int  # of the header, in the buffer or file it was read from
    size: int  # header included
    header: int  # 8, or 16 for a 64-bit size

    @property
    def body(self) -> int:
        return self.offset + self.header

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass(frozen=True)
class Sample:
    duration: int
    size: int
    flags: int
    composition_offset: int

    @property
    def is_sync(self) -> bool:
        return not self.flags & SAMPLE_NON_SYNC


@dataclass(frozen=True)
class Fragment:
    """One moof + mdat: its timing and its sample bytes, in decode order."""

    base_decode_time: int
    samples: list[Sample]
    data: bytes

    @property
    def duration(self) -> int:
        return sum(s.duration for s in self.samples)

    @property
    def earliest_presentation_time(self) -> int:
        """Where the fragment starts on the presentation timeline (CMAF boundaries are here)."""
        pts, best = self.base_decode_time, None
        for sample in self.samples:
            candidate = pts + sample.composition_offset
            best = candidate if best is None else min(best, candidate)
            pts += sample.duration
        return self.base_decode_time if best is None else best


@dataclass(frozen=True)
class TrackInfo:
    """What manifests need to know about a track, read from its init segment."""

    track_id: int
    handler: str  # "vide" or "soun"
    timescale: int
    sample_entry: str  # avc1, hvc1, mp4a, ...
    codec: str  # RFC 6381 string, e.g. avc1.64001f, mp4a.40.2
    width: int
    height: int
    channels: int
    sample_rate: int


def iter_boxes(buf: bytes, start: int = 0, end: int | None = None) -> Iterator[Box]:
    end = len(buf) if end is None else end
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, offset)
        header = 8
        if size == 1:
            if offset + 16 > end:
                raise BitstreamError(f"truncated 64-bit box header at {offset}")
            (size,) = struct.unpack_from(">Q", buf, offset + 8)
            header = 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            raise BitstreamError(f"box {kind!r} at {offset} overruns its parent")
        yield Box(kind, offset, size, header)
        offset += size


def find_box(buf: bytes, path: list[bytes], start: int = 0, end: int | None = None) -> Box | None:
    """The first box along a path of types, e.g. [b'trak', b'mdia', b'mdhd']."""
    for box in iter_boxes(buf, start, end):
        if box.type == path[0]:
            if len(path) == 1:
                return box
            found = find_box(buf, path[1:], box.body, box.end)
            if found is not None:
                return found
    return None


def read_top_level(f: BinaryIO) -> Iterator[tuple[bytes, int, bytes]]:
    """Stream the top-level boxes of a file as (type, size, header bytes), body left unread.

    The caller reads (or skips) size - len(header) bytes before asking for the next one, so a
    file of any size passes through with one box in memory at a time.
    """
    while True:
        head = f.read(8)
        if not head:
            return
        if len(head) < 8:
            raise BitstreamError("file ends inside a box header")
        size, kind = struct.unpack(">I4s", head)
        if size == 1:
            ext = f.read(8)
            if len(ext) < 8:
                raise BitstreamError("file ends inside a box header")
            (size,) = struct.unpack(">Q", ext)
            head += ext
        if size == 0 or size < len(head):
            raise BitstreamError(f"box {kind!r} has an unsupported size {size}")
        yield kind, size, head


def read_exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise BitstreamError(f"file ends {n - len(data)} bytes early")
    return data


def parse_track_info(moov: bytes) -> TrackInfo:
    """Timescale, handler and codec of the single track of a CMAF header's moov."""
    body = next(iter_boxes(moov)).body if moov[4:8] == b"moov" else 0
    tkhd = _need(find_box(moov, [b"trak", b"tkhd"], body), "tkhd")
    version = moov[tkhd.body]
    (track_id,) = struct.unpack_from(">I", moov, tkhd.body + (20 if version == 1 else 12))
    mdhd = _need(find_box(moov, [b"trak", b"mdia", b"mdhd"], body), "mdhd")
    version = moov[mdhd.body]
    (timescale,) = struct.unpack_from(">I", moov, mdhd.body + (20 if version == 1 else 12))
    hdlr = _need(find_box(moov, [b"trak", b"mdia", b"hdlr"], body), "hdlr")
    handler = moov[hdlr.body + 8 : hdlr.body + 12].decode("latin-1")
    stsd = _need(find_box(moov, [b"trak", b"mdia", b"minf", b"stbl", b"stsd"], body), "stsd")
    entry = next(iter_boxes(moov, stsd.body + 8, stsd.end), None)
    if entry is None:
        raise BitstreamError("stsd has no sample entry")
    fourcc = entry.type.decode("latin-1")
    width = height = channels = sample_rate = 0
    if handler == "vide":
        width, height = struct.unpack_from(">HH", moov, entry.body + 24)
        children = entry.body + 78
    elif handler == "soun":
        (channels,) = struct.unpack_from(">H", moov, entry.body + 16)
        (rate_fixed,) = struct.unpack_from(">I", moov, entry.body + 24)
        sample_rate = rate_fixed >> 16
        children = entry.body + 28
    else:
        raise BitstreamError(f"track handler {handler!r} is neither video nor audio")
    configs = {box.type: moov[box.body : box.end] for box in iter_boxes(moov, children, entry.end)}
    return TrackInfo(
        track_id=track_id,
        handler=handler,
        timescale=timescale,
        sample_entry=fourcc,
        codec=codec_string(fourcc, configs),
        width=width,
        height=height,
        channels=channels,
        sample_rate=sample_rate,
    )


def codec_string(fourcc: str, configs: dict[bytes, bytes]) -> str:
    """RFC 6381 'codecs' value from the decoder configuration record in the sample entry."""
    if fourcc in ("avc1", "avc3"):
        avcc = _config(configs, b"avcC", fourcc)
        # ISO/IEC 14496-15 §5.3.3.1: AVCProfileIndication, profile_compatibility, AVCLevelIndication
        return f"{fourcc}.{avcc[1]:02x}{avcc[2]:02x}{avcc[3]:02x}"
    if fourcc in ("hvc1", "hev1"):
        return _hevc_codec(fourcc, _config(configs, b"hvcC", fourcc))
    if fourcc == "mp4a":
        return _mp4a_codec(_config(configs, b"esds", fourcc))
    if fourcc == "Opus":
        return "opus"
    if fourcc in ("ac-3", "ec-3"):
        return fourcc
    raise BitstreamError(f"no codec string known for sample entry {fourcc!r}")


def _hevc_codec(fourcc: str, hvcc: bytes) -> str:
    """ISO/IEC 14496-15 Annex E.3: profile space/idc, reversed compatibility flags, tier+level,
    constraint bytes with trailing zero bytes dropped."""
    space = "" if hvcc[1] >> 6 == 0 else "ABC"[(hvcc[1] >> 6) - 1]
    tier = "H" if hvcc[1] & 0x20 else "L"
    profile = hvcc[1] & 0x1F
    (compat,) = struct.unpack_from(">I", hvcc, 2)
    reversed_compat = int(f"{compat:032b}"[::-1], 2)
    constraints = list(hvcc[6:12])
    while constraints and constraints[-1] == 0:
        constraints.pop()
    level = hvcc[12]
    parts = [fourcc, f"{space}{profile}", f"{reversed_compat:X}", f"{tier}{level}"]
    parts += [f"{b:02X}" for b in constraints]
    return ".".join(parts)


def _mp4a_codec(esds: bytes) -> str:
    """mp4a.<objectTypeIndication>.<audioObjectType> (RFC 6381 §3.3), from the esds descriptors."""
    pos = 4  # FullBox version + flags
    oti = 0
    while pos < len(esds):
        tag = esds[pos]
        length, pos = _descriptor_length(esds, pos + 1)
        if tag == 0x03:  # ES_Descriptor: ES_ID, flags, then nested descriptors
            flags = esds[pos + 2]
            pos += 3 + (2 if flags & 0x80 else 0)
            if flags & 0x40:
                pos += 1 + esds[pos]
            if flags & 0x20:
                pos += 2
            continue
        if tag == 0x04:  # DecoderConfigDescriptor
            oti = esds[pos]
            pos += 13
            continue
        if tag == 0x05 and oti == 0x40:  # AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1)
            aot = esds[pos] >> 3
            if aot == 31:
                aot = 32 + (((esds[pos] & 0x07) << 3) | (esds[pos + 1] >> 5))
            return f"mp4a.40.{aot}"
        pos += length
    if oti:
        return f"mp4a.{oti:02x}"
    raise BitstreamError("esds has no DecoderConfigDescriptor")


def _descriptor_length(buf: bytes, pos: int) -> tuple[int, int]:
    length = 0
    for _ in range(4):
        byte = buf[pos]
        pos += 1
        length = (length << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    return length, pos


def parse_fragment(moof: bytes, mdat_payload: bytes, trex_default_duration: int = 0) -> Fragment:
    """Samples of the single traf of a moof; sample data sliced out of the following mdat.

    Data offsets are resolved against the moof start (default-base-is-moof, as CMAF requires);
    the mdat payload is assumed to follow the moof directly, as in every fragmented MP4.
    """
    traf = _need(find_box(moof, [b"moof", b"traf"]), "traf")
    tfhd = _need(find_box(moof, [b"tfhd"], traf.body, traf.end), "tfhd")
    (tf_flags,) = struct.unpack_from(">I", moof, tfhd.body)
    tf_flags &= 0xFFFFFF
    pos = tfhd.body + 8
    if tf_flags & TFHD_BASE_DATA_OFFSET:
        raise BitstreamError("tfhd base-data-offset is unsupported; need default-base-is-moof")
    if tf_flags & TFHD_SAMPLE_DESCRIPTION_INDEX:
        pos += 4
    default_duration = trex_default_duration
    default_size = default_flags = 0
    if tf_flags & TFHD_DEFAULT_DURATION:
        (default_duration,) = struct.unpack_from(">I", moof, pos)
        pos += 4
    if tf_flags & TFHD_DEFAULT_SIZE:
        (default_size,) = struct.unpack_from(">I", moof, pos)
        pos += 4
    if tf_flags & TFHD_DEFAULT_FLAGS:
        (default_flags,) = struct.unpack_from(">I", moof, pos)
    tfdt = _need(find_box(moof, [b"tfdt"], traf.body, traf.end), "tfdt")
    if moof[tfdt.body] == 1:
        (base_time,) = struct.unpack_from(">Q", moof, tfdt.body + 4)
    else:
        (base_time,) = struct.unpack_from(">I", moof, tfdt.body + 4)
    moof_size = len(moof)
    samples: list[Sample] = []
    chunks: list[bytes] = []
    next_offset = moof_size + 8  # first byte after a plain mdat header
    for box in iter_boxes(moof, traf.body, traf.end):
        if box.type != b"trun":
            continue
        version = moof[box.body]
        (flags,) = struct.unpack_from(">I", moof, box.body)
        flags &= 0xFFFFFF
        (count,) = struct.unpack_from(">I", moof, box.body + 4)
        pos = box.body + 8
        data_offset = next_offset
        if flags & TRUN_DATA_OFFSET:
            (data_offset,) = struct.unpack_from(">i", moof, pos)
            pos += 4
        first_flags = None
        if flags & TRUN_FIRST_SAMPLE_FLAGS:
            (first_flags,) = struct.unpack_from(">I", moof, pos)
            pos += 4
        cto_format = ">i" if version == 1 else ">I"
        run_bytes = 0
        for i in range(count):
            duration, size, sflags, cto = default_duration, default_size, default_flags, 0
            if flags & TRUN_DURATION:
                (duration,) = struct.unpack_from(">I", moof, pos)
                pos += 4
            if flags & TRUN_SIZE:
                (size,) = struct.unpack_from(">I", moof, pos)
                pos += 4
            if flags & TRUN_FLAGS:
                (sflags,) = struct.unpack_from(">I", moof, pos)
                pos += 4
            elif i == 0 and first_flags is not None:
                sflags = first_flags
            if flags & TRUN_CTO:
                (cto,) = struct.unpack_from(cto_format, moof, pos)
                pos += 4
            samples.append(Sample(duration, size, sflags, cto))
            run_bytes += size
        start = data_offset - moof_size - 8
        if start < 0 or start + run_bytes > len(mdat_payload):
            raise BitstreamError("trun data offset points outside the mdat")
        chunks.append(mdat_payload[start : start + run_bytes])
        next_offset = data_offset + run_bytes
    return Fragment(base_time, samples, b"".join(chunks))


def trex_default_duration(moov: bytes) -> int:
    trex = find_box(moov, [b"moov", b"mvex", b"trex"])
    if trex is None:
        return 0
    (duration,) = struct.unpack_from(">I", moov, trex.body + 12)
    return int(duration)


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


#: 'msdh': a media segment per ISO/IEC 14496-12 §8.16.2 (what DASH and HLS fMP4 expect).
STYP = box(b"styp", b"msdh", struct.pack(">I", 0), b"msdh")


def media_segment(sequence: int, track_id: int, fragment: Fragment) -> bytes:
    """styp + moof + mdat for one CMAF fragment; every sample described explicitly in trun v1."""
    trun_flags = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS | TRUN_CTO
    entries = b"".join(
        struct.pack(">IIIi", s.duration, s.size, s.flags, s.composition_offset)
        for s in fragment.samples
    )
    tfhd = full_box(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF, struct.pack(">I", track_id))
    tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", fragment.base_decode_time))
    trun_size = 8 + 4 + 4 + 4 + len(entries)
    traf_size = 8 + len(tfhd) + len(tfdt) + trun_size
    mfhd = full_box(b"mfhd", 0, 0, struct.pack(">I", sequence))
    moof_size = 8 + len(mfhd) + traf_size
    data_offset = moof_size + 8  # first sample byte, counted from the start of the moof
    trun = full_box(
        b"trun", 1, trun_flags, struct.pack(">Ii", len(fragment.samples), data_offset), entries
    )
    moof = box(b"moof", mfhd, box(b"traf", tfhd, tfdt, trun))
    return b"".join((STYP, moof, box(b"mdat", fragment.data)))


def _need(found: Box | None, name: str) -> Box:
    if found is None:
        raise BitstreamError(f"missing {name} box")
    return found


def _config(configs: dict[bytes, bytes], kind: bytes, fourcc: str) -> bytes:
    if kind not in configs:
        raise BitstreamError(f"{fourcc} sample entry has no {kind.decode()} box")
    return configs[kind]
