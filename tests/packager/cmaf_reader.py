"""Test-side readers of CMAF media segments: the senc subsample maps (ours and Shaka
Packager's, to compare protected byte maps), the samples of a track's segments, and what
an AV1 sample starts with."""

from __future__ import annotations

import itertools
import struct
from pathlib import Path

from packager.bitstream.av1 import (
    OBU_FRAME,
    OBU_FRAME_HEADER,
    OBU_SEQUENCE_HEADER,
    OBU_TEMPORAL_DELIMITER,
    iter_obus,
)
from packager.mp4.isobmff import Sample, iter_boxes, parse_fragment, trex_default_duration


def numbered(directory: Path, pattern: str) -> list[Path]:
    """Segment files in number order (seg_00002 before seg_00010, 2.m4s before 10.m4s)."""
    return sorted(directory.glob(pattern),
                  key=lambda p: int("".join(filter(str.isdigit, p.stem))))


def subsample_maps(segments: list[Path], iv_size: int) -> list[list[tuple[int, int]]]:
    """(BytesOfClearData, BytesOfProtectedData) of every sample, from each segment's senc."""
    maps: list[list[tuple[int, int]]] = []
    for segment in segments:
        data = segment.read_bytes()
        moof = next(b for b in iter_boxes(data) if b.type == b"moof")
        traf = next(b for b in iter_boxes(data, moof.body, moof.end) if b.type == b"traf")
        box = next(b for b in iter_boxes(data, traf.body, traf.end) if b.type == b"senc")
        (count,) = struct.unpack_from(">I", data, box.body + 4)
        pos = box.body + 8
        for _ in range(count):
            pos += iv_size
            (n,) = struct.unpack_from(">H", data, pos)
            maps.append([struct.unpack_from(">HI", data, pos + 2 + 6 * i) for i in range(n)])
            pos += 2 + 6 * n
    return maps


def moov_of(init: Path) -> bytes:
    data = init.read_bytes()
    moov = next(b for b in iter_boxes(data) if b.type == b"moov")
    return data[moov.offset : moov.end]


def track_samples(init: Path, segments: list[Path]) -> list[tuple[Sample, bytes]]:
    """Every sample of a track (its trun entry and its bytes), in decode order."""
    default_duration = trex_default_duration(moov_of(init))
    out: list[tuple[Sample, bytes]] = []
    for segment in segments:
        data = segment.read_bytes()
        boxes = list(iter_boxes(data))
        for moof, mdat in itertools.pairwise(boxes):
            if moof.type != b"moof" or mdat.type != b"mdat":
                continue
            fragment = parse_fragment(data[moof.offset : moof.end], data[mdat.body : mdat.end],
                                      default_duration)
            pos = 0
            for sample in fragment.samples:
                out.append((sample, fragment.data[pos : pos + sample.size]))
                pos += sample.size
    return out


def av1_frame_kind(sample: bytes) -> tuple[bool, bool, bool]:
    """(temporal delimiter seen, sequence header before the first frame header, first frame
    a shown key frame), read from the OBU headers and the first bits of the frame header."""
    delimiter = sequence = False
    for obu in iter_obus(sample):
        if obu.type == OBU_TEMPORAL_DELIMITER:
            delimiter = True
        elif obu.type == OBU_SEQUENCE_HEADER:
            sequence = True
        elif obu.type in (OBU_FRAME, OBU_FRAME_HEADER):
            first = sample[obu.payload]
            show_existing, frame_type, show = first >> 7, (first >> 5) & 3, (first >> 4) & 1
            return delimiter, sequence, not show_existing and frame_type == 0 and show == 1
    return delimiter, sequence, False
