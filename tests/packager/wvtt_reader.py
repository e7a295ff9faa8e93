"""A test-side reader of CMAF text segments (ISO/IEC 14496-30): the cues a wvtt track shows,
from the moof sample timings and the vttc/payl boxes, to compare with WebVTT and with Shaka
Packager's wvtt output. Independent of packager/mp4/wvtt.py (which only writes)."""

from __future__ import annotations

import struct
from pathlib import Path


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    out = []
    end = len(data) if end is None else end
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        out.append((kind, start + 8, start + size))
        start += size
    return out


def _child(data: bytes, kind: bytes, start: int, end: int) -> tuple[int, int]:
    for k, body, stop in _boxes(data, start, end):
        if k == kind:
            return body, stop
    raise AssertionError(f"no {kind!r} box")


def segment_cues(path: Path) -> list[tuple[int, int, str]]:
    """(start, end, payload) of every cue shown in a media segment, in the track's timescale;
    a cue running through several samples is joined back into one span."""
    data = path.read_bytes()
    top = {k: (b, e) for k, b, e in _boxes(data)}
    moof_body, moof_end = top[b"moof"]
    traf = _child(data, b"traf", moof_body, moof_end)
    tfdt_body, _ = _child(data, b"tfdt", *traf)
    version = data[tfdt_body]
    time = struct.unpack_from(">Q" if version else ">I", data, tfdt_body + 4)[0]
    trun_body, _ = _child(data, b"trun", *traf)
    flags = int.from_bytes(data[trun_body + 1 : trun_body + 4], "big")
    count, offset = struct.unpack_from(">Ii", data, trun_body + 4)
    pos = trun_body + 12 + (4 if flags & 0x4 else 0)
    tfhd_body, _ = _child(data, b"tfhd", *traf)
    default_duration = default_size = 0
    tf_flags = int.from_bytes(data[tfhd_body + 1 : tfhd_body + 4], "big")
    p = tfhd_body + 8 + (8 if tf_flags & 0x1 else 0) + (4 if tf_flags & 0x2 else 0)
    if tf_flags & 0x8:
        default_duration = struct.unpack_from(">I", data, p)[0]
        p += 4
    if tf_flags & 0x10:
        default_size = struct.unpack_from(">I", data, p)[0]
    sample_at = moof_body - 8 + offset
    spans: list[tuple[int, int, str]] = []
    for _ in range(count):
        duration, size = default_duration, default_size
        if flags & 0x100:
            duration = struct.unpack_from(">I", data, pos)[0]
            pos += 4
        if flags & 0x200:
            size = struct.unpack_from(">I", data, pos)[0]
            pos += 4
        pos += (4 if flags & 0x400 else 0) + (4 if flags & 0x800 else 0)
        for kind, body, stop in _boxes(data, sample_at, sample_at + size):
            if kind == b"vttc":
                payl_body, payl_end = _child(data, b"payl", body, stop)
                text = data[payl_body:payl_end].decode("utf-8")
                spans.append((time, time + duration, text))
        sample_at += size
        time += duration
    joined: list[tuple[int, int, str]] = []
    for start, end, text in sorted(spans, key=lambda s: (s[2], s[0])):
        if joined and joined[-1][2] == text and joined[-1][1] == start:
            joined[-1] = (joined[-1][0], end, text)
        else:
            joined.append((start, end, text))
    return sorted(joined)
