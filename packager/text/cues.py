"""The cue model every text format is read into: times in milliseconds, WebVTT cue text.

Milliseconds are WebVTT's own precision (its timestamps have three decimals), so a cue read
from any format is written back without rounding again. Cue text is WebVTT cue text (RFC-less:
W3C WebVTT §4.2.2): markup as <i>, <b>, <u>, and & < > escaped; everything else is the
file's characters, unchanged (Arabic, Hebrew, Thai: byte-exact once encoded as UTF-8).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packager.errors import InputError


class TextError(InputError):
    """A text file that cannot be read: names the file and, where one is to blame, the line."""


@dataclass(frozen=True)
class Cue:
    start: int  # ms
    end: int  # ms, > start
    text: str  # WebVTT cue text (may span lines)
    settings: str = ""  # WebVTT cue settings: "position:10% align:start line:0"
    identifier: str = ""


@dataclass(frozen=True)
class TextTrack:
    """A whole text file: its cues in start order and the WebVTT header blocks (STYLE,
    REGION) that cue text and settings may refer to."""

    cues: tuple[Cue, ...]
    header: tuple[str, ...] = ()


_TIME = re.compile(r"^(?:(\d+):)?([0-5]\d):([0-5]\d)[.,](\d{3})$")


def parse_time(text: str) -> int | None:
    """'01:02:03.456', '02:03.456' (or with a comma, as SRT writes) in ms; None if malformed."""
    match = _TIME.match(text.strip())
    if match is None:
        return None
    hours, minutes, seconds, millis = match.groups()
    return ((int(hours or 0) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(millis)


def format_time(ms: int) -> str:
    """WebVTT timestamp with hours: 00:01:02.345."""
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


#: The tags WebVTT cue text has (W3C WebVTT §4.2.2), with optional classes and annotation.
_VTT_TAG = re.compile(r"</?(?:[ibuc]|ruby|rt|lang|v)(?:\.[^\s>]*)?(?:\s[^>]*)?>|<\d[\d:.]*>")


def escape_text(text: str) -> str:
    """Plain text as WebVTT cue text: & and < and > escaped, nothing else touched."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def keep_vtt_tags(text: str) -> str:
    """Text with WebVTT-style tags (SRT's <i>, <b>, <u>): those tags kept, any other markup
    (SRT's <font>) dropped, stray & and < escaped so that the result is valid cue text."""
    out: list[str] = []
    pos = 0
    for match in re.finditer(r"<[^<>]*>", text):
        out.append(_escape_bare(text[pos : match.start()]))
        tag = match.group(0)
        if _VTT_TAG.fullmatch(tag):
            out.append(tag)
        pos = match.end()
    out.append(_escape_bare(text[pos:]))
    return "".join(out)


def _escape_bare(text: str) -> str:
    """& not starting an entity, and lone < >, escaped (entities already written are kept)."""
    text = re.sub(r"&(?![A-Za-z]+;|#\d+;|#x[0-9A-Fa-f]+;)", "&amp;", text)
    return text.replace("<", "&lt;").replace(">", "&gt;")
