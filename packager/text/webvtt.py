"""WebVTT (W3C WebVTT) reading, writing, and cutting into HLS segments (RFC 8216 §3.5).

Our own parser, not pysubs2's or webvtt-py's: pysubs2 drops cue settings (position, line,
align: the positioning players honour) and STYLE/REGION blocks, and neither says which line of
a file holds a malformed timestamp; a release must refuse such a file naming that line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from packager.text.cues import Cue, TextError, TextTrack, format_time, parse_time

SIGNATURE = "WEBVTT"
#: RFC 8216 §3.5: maps cue times to the media timeline. Our CMAF media start at time 0 (tfdt
#: 0, first presentation 0), so cue time 0 is media time 0: MPEGTS 0 and LOCAL 0.
TIMESTAMP_MAP = "X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000"


def parse_webvtt(text: str, path: Path) -> TextTrack:
    """A WebVTT file's cues and STYLE/REGION blocks; a malformed timing line is a TextError
    naming path:line."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    first = lines[0] if lines else ""
    if not first.startswith(SIGNATURE) or first[len(SIGNATURE):][:1] not in ("", " ", "\t"):
        raise TextError(f"{path}:1: a WebVTT file starts with WEBVTT")
    i = 1
    while i < len(lines) and lines[i].strip():  # header lines after the signature
        i += 1
    cues: list[Cue] = []
    header: list[str] = []
    while i < len(lines):
        while i < len(lines) and not lines[i].strip():
            i += 1
        start = i
        while i < len(lines) and lines[i].strip():
            i += 1
        block = lines[start:i]
        if not block:
            break
        word = block[0].split(maxsplit=1)[0] if block[0].strip() else ""
        if word in ("NOTE",):
            continue
        if word in ("STYLE", "REGION") and "-->" not in "".join(block):
            if cues:
                raise TextError(f"{path}:{start + 1}: {word} blocks must come before the cues")
            header.append("\n".join(block))
            continue
        cues.append(_cue(block, start, path))
    return TextTrack(tuple(sorted(cues, key=lambda c: (c.start, c.end))), tuple(header))


def _cue(block: list[str], start: int, path: Path) -> Cue:
    identifier = ""
    timing_at = 0
    if "-->" not in block[0]:
        identifier, timing_at = block[0], 1
        if len(block) < 2 or "-->" not in block[1]:
            raise TextError(f"{path}:{start + 1}: a cue needs a timing line "
                            f"(00:00:01.000 --> 00:00:02.000), got {block[0]!r}")
    line = block[timing_at]
    begin_text, _, rest = line.partition("-->")
    parts = rest.split(maxsplit=1)
    begin = parse_time(begin_text)
    end = parse_time(parts[0]) if parts else None
    where = f"{path}:{start + timing_at + 1}"
    if begin is None or end is None or "," in line.split("-->")[0] + (parts[0] if parts else ""):
        raise TextError(f"{where}: malformed timestamp in {line.strip()!r} "
                        "(WebVTT writes hh:mm:ss.ttt or mm:ss.ttt)")
    if end <= begin:
        raise TextError(f"{where}: cue ends before it starts ({line.strip()!r})")
    settings = parts[1].strip() if len(parts) > 1 else ""
    return Cue(begin, end, "\n".join(block[timing_at + 1:]), settings, identifier)


def cue_block(cue: Cue) -> str:
    """One cue as written in a WebVTT file."""
    timing = f"{format_time(cue.start)} --> {format_time(cue.end)}"
    if cue.settings:
        timing += f" {cue.settings}"
    head = [cue.identifier] if cue.identifier else []
    return "\n".join([*head, timing, cue.text])


def write_webvtt(cues: Sequence[Cue], header: Sequence[str] = (),
                 timestamp_map: bool = False) -> str:
    """A WebVTT document: the signature, X-TIMESTAMP-MAP for an HLS segment, STYLE/REGION
    blocks, the cues."""
    head = SIGNATURE + (f"\n{TIMESTAMP_MAP}" if timestamp_map else "")
    return "\n\n".join([head, *header, *(cue_block(c) for c in cues)]) + "\n"


def cues_between(cues: Sequence[Cue], start: int, end: int) -> list[Cue]:
    """The cues shown during [start, end): a cue crossing a boundary belongs to both segments
    and keeps its own times (RFC 8216 §3.5: a cue that spans segments is in each of them)."""
    return [c for c in cues if c.start < end and c.end > start]
