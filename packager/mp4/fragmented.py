"""Reading a fragmented MP4 file front to back: its header at once, its fragments one by one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from packager.errors import BitstreamError
from packager.mp4.isobmff import (
    Fragment,
    parse_fragment,
    read_exact,
    read_top_level,
    trex_default_duration,
)


@dataclass(frozen=True)
class FragmentedHeader:
    ftyp: bytes
    moov: bytes


def read_fragmented(f: BinaryIO) -> tuple[FragmentedHeader, Iterator[tuple[bytes, bytes]]]:
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

    return FragmentedHeader(ftyp, moov), pairs()


def fragments_of(pairs: Iterator[tuple[bytes, bytes]], moov: bytes) -> Iterator[Fragment]:
    """The fragments that hold samples, parsed (an empty moof, as some muxers end with, is
    skipped)."""
    trex_duration = trex_default_duration(moov)
    for moof, payload in pairs:
        fragment = parse_fragment(moof, payload, trex_duration)
        if fragment.samples:
            yield fragment
