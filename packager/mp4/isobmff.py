"""ISO-BMFF boxes: reading init segments and fragments, writing CMAF media segments.

Bytes are read and written only in packager/mp4/ (this module; sampletable.py and demux.py for
progressive MP4 sample tables) and packager/bitstream/ (the NAL and slice-header parsing sample
encryption needs). References: ISO/IEC 14496-12 (boxes), ISO/IEC 14496-15 (avcC, hvcC),
ISO/IEC 14496-14 (esds), RFC 6381 (codec strings), the AV1 ISOBMFF binding v1.2.0 (av1C).
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from packager.bitstream.av1 import parse_av1_config
from packager.errors import BitstreamError, InputError

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
    handler: str  # "vide", "soun" or "text"
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
    elif handler in ("text", "subt"):
        children = entry.body + 8  # a plain SampleEntry: reserved, data_reference_index
    else:
        raise BitstreamError(f"track handler {handler!r} is not video, audio or text")
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
    if fourcc == "av01":
        return parse_av1_config(_config(configs, b"av1C", fourcc)).codec_string(fourcc)
    if fourcc == "mp4a":
        return _mp4a_codec(_config(configs, b"esds", fourcc))
    if fourcc == "Opus":
        return "opus"
    if fourcc in ("ac-3", "ec-3", "wvtt"):
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


def parse_fragment(
    moof: bytes, mdat_payload: bytes, trex_default_duration: int = 0, with_data: bool = True
) -> Fragment:
    """Samples of the single traf of a moof; sample data sliced out of the following mdat
    (or left empty with `with_data=False`, when only the timing is wanted).

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
        if not with_data:
            next_offset = data_offset + run_bytes
            continue
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


def media_segment(
    sequence: int, track_id: int, fragment: Fragment, encryption: SampleEncryption | None = None
) -> bytes:
    """styp + moof + mdat for one CMAF fragment (`media_segment_boxes`, joined)."""
    return b"".join(media_segment_boxes(sequence, track_id, fragment, encryption))


def media_segment_boxes(
    sequence: int, track_id: int, fragment: Fragment, encryption: SampleEncryption | None = None
) -> tuple[bytes, bytes]:
    """styp + moof + mdat for one CMAF fragment; every sample described explicitly in trun v1.
    Returned as (styp + moof + mdat header, sample data): written one after the other, the
    sample data (megabytes per segment) is never copied into one more buffer."""
    samples = fragment.samples
    offsets = [s.composition_offset for s in samples]
    entries = trun_entries([s.duration for s in samples], [s.size for s in samples],
                           [s.flags for s in samples], offsets if any(offsets) else None)
    header = media_segment_header(sequence, track_id, fragment.base_decode_time, len(samples),
                                  entries, len(fragment.data), encryption)
    return header, fragment.data


def trun_entries(
    durations: Sequence[int], sizes: Sequence[int], flags: Sequence[int],
    composition_offsets: Sequence[int] | None,
) -> bytes:
    """The sample entries of a version 1 trun (§8.8.8): duration, size, flags and (signed)
    composition offset of every sample, four big-endian 32-bit words each; three, without the
    offsets, for `composition_offsets` None: a fragment with no offset at all (AV1, whose
    binding's "AV1 Sample Format" forbids them; audio; video without B-frames) leaves the
    field out rather than write zeros."""
    width = 3 if composition_offsets is None else 4
    words = array("I", bytes(4 * width * len(sizes)))
    lanes = memoryview(words)
    lanes[0::width] = array("I", durations)
    lanes[1::width] = array("I", sizes)
    lanes[2::width] = array("I", flags)
    if composition_offsets is not None:
        lanes.cast("B").cast("i")[3::4] = array("i", composition_offsets)
    lanes.release()
    if sys.byteorder == "little":
        words.byteswap()
    return words.tobytes()


def media_segment_header(
    sequence: int, track_id: int, base_decode_time: int, sample_count: int, entries: bytes,
    data_size: int, encryption: SampleEncryption | None = None,
) -> bytes:
    """styp + moof + mdat header of a CMAF fragment of `sample_count` samples whose trun
    entries are `entries` (`trun_entries`: with composition offsets, 16 bytes a sample, or
    without, 12) and whose sample data, `data_size` bytes, follows.

    With `encryption`, the traf also carries saiz, saio and senc (ISO/IEC 23001-7 §7.2), and
    saio points at the first senc entry, counted from the moof start (default-base-is-moof,
    ISO/IEC 14496-12 §8.7.9); trun's data_offset accounts for the extra boxes.
    """
    trun_flags = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS
    if len(entries) == 16 * sample_count:
        trun_flags |= TRUN_CTO
    elif len(entries) != 12 * sample_count:
        raise BitstreamError("trun entries of 12 or 16 bytes a sample are expected")
    tfhd = full_box(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF, struct.pack(">I", track_id))
    tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", base_decode_time))
    mfhd = full_box(b"mfhd", 0, 0, struct.pack(">I", sequence))
    trun_size = 8 + 4 + 4 + 4 + len(entries)
    protection: list[bytes] = []
    if encryption is not None:
        if len(encryption.entries) != sample_count:
            raise BitstreamError("one senc entry per sample is required")
        senc = encryption.senc()
        if encryption.iv_size == 0 and not encryption.use_subsamples:
            # Constant IV, whole-sample encryption: no auxiliary information to point at
            # (entries are empty), so senc alone, as Shaka Packager writes it.
            protection = [senc]
        else:
            saiz = encryption.saiz()
            saio_size = 8 + 4 + 4 + 4
            # moof header, mfhd, traf header, tfhd, tfdt, trun, saiz, saio, senc header (full
            # box header 12 bytes + sample_count 4): where the first sample's info begins.
            aux_offset = (
                8 + len(mfhd) + 8 + len(tfhd) + len(tfdt) + trun_size + len(saiz) + saio_size
                + 16
            )
            saio = full_box(b"saio", 0, 0, struct.pack(">II", 1, aux_offset))
            protection = [saiz, saio, senc]
    traf_size = 8 + len(tfhd) + len(tfdt) + trun_size + sum(len(b) for b in protection)
    moof_size = 8 + len(mfhd) + traf_size
    data_offset = moof_size + 8  # first sample byte, counted from the start of the moof
    trun = full_box(
        b"trun", 1, trun_flags, struct.pack(">Ii", sample_count, data_offset), entries
    )
    moof = box(b"moof", mfhd, box(b"traf", tfhd, tfdt, trun, *protection))
    mdat_header = struct.pack(">I4s", 8 + data_size, b"mdat")
    return STYP + moof + mdat_header


# --- Common Encryption boxes (ISO/IEC 23001-7) ---------------------------------------------

#: senc flag: entries carry subsample maps (§7.2.1, UseSubSampleEncryption).
SENC_USE_SUBSAMPLES = 0x2


@dataclass(frozen=True)
class SampleEncryption:
    """Per-sample auxiliary information of one fragment: IV (possibly empty, with a constant
    IV) and (clear, protected) subsamples for each sample, in decode order."""

    iv_size: int
    use_subsamples: bool
    entries: Sequence[tuple[bytes, Sequence[tuple[int, int]]]]

    def _entry(self, iv: bytes, subsamples: Sequence[tuple[int, int]]) -> bytes:
        if len(iv) != self.iv_size:
            raise BitstreamError(f"IV of {len(iv)} bytes where tenc says {self.iv_size}")
        if not self.use_subsamples:
            return iv
        return iv + struct.pack(">H", len(subsamples)) + b"".join(
            struct.pack(">HI", clear, protected) for clear, protected in subsamples
        )

    def senc(self) -> bytes:
        flags = SENC_USE_SUBSAMPLES if self.use_subsamples else 0
        body = b"".join(self._entry(iv, subs) for iv, subs in self.entries)
        return full_box(b"senc", 0, flags, struct.pack(">I", len(self.entries)), body)

    def saiz(self) -> bytes:
        """saiz with a default size when every entry has the same size (§8.7.8)."""
        sizes = [
            self.iv_size + (2 + 6 * len(subs) if self.use_subsamples else 0)
            for _, subs in self.entries
        ]
        if sizes and all(size == sizes[0] for size in sizes) and sizes[0] > 0:
            return full_box(b"saiz", 0, 0, struct.pack(">BI", sizes[0], len(sizes)))
        if any(size > 255 for size in sizes):
            raise BitstreamError("a sample has too many subsamples for saiz (255 bytes max)")
        return full_box(b"saiz", 0, 0, struct.pack(">BI", 0, len(sizes)), bytes(sizes))


@dataclass(frozen=True)
class TrackEncryptionBox:
    """tenc and its sinf siblings as read back from an init segment (for checks and tests)."""

    original_format: str
    scheme: str
    version: int
    crypt_byte_block: int
    skip_byte_block: int
    is_protected: int
    per_sample_iv_size: int
    kid: bytes
    constant_iv: bytes


def pssh_box(system_id: bytes, kids: list[bytes], data: bytes = b"") -> bytes:
    """A version 1 pssh listing the KIDs (ISO/IEC 23001-7 §8.1), as the W3C common format
    requires (Data empty)."""
    return full_box(
        b"pssh", 1, 0, system_id, struct.pack(">I", len(kids)), *kids,
        struct.pack(">I", len(data)), data,
    )


def read_pssh_system_id(box: bytes) -> bytes:
    """The SystemID of a lone pssh box (ISO/IEC 23001-7 §8.1.1), checking that the bytes are
    exactly one well-formed pssh of version 0 or 1 (e.g. one handed over by a key server)."""
    boxes = list(iter_boxes(box))
    if len(boxes) != 1 or boxes[0].type != b"pssh" or boxes[0].size != len(box):
        raise BitstreamError("not a single pssh box")
    pos = boxes[0].body
    if len(box) < pos + 4 + 16 + 4 or box[pos] not in (0, 1):
        raise BitstreamError("pssh box too short or of an unknown version")
    system_id = box[pos + 4 : pos + 20]
    pos += 20
    if box[boxes[0].body] == 1:
        (count,) = struct.unpack_from(">I", box, pos)
        pos += 4 + 16 * count
    if pos + 4 > len(box) or pos + 4 + struct.unpack_from(">I", box, pos)[0] != len(box):
        raise BitstreamError("pssh box sizes do not add up")
    return system_id


def tenc_box(
    kid: bytes, per_sample_iv_size: int, constant_iv: bytes, crypt: int, skip: int
) -> bytes:
    """tenc (§8.2.2): version 1 for a constant IV or a pattern ('cbcs' requires version 1
    even for audio's 0:0 pattern, §10.4); a constant IV only when the per-sample IV size is
    0. Version 0 for 'cenc' (§10.1)."""
    version = 1 if crypt or skip or per_sample_iv_size == 0 else 0
    pattern = (crypt << 4) | skip if version else 0
    body = struct.pack(">BBBB", 0, pattern, 1, per_sample_iv_size) + kid
    if per_sample_iv_size == 0:
        body += struct.pack(">B", len(constant_iv)) + constant_iv
    return full_box(b"tenc", version, 0, body)


_STSD_PATH = [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"]


def protect_moov(moov: bytes, scheme: str, tenc: bytes, pssh: bytes) -> bytes:
    """The moov with its sample entry renamed encv/enca and given a sinf (frma, schm, schi/tenc),
    and the pssh box appended (§8.1, §8.12 of ISO/IEC 14496-12). Ancestors' sizes grow."""
    ancestors = _box_path(moov, _STSD_PATH)
    stsd = ancestors[-1]
    entry = next(iter_boxes(moov, stsd.body + 8, stsd.end), None)
    if entry is None or entry.header != 8:
        raise BitstreamError("stsd has no sample entry")
    if find_box(moov, [b"pssh"], ancestors[0].body, ancestors[0].end) is not None or (
        entry.type in (b"encv", b"enca")
    ):
        raise InputError("the input track is already encrypted")
    (handler_box,) = _box_path(moov, [b"moov", b"trak", b"mdia", b"hdlr"])[-1:]
    handler = moov[handler_box.body + 8 : handler_box.body + 12]
    renamed = b"encv" if handler == b"vide" else b"enca"
    sinf = box(
        b"sinf",
        box(b"frma", entry.type),
        full_box(b"schm", 0, 0, scheme.encode(), struct.pack(">I", 0x00010000)),
        box(b"schi", tenc),
    )
    new_entry = struct.pack(">I4s", entry.size + len(sinf), renamed) + moov[entry.body : entry.end]
    new_entry += sinf
    out = bytearray(moov[: entry.offset] + new_entry + moov[entry.end :])
    for ancestor in ancestors:
        if ancestor.header != 8:
            raise BitstreamError(f"64-bit {ancestor.type!r} box is not supported")
        struct.pack_into(">I", out, ancestor.offset, ancestor.size + len(sinf))
    moov_box = ancestors[0]
    end = moov_box.offset + moov_box.size + len(sinf)
    out[end:end] = pssh
    struct.pack_into(">I", out, moov_box.offset, moov_box.size + len(sinf) + len(pssh))
    return bytes(out)


def read_track_encryption(moov: bytes) -> TrackEncryptionBox:
    """sinf of the protected sample entry of a CMAF header's moov."""
    stsd = _box_path(moov, _STSD_PATH)[-1]
    entry = next(iter_boxes(moov, stsd.body + 8, stsd.end), None)
    if entry is None or entry.type not in (b"encv", b"enca"):
        raise BitstreamError("sample entry is not encv/enca")
    children = entry.body + (78 if entry.type == b"encv" else 28)
    sinf = _need(find_box(moov, [b"sinf"], children, entry.end), "sinf")
    frma = _need(find_box(moov, [b"frma"], sinf.body, sinf.end), "frma")
    schm = _need(find_box(moov, [b"schm"], sinf.body, sinf.end), "schm")
    tenc = _need(find_box(moov, [b"schi", b"tenc"], sinf.body, sinf.end), "tenc")
    version = moov[tenc.body]
    pos = tenc.body + 4
    _, pattern, is_protected, iv_size = struct.unpack_from(">BBBB", moov, pos)
    kid = moov[pos + 4 : pos + 20]
    constant_iv = b""
    if is_protected and iv_size == 0:
        n = moov[pos + 20]
        constant_iv = moov[pos + 21 : pos + 21 + n]
    return TrackEncryptionBox(
        original_format=moov[frma.body : frma.body + 4].decode("latin-1"),
        scheme=moov[schm.body + 4 : schm.body + 8].decode("latin-1"),
        version=version,
        crypt_byte_block=pattern >> 4 if version else 0,
        skip_byte_block=pattern & 0x0F if version else 0,
        is_protected=is_protected,
        per_sample_iv_size=iv_size,
        kid=kid,
        constant_iv=constant_iv,
    )


def read_senc_ivs(moof: bytes, iv_size: int) -> list[bytes]:
    """Per-sample IVs of a fragment's senc (for checking IV uniqueness)."""
    senc = _need(find_box(moof, [b"moof", b"traf", b"senc"]), "senc")
    (flags,) = struct.unpack_from(">I", moof, senc.body)
    (count,) = struct.unpack_from(">I", moof, senc.body + 4)
    pos = senc.body + 8
    ivs = []
    for _ in range(count):
        ivs.append(moof[pos : pos + iv_size])
        pos += iv_size
        if flags & SENC_USE_SUBSAMPLES:
            (n,) = struct.unpack_from(">H", moof, pos)
            pos += 2 + 6 * n
    return ivs


def sample_entry_config(moov: bytes, kind: bytes) -> bytes:
    """Body of a decoder configuration box (avcC, hvcC, esds) in the track's sample entry."""
    stsd = _box_path(moov, _STSD_PATH)[-1]
    entry = next(iter_boxes(moov, stsd.body + 8, stsd.end), None)
    if entry is None:
        raise BitstreamError("stsd has no sample entry")
    offset = 78 if kind in (b"avcC", b"hvcC", b"av1C") else 28
    found = find_box(moov, [kind], entry.body + offset, entry.end)
    if found is None:
        raise BitstreamError(f"sample entry {entry.type!r} has no {kind.decode()} box")
    return moov[found.body : found.end]


def _box_path(buf: bytes, path: list[bytes]) -> list[Box]:
    """Every box along a path of types, outermost first."""
    found: list[Box] = []
    start, end = 0, len(buf)
    for kind in path:
        match = next((b for b in iter_boxes(buf, start, end) if b.type == kind), None)
        if match is None:
            raise BitstreamError(f"missing {kind.decode()} box")
        found.append(match)
        start, end = match.body, match.end
    return found


def _need(found: Box | None, name: str) -> Box:
    if found is None:
        raise BitstreamError(f"missing {name} box")
    return found


def _config(configs: dict[bytes, bytes], kind: bytes, fourcc: str) -> bytes:
    if kind not in configs:
        raise BitstreamError(f"{fourcc} sample entry has no {kind.decode()} box")
    return configs[kind]
