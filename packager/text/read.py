"""Reading a subtitle file of any format we take (WebVTT, SRT, TTML, ASS/SSA) into cues.

Encodings: UTF-8, UTF-8 with a BOM, and UTF-16 with a BOM (as Windows subtitle tools save);
anything else is refused rather than guessed (a Latin-1 guess turns Arabic into mojibake
that would ship). SRT is read here, not by pysubs2: pysubs2 folds a malformed timing line
into the previous cue's text without a word, and turns <b> into ASS overrides it then drops
when writing WebVTT. ASS/SSA, whose override tags and styles are a format of their own, is
read by pysubs2; its italic/bold/underline overrides become <i>/<b>/<u> and its numpad
alignment (\\an) becomes WebVTT line/align settings.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from packager.files import read_bytes
from packager.text.cues import Cue, TextError, TextTrack, keep_vtt_tags, parse_time
from packager.text.ttml import parse_ttml
from packager.text.webvtt import SIGNATURE, parse_webvtt


def read_text_file(path: Path) -> TextTrack:
    """The cues of a subtitle file, its format told by its content (extensions lie)."""
    text = decode(read_bytes(path, "subtitle file"), path)
    if not text.strip():
        raise TextError(f"{path}: has no subtitles (the file is blank)")
    kind = sniff(text)
    if kind == "webvtt":
        track = parse_webvtt(text, path)
    elif kind == "ttml":
        track = parse_ttml(text, path)
    elif kind == "ass":
        track = parse_ass(text, path)
    else:
        track = parse_srt(text, path)
    if not track.cues:
        raise TextError(f"{path}: has no cues")
    return track


def decode(raw: bytes, path: Path) -> str:
    """UTF-8 (a BOM is dropped) or UTF-16 with its BOM; else a TextError."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise TextError(f"{path}: UTF-16 text that does not decode ({exc.reason})") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TextError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save it "
                        "as UTF-8 (UTF-8 or UTF-16 with a BOM are converted)") from exc


def sniff(text: str) -> str:
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith(SIGNATURE):
        return "webvtt"
    if head.startswith("<"):
        return "ttml"
    if head.startswith("[Script Info]") or re.search(r"^\[V4\+? Styles\]", head, re.M):
        return "ass"
    return "srt"


_SRT_TIMING = re.compile(r"^\s*(\S+)\s*-->\s*(\S+)(.*)$")


def parse_srt(text: str, path: Path) -> TextTrack:
    """SubRip: numbered blocks of a timing line and text; <i> <b> <u> kept, <font> dropped."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cues: list[Cue] = []
    i = 0
    while i < len(lines):
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i >= len(lines):
            break
        start = i
        while i < len(lines) and lines[i].strip():
            i += 1
        block = lines[start:i]
        timing_at = 1 if block[0].strip().isdigit() and len(block) > 1 else 0
        match = _SRT_TIMING.match(block[timing_at])
        where = f"{path}:{start + timing_at + 1}"
        if match is None:
            raise TextError(f"{where}: expected a timing line like "
                            f"00:00:01,000 --> 00:00:02,000, got {block[timing_at].strip()!r}")
        begin, end = parse_time(match.group(1)), parse_time(match.group(2))
        if begin is None or end is None:
            raise TextError(f"{where}: malformed timestamp in {block[timing_at].strip()!r}")
        if end <= begin:
            raise TextError(f"{where}: cue ends before it starts ({block[timing_at].strip()!r})")
        body = "\n".join(line.strip() for line in block[timing_at + 1:])
        if body:
            cues.append(Cue(begin, end, keep_vtt_tags(body)))
    return TextTrack(tuple(sorted(cues, key=lambda c: (c.start, c.end))))


#: ASS override tags we carry: italic, bold, underline on (1) and off (0).
_ASS_STYLE = re.compile(r"\\([ibu])(\d)")
_ASS_ALIGN = re.compile(r"\\an([1-9])")


def parse_ass(text: str, path: Path) -> TextTrack:
    import pysubs2  # noqa: PLC0415 (only ASS files need it)
    try:
        subs = pysubs2.SSAFile.from_string(text, format_="ass")
    except Exception as exc:  # pysubs2 raises bare ValueErrors and its own errors alike
        raise TextError(f"{path}: not a readable ASS/SSA file ({exc})") from exc
    cues = []
    for event in subs:
        if event.is_comment or event.end <= event.start:
            continue
        body, settings = _ass_text(event.text)
        if body.strip():
            cues.append(Cue(event.start, event.end, body, settings))
    return TextTrack(tuple(sorted(cues, key=lambda c: (c.start, c.end))))


def _ass_text(text: str) -> tuple[str, str]:
    """ASS event text as WebVTT cue text and settings."""
    out: list[str] = []
    open_tags: list[str] = []
    settings = ""
    pos = 0
    for match in re.finditer(r"\{([^}]*)\}", text):
        out.append(_ass_plain(text[pos : match.start()]))
        for tag, on in _ASS_STYLE.findall(match.group(1)):
            if on != "0" and tag not in open_tags:
                out.append(f"<{tag}>")
                open_tags.append(tag)
            elif on == "0" and tag in open_tags:
                out.append(f"</{tag}>")
                open_tags.remove(tag)
        align = _ASS_ALIGN.search(match.group(1))
        if align:
            settings = _ALIGN_SETTINGS[int(align.group(1))]
        pos = match.end()
    out.append(_ass_plain(text[pos:]))
    out += [f"</{tag}>" for tag in reversed(open_tags)]
    return "".join(out), settings


def _ass_plain(text: str) -> str:
    text = text.replace("\\N", "\n").replace("\\n", "\n").replace("\\h", "\u00a0")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


#: ASS numpad alignment (\\an1..9: bottom-left .. top-right) as WebVTT settings.
_ALIGN_SETTINGS = {
    1: "align:start", 2: "", 3: "align:end",
    4: "line:50% align:start", 5: "line:50%", 6: "line:50% align:end",
    7: "line:0 align:start", 8: "line:0", 9: "line:0 align:end",
}
