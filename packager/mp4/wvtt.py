"""WebVTT in ISO-BMFF (ISO/IEC 14496-30): the wvtt track header and its samples, for CMAF text.

A sample covers a span of the timeline in which the same cues are shown: one `vttc` box per
cue (`iden` its identifier, `sttg` its settings, `payl` its text), or a single `vtte` box for a
span with none (§7.4). Sample times carry the cue times: a cue of 1.0-2.5 s is every sample
between those instants, so a span boundary is placed at each cue's start and end. The
sample entry `wvtt` holds `vttC`, the file's header text (§7.5): "WEBVTT" and the STYLE and
REGION blocks. Text is never encrypted.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence

from packager.mp4.isobmff import Sample, box, full_box

#: Text timescale: milliseconds, WebVTT's own precision.
TIMESCALE = 1000
TRACK_ID = 1
#: sample_depends_on = 2 (no other sample): every text sample stands alone (sync).
SYNC_FLAGS = 0x02000000
_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)


def init_segment(language: str, config: str, label: str) -> bytes:
    """ftyp + moov of a wvtt track: `language` a BCP 47 tag (mdhd takes its ISO 639-2/T
    code, `elng` the whole tag, §8.4.6), `config` the vttC text, `label` the vlab text."""
    ftyp = box(b"ftyp", b"iso6", struct.pack(">I", 0), b"iso6", b"cmfc", b"dash")
    mvhd = full_box(b"mvhd", 0, 0, struct.pack(">IIII", 0, 0, TIMESCALE, 0),
                    struct.pack(">IH", 0x00010000, 0x0100), bytes(10), _MATRIX, bytes(24),
                    struct.pack(">I", TRACK_ID + 1))
    tkhd = full_box(b"tkhd", 0, 3, struct.pack(">IIIII", 0, 0, TRACK_ID, 0, 0), bytes(8),
                    struct.pack(">hhhH", 0, 0, 0, 0), _MATRIX, struct.pack(">II", 0, 0))
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIII", 0, 0, TIMESCALE, 0),
                    struct.pack(">HH", _packed_language(language), 0))
    hdlr = full_box(b"hdlr", 0, 0, struct.pack(">I", 0), b"text", bytes(12), b"cdnpack WebVTT\0")
    elng = [full_box(b"elng", 0, 0, language.encode("ascii") + b"\0")] if "-" in language else []
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))
    # vlab (the source label, §7.6) is optional in the standard but Shaka Packager's reader
    # requires it; it names where the cues came from.
    entry = box(b"wvtt", bytes(6), struct.pack(">H", 1), box(b"vttC", config.encode("utf-8")),
                box(b"vlab", label.encode("utf-8")))
    stbl = box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), entry),
        full_box(b"stts", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsc", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        full_box(b"stco", 0, 0, struct.pack(">I", 0)),
    )
    minf = box(b"minf", full_box(b"nmhd", 0, 0), dinf, stbl)
    trak = box(b"trak", tkhd, box(b"mdia", mdhd, *elng, hdlr, minf))
    trex = full_box(b"trex", 0, 0, struct.pack(">IIIII", TRACK_ID, 1, 0, 0, 0))
    return ftyp + box(b"moov", mvhd, trak, box(b"mvex", trex))


def _packed_language(tag: str) -> int:
    """ISO 639-2/T three letters, 5 bits each (ISO/IEC 14496-12 §8.4.2.3); 'und' if none."""
    import langcodes  # noqa: PLC0415 (only text tracks need it here)
    try:
        code = langcodes.Language.get(tag).to_alpha3() if tag != "und" else "und"
    except LookupError:
        code = "und"
    a, b, c = (ord(ch) - 0x60 for ch in code[:3])
    return (a << 10) | (b << 5) | c


def vtt_cue(text: str, settings: str = "", identifier: str = "") -> bytes:
    """One cue's vttc box: iden, sttg, payl (§7.3)."""
    parts = []
    if identifier:
        parts.append(box(b"iden", identifier.encode("utf-8")))
    if settings:
        parts.append(box(b"sttg", settings.encode("utf-8")))
    parts.append(box(b"payl", text.encode("utf-8")))
    return box(b"vttc", *parts)


EMPTY = box(b"vtte")


def spans(cues: Sequence[tuple[int, int, bytes]], start: int,
          end: int) -> tuple[list[Sample], bytes]:
    """The samples of [start, end) from (cue start, cue end, vttc box) triples: one sample per
    span between consecutive cue boundaries, holding the cues shown through it (a vtte when
    none is). Returns the samples and their bytes, in order."""
    edges = {start, end}
    for begin, finish, _ in cues:
        edges.update(t for t in (begin, finish) if start < t < end)
    times = sorted(edges)
    samples: list[Sample] = []
    data: list[bytes] = []
    for a, b in itertools.pairwise(times):
        shown = b"".join(body for begin, finish, body in cues if begin <= a and finish >= b)
        payload = shown or EMPTY
        samples.append(Sample(b - a, len(payload), SYNC_FLAGS, 0))
        data.append(payload)
    return samples, b"".join(data)
