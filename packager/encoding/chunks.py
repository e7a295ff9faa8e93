"""The chunk plan: runs of whole segments of the segment plan, each encoded on its own.

A long title is encoded in chunks so that several workers (processes, machines) share it. A
chunk is a run of whole segments of the plan (encoding/segments.py), so its first frame is a
planned key frame and no segment straddles two encodes: each chunk's encode forces the plan's
key frames inside it, and the coordinator joins the chunks' fragments into one track
(packager/mp4/stitch.py) that is cut and encrypted like a whole encode's.

Chunks are counted in frames of the ladder's constant frame rate (the fps filter's output
grid, which every video rendition shares), never in seconds, so that a join can neither lose
nor repeat a frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise

from packager.errors import InputError

#: The shortest chunk `--chunks auto` makes. A chunk costs CPU beyond its frames' share of a
#: whole encode (its one-second lead-in, a second of source decoded before it, encoders and
#: lookahead started cold): measured by bench/chunks.py (BENCHMARKS.md "Chunked encodes", the
#: default ladder from 720p), 60 s chunks took 0.96-1.04x the whole encode's CPU (within the
#: noise) and 30 s chunks 1.02-1.15x.
MIN_CHUNK_SECONDS = 60.0
#: A title shorter than this is encoded whole by `--chunks auto` (it would not make two such
#: chunks). At 120 s two chunks on two local workers were never slower than the whole encode
#: in five measured pairs (0.61-1.00x on the loaded machine, 1.01x estimated on free cores);
#: at 30 and 60 s no gain showed.
MIN_CHUNKED_SECONDS = 2 * MIN_CHUNK_SECONDS
#: Chunks per worker `--chunks auto` aims at: more chunks than workers, so that a worker that
#: drew an easy chunk takes another while a hard one finishes (the last chunk otherwise leaves
#: all but one worker idle at the end).
CHUNKS_PER_WORKER = 2
#: Seconds of source decoded before a chunk's encode begins: the seek lands on a key frame at
#: or before this point, so that the frame shown at the first slot is chosen from the same
#: source frames as in a whole encode (transcode.chunk_input).
SEEK_MARGIN = Fraction(1)
#: Seconds encoded before a chunk's first frame and dropped at the join (the first chunk has
#: none). An encoder starting cold spends too few bits on its first second: x264's ABR begins
#: from a fixed guess of the picture's complexity and a VBV buffer 90 % full, and converges
#: within about a second. Without a lead-in every chunk's first segment came out a fifth
#: smaller than the whole encode's and its VMAF 2 points lower; with it the encoder is warm
#: when the chunk's first (forced, closed-GOP) key frame arrives.
LEAD_IN = Fraction(1)


@dataclass(frozen=True)
class Chunk:
    """One chunk of a title's video: frames [first_frame, first_frame + frames) of the ladder's
    frame grid (frame n at n / frame_rate seconds), `frames` None for the last one (to the
    end of the source, as a whole encode ends)."""

    index: int  # 0-based, in time order
    first_frame: int
    frames: int | None
    frame_rate: Fraction
    #: The plan's segment starts inside the chunk, in frames from its first one (0 first).
    key_frames: tuple[int, ...]
    #: Frames encoded before the first one and dropped at the join (LEAD_IN).
    lead_in: int = 0

    @property
    def encode_first(self) -> int:
        """The first frame the chunk's encode takes: `lead_in` before its own first frame."""
        return self.first_frame - self.lead_in

    @property
    def start(self) -> Fraction:
        """Seconds from the start of the title to the chunk's first frame, exactly."""
        return self.first_frame / self.frame_rate

    @property
    def seconds(self) -> float | None:
        return None if self.frames is None else float(self.frames / self.frame_rate)

    @property
    def skip(self) -> Fraction:
        """Seconds of the chunk's encode (from its start) the join drops: the lead-in."""
        return self.lead_in / self.frame_rate

    @property
    def name(self) -> str:
        return f"chunk_{self.index + 1:05d}"


def chunk_count(requested: int | None, workers: int, duration: float, segments: int) -> int:
    """How many chunks: `requested` (at most one a segment), or for auto (None) one when a
    second worker cannot help (one worker, or a title under MIN_CHUNKED_SECONDS), else
    CHUNKS_PER_WORKER a worker, none shorter than MIN_CHUNK_SECONDS."""
    if requested is not None:
        if requested < 1:
            raise InputError(f"--chunks {requested}: the count must be 1 or more (or auto)")
        return min(requested, segments)
    if workers <= 1 or duration < MIN_CHUNKED_SECONDS:
        return 1
    longest_count = math.floor(duration / MIN_CHUNK_SECONDS)
    return max(1, min(segments, workers * CHUNKS_PER_WORKER, longest_count))


def plan_chunks(starts: list[float], frame_rate: Fraction, count: int) -> list[Chunk]:
    """`count` chunks of consecutive segments (the plan's `starts`, seconds on the frame grid),
    as even in segments as they divide; the last one runs to the end of the source."""
    if frame_rate <= 0:
        raise InputError("a chunked encode needs a video frame rate")
    frames = [round(Fraction(s) * frame_rate) for s in starts]
    count = max(1, min(count, len(frames)))
    edges = [round(k * len(frames) / count) for k in range(count)] + [len(frames)]
    chunks = []
    for index, (a, b) in enumerate(pairwise(edges)):
        first = frames[a]
        length = frames[b] - first if b < len(frames) else None
        chunks.append(Chunk(index, first, length, frame_rate,
                            tuple(f - first for f in frames[a:b]),
                            min(first, math.ceil(LEAD_IN * frame_rate))))
    return chunks


def parse_chunks(text: str) -> int | None:
    """`--chunks auto|N`: None for auto, else N (1: encode whole)."""
    if text.strip().lower() == "auto":
        return None
    try:
        count = int(text)
    except ValueError:
        raise InputError(f"--chunks {text!r}: expected auto or a number of chunks") from None
    if count < 1:
        raise InputError(f"--chunks {text!r}: the count must be 1 or more (or auto)")
    return count
