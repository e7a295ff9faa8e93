"""Joining a rendition's chunk encodes into one continuous fragmented MP4, as a whole encode is.

Each chunk was encoded on its own (packager/encoding/chunks.py) and starts its own timeline:
its first frame, a key frame, presented at time 0 (ffmpeg's `negative_cts_offsets` shifts
decode times by the encoder's reorder delay so that the first sample has composition offset
0, as in a whole encode). The join keeps every sample's size, flags and composition offset,
and moves each chunk's decode times by one amount, so that the chunk's first frame is
presented at the chunk's start on the title's timeline. Decode order across a join stays
continuous (ISO/IEC 14496-12 §8.8.12: a fragment's tfdt is the sum of the durations before
it): the last sample of the chunk before is lengthened or shortened to meet it, by at most a
tick of rounding (a frame rate whose frame is not a whole number of ticks, 23.976 fps at
90 kHz). A larger gap is a frame lost or repeated at the join, and refused. Fragments are
renumbered (mfhd) in order.

The file is what the segmenter reads from a whole encode: ftyp and moov of the first chunk,
then every chunk's moof + mdat. The chunks must share one sample description: the same
encoder settings give the same parameter sets; if not, a decoder would be handed one chunk's
slices with another's SPS, so they are compared, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from itertools import chain
from pathlib import Path
from typing import BinaryIO

from packager.errors import BitstreamError, InputError
from packager.mp4.fragmented import fragments_of, read_fragmented
from packager.mp4.isobmff import (
    STYP,
    Fragment,
    find_box,
    media_segment_boxes,
    parse_track_info,
)

_STSD = [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"]


@dataclass(frozen=True)
class StitchedTrack:
    """What a join made: samples per chunk, and by how many ticks each join moved the last
    sample's end of the chunk before it (0 where the frame durations add up exactly)."""

    samples: tuple[int, ...]
    timescale: int
    adjustments: tuple[int, ...]


def stitch(parts: Sequence[Path], starts: Sequence[Fraction], out: Path,
           skips: Sequence[Fraction] | None = None) -> StitchedTrack:
    """Write `parts` (one rendition's chunks, in time order) as one fragmented MP4 at `out`.
    `starts`: each chunk's first frame's time on the title's timeline, in seconds; the first
    chunk keeps its own times (a whole encode's start). `skips`: seconds at the start of each
    part's own timeline that are dropped (an encoder's lead-in, ending on a key frame)."""
    skips = skips if skips is not None else [Fraction(0)] * len(parts)
    if not parts or not len(parts) == len(starts) == len(skips):
        raise BitstreamError("a join needs one start time per chunk")
    with out.open("wb") as sink:
        writer = _Writer(sink)
        counts: list[int] = []
        description = b""
        timescale = 0
        for index, (path, start, skip) in enumerate(zip(parts, starts, skips, strict=True)):
            with path.open("rb") as f:
                header, pairs = read_fragmented(f)
                if index == 0:
                    info = parse_track_info(header.moov)
                    timescale, description = info.timescale, _description(header.moov)
                    writer.begin(header.ftyp + header.moov, info.track_id)
                elif _description(header.moov) != description:
                    raise BitstreamError(
                        f"{path.name}: chunk {index + 1}'s sample description (codec "
                        "configuration) differs from chunk 1's; the chunks cannot be joined")
                fragments = _after(fragments_of(pairs, header.moov), round(skip * timescale))
                first = next(fragments, None)
                if first is None:
                    raise InputError(
                        f"chunk {index + 1} (from {float(start):.3f} s) holds no frames: the "
                        "source ends before it (the file is truncated)")
                shift = 0 if index == 0 else (
                    round(start * timescale) - first.earliest_presentation_time)
                counts.append(writer.chunk(chain([first], fragments), shift, index))
        writer.finish()
    return StitchedTrack(tuple(counts), timescale, tuple(writer.adjustments))


class _Writer:
    """Writes fragments in order, holding back the last one written so far: the next chunk's
    first decode time decides its last sample's duration."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self._track_id = 0
        self._sequence = 0
        self._held: Fragment | None = None
        self.adjustments: list[int] = []

    def begin(self, header: bytes, track_id: int) -> None:
        self._sink.write(header)
        self._track_id = track_id

    def chunk(self, fragments: Iterator[Fragment], shift: int, index: int) -> int:
        samples = 0
        for n, fragment in enumerate(fragments):
            moved = replace(fragment, base_decode_time=fragment.base_decode_time + shift)
            if moved.base_decode_time < 0:
                raise BitstreamError(f"chunk {index + 1} would start before the title")
            if n == 0 and self._held is not None:
                self._meet(moved.base_decode_time, index)
            self._release()
            self._held = moved
            samples += len(moved.samples)
        return samples

    def _meet(self, start: int, index: int) -> None:
        """Lengthen or shorten the held fragment's last sample to end where the next chunk's
        first sample is decoded; more than half a frame apart is a lost or repeated frame."""
        held = self._held
        assert held is not None
        gap = start - (held.base_decode_time + held.duration)
        last = held.samples[-1]
        if 2 * abs(gap) >= last.duration:
            frames = gap / last.duration
            raise BitstreamError(
                f"chunk {index + 1} starts {frames:+.2f} frames from the end of chunk {index}: "
                "a frame would be lost or repeated at the join")
        samples = [*held.samples[:-1], replace(last, duration=last.duration + gap)]
        self._held = replace(held, samples=samples)
        self.adjustments.append(gap)

    def _release(self) -> None:
        if self._held is None:
            return
        self._sequence += 1
        boxes, data = media_segment_boxes(self._sequence, self._track_id, self._held)
        self._sink.write(boxes[len(STYP):])  # a fragment inside one file: no segment type box
        self._sink.write(data)
        self._held = None

    def finish(self) -> None:
        self._release()


def _after(fragments: Iterator[Fragment], skip: int) -> Iterator[Fragment]:
    """The fragments from the first that begins on a sync sample at `skip` ticks (less half a
    frame) on; those before it are the encoder's lead-in."""
    kept = False
    for fragment in fragments:
        first = fragment.samples[0]
        kept = kept or (first.is_sync and
                        fragment.earliest_presentation_time >= skip - first.duration // 2)
        if kept:
            yield fragment


def _description(moov: bytes) -> bytes:
    stsd = find_box(moov, _STSD)
    if stsd is None:
        raise BitstreamError("missing stsd box")
    return moov[stsd.offset : stsd.end]
