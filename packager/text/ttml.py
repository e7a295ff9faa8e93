"""TTML (IMSC1 text profile, W3C TTML2 / IMSC 1.1) read into cues with the stdlib XML parser.

No library reads TTML into cues for us: pysubs2 and webvtt-py have no TTML reader, and the
TTML libraries on PyPI render or convert whole documents without timing errors we can place.
This reader covers what IMSC1 text subtitles use: timing on body/div/p (begin, end, dur;
clock times with frames, offset times in h/m/s/ms/f/t), <br/>, italic/bold/underline from
inline or referenced styles, and regions at the top of the picture (as WebVTT `line:0`).
Every error names the file and the line of the element at fault.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from xml.parsers import expat

from packager.text.cues import Cue, TextError, TextTrack, escape_text

TT = "{http://www.w3.org/ns/ttml}"
TTS = "{http://www.w3.org/ns/ttml#styling}"
TTP = "{http://www.w3.org/ns/ttml#parameter}"
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
_CLOCK = re.compile(r"^(\d{2,}):(\d{2}):(\d{2})(?:(\.\d+)|:(\d{2,})(\.\d+)?)?$")
_OFFSET = re.compile(r"^(\d+(?:\.\d+)?)(h|ms|m|s|f|t)$")


def _parse_xml(text: str, path: Path) -> tuple[ET.Element, dict[int, int]]:
    """The element tree (ElementTree's {namespace}name form) and each element's line, read
    with expat directly: ElementTree's own parser does not tell where an element is."""
    builder = ET.TreeBuilder()
    lines: dict[int, int] = {}
    parser = expat.ParserCreate(namespace_separator="}")

    def start(name: str, attrs: dict[str, str]) -> None:
        element = builder.start(_qname(name), {_qname(k): v for k, v in attrs.items()})
        lines[id(element)] = parser.CurrentLineNumber

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda name: builder.end(_qname(name))
    parser.CharacterDataHandler = builder.data
    try:
        # The text is already decoded: an XML declaration's encoding no longer applies.
        parser.Parse(re.sub(r"^\s*<\?xml[^>]*\?>", "", text, count=1), True)
        root = builder.close()
    except expat.ExpatError as exc:
        raise TextError(f"{path}:{exc.lineno}: not well-formed XML "
                        f"({expat.ErrorString(exc.code)})") from exc
    return root, lines


def _qname(name: str) -> str:
    return "{" + name if "}" in name else name


@dataclass(frozen=True)
class _Rates:
    frame_rate: Fraction
    tick_rate: int


def parse_ttml(text: str, path: Path) -> TextTrack:
    root, lines = _parse_xml(text, path)
    if root.tag != f"{TT}tt":
        raise TextError(f"{path}:1: not a TTML document (root <{root.tag}>, expected "
                        "<tt> in http://www.w3.org/ns/ttml)")
    reader = _Reader(path, lines, _rates(root, path), _styles(root), _regions(root))
    body = root.find(f"{TT}body")
    cues: list[Cue] = []
    if body is not None:
        reader.walk(body, Fraction(0), None, set(), cues)
    return TextTrack(tuple(sorted(cues, key=lambda c: (c.start, c.end))))


def _rates(root: ET.Element, path: Path) -> _Rates:
    try:
        rate = Fraction(int(root.get(f"{TTP}frameRate", "30")))
        multiplier = root.get(f"{TTP}frameRateMultiplier")
        if multiplier:
            num, den = multiplier.split()
            rate *= Fraction(int(num), int(den))
        ticks = int(root.get(f"{TTP}tickRate", "1"))
    except ValueError as exc:
        raise TextError(f"{path}:1: ttp:frameRate / frameRateMultiplier / tickRate: {exc}") from exc
    return _Rates(rate, ticks)


def _flags(element: ET.Element) -> set[str]:
    found = set()
    if element.get(f"{TTS}fontStyle") in ("italic", "oblique"):
        found.add("i")
    if element.get(f"{TTS}fontWeight") == "bold":
        found.add("b")
    if "underline" in (element.get(f"{TTS}textDecoration") or ""):
        found.add("u")
    return found


def _styles(root: ET.Element) -> dict[str, set[str]]:
    styles: dict[str, set[str]] = {}
    for style in root.iter(f"{TT}style"):
        ident = style.get(XML_ID)
        if ident:
            flags = _flags(style)
            for ref in (style.get("style") or "").split():
                flags |= styles.get(ref, set())
            styles[ident] = flags
    return styles


def _regions(root: ET.Element) -> dict[str, str]:
    """Region id -> WebVTT settings: a region in the top half of the picture, or one whose
    text is aligned to its top, puts the cue at the top (line:0)."""
    out: dict[str, str] = {}
    for region in root.iter(f"{TT}region"):
        ident = region.get(XML_ID)
        if not ident:
            continue
        origin = re.findall(r"([\d.]+)%", region.get(f"{TTS}origin") or "")
        top = len(origin) == 2 and float(origin[1]) < 50
        align = region.get(f"{TTS}displayAlign")
        out[ident] = "line:0" if (top and align != "after") or align == "before" else ""
    return out


@dataclass(frozen=True)
class _Reader:
    path: Path
    lines: dict[int, int]
    rates: _Rates
    styles: dict[str, set[str]]
    regions: dict[str, str]

    def fail(self, element: ET.Element, message: str) -> TextError:
        return TextError(f"{self.path}:{self.lines.get(id(element), 1)}: {message}")

    def time(self, element: ET.Element, name: str) -> Fraction | None:
        value = element.get(name)
        if value is None:
            return None
        text = value.strip()
        clock = _CLOCK.match(text)
        if clock:
            hours, minutes, seconds, fraction, frames, subframes = clock.groups()
            total = Fraction(int(hours) * 3600 + int(minutes) * 60 + int(seconds))
            if fraction:
                total += Fraction(fraction)
            if frames:
                total += (int(frames) + Fraction(subframes or "0")) / self.rates.frame_rate
            if int(minutes) > 59 or int(seconds) > 60:
                raise self.fail(element, f"malformed time {name}={value!r}")
            return total
        offset = _OFFSET.match(text)
        if offset is None:
            raise self.fail(element, f"malformed time {name}={value!r} (TTML writes "
                            "00:00:01.500, 00:00:01:12 or 1.5s)")
        number, unit = Fraction(offset.group(1)), offset.group(2)
        scale = {"h": Fraction(3600), "m": Fraction(60), "s": Fraction(1),
                 "ms": Fraction(1, 1000), "f": 1 / self.rates.frame_rate,
                 "t": Fraction(1, self.rates.tick_rate)}[unit]
        return number * scale

    def span(self, element: ET.Element, parent_begin: Fraction,
             parent_end: Fraction | None) -> tuple[Fraction, Fraction | None]:
        begin = self.time(element, "begin")
        end = self.time(element, "end")
        dur = self.time(element, "dur")
        start = parent_begin + (begin or 0)
        stop = parent_begin + end if end is not None else None
        if dur is not None:
            stop = start + dur if stop is None else min(stop, start + dur)
        if parent_end is not None:
            stop = parent_end if stop is None else min(stop, parent_end)
        return start, stop

    def walk(self, element: ET.Element, begin: Fraction, end: Fraction | None,
             flags: set[str], cues: list[Cue], region: str = "") -> None:
        start, stop = self.span(element, begin, end)
        flags = flags | self.element_flags(element)
        region = element.get("region") or region
        if element.tag == f"{TT}p":
            if stop is None:
                raise self.fail(element, "<p> has no end (give it end or dur, or its div)")
            body = self.content(element, flags).strip("\n")
            if body.strip() and stop > start:
                cues.append(Cue(_ms(start), _ms(stop), body, self.regions.get(region, "")))
            return
        for child in element:
            if child.tag in (f"{TT}div", f"{TT}p"):
                self.walk(child, start, stop, flags, cues, region)

    def element_flags(self, element: ET.Element) -> set[str]:
        flags = _flags(element)
        for ref in (element.get("style") or "").split():
            flags |= self.styles.get(ref, set())
        return flags

    def content(self, element: ET.Element, outer: set[str]) -> str:
        """The text of a <p> or <span> as cue text: <br/> a line break, styles as tags."""
        out = [escape_text(_collapse(element.text or ""))]
        for child in element:
            if child.tag == f"{TT}br":
                out.append("\n")
            elif child.tag == f"{TT}span":
                own = self.element_flags(child) - outer
                inner = self.content(child, outer | own)
                tags = sorted(own)
                out.append("".join(f"<{t}>" for t in tags) + inner
                           + "".join(f"</{t}>" for t in reversed(tags)))
            out.append(escape_text(_collapse(child.tail or "")))
        text = "".join(out)
        if element.tag == f"{TT}p":
            tags = sorted(outer)
            text = "".join(f"<{t}>" for t in tags) + text + "".join(
                f"</{t}>" for t in reversed(tags))
        return "\n".join(line.strip() for line in text.split("\n"))


def _collapse(text: str) -> str:
    """XML whitespace handling of TTML (xml:space default): runs of white space are one."""
    return re.sub(r"\s+", " ", text)


def _ms(seconds: Fraction) -> int:
    return int(seconds * 1000 + Fraction(1, 2))
