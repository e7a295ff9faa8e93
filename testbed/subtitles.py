"""Generated subtitle files for tests, the demo and the bench: every format and encoding we
take, with right-to-left (Arabic, Hebrew) and Thai cue text and the styling that must survive.

Each file holds the same cues (`CUES`, in its language's words), so a test can compare what a
player shows with what was written, at the time it was written for.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

#: Cue lines per language: (start ms, end ms, text). A cue crosses the 2 s and the 4 s marks
#: (segment boundaries of 2 s segments) and two cues overlap, as real subtitles do.
LINES: dict[str, tuple[str, str, str, str]] = {
    "en": ("Hello, world", "The night is young", "Run!", "See you tomorrow"),
    "ar": ("مرحبا بالعالم", "الليل ما زال في أوله", "اهرب!", "أراك غدا"),
    "he": ("שלום עולם", "הלילה עוד צעיר", "רוץ!", "נתראה מחר"),
    "th": ("สวัสดีชาวโลก", "ค่ำคืนยังอีกยาวไกล", "วิ่ง!", "พบกันพรุ่งนี้"),
    "es-419": ("Hola, mundo", "La noche es joven", "¡Corre!", "Nos vemos mañana"),
    "ja": ("こんにちは世界", "夜はまだ若い", "走れ!", "また明日"),
    "ko": ("안녕하세요 세계", "밤은 아직 젊다", "뛰어!", "내일 봐요"),
    "pt-BR": ("Olá, mundo", "A noite é uma criança", "Corra!", "Até amanhã"),
    "zh-Hant": ("你好，世界", "夜還很長", "快跑！", "明天見"),
    "fr": ("Bonjour le monde", "La nuit est jeune", "Cours !", "À demain"),
}
TIMES = ((500, 1800), (1500, 2600), (3000, 3500), (3900, 5200))


@dataclass(frozen=True)
class Expected:
    """A cue as a player should show it: times in ms, plain text (no tags)."""

    start: int
    end: int
    text: str


def expected(language: str, duration_ms: int | None = None) -> list[Expected]:
    cues = [Expected(a, b, text) for (a, b), text in zip(TIMES, LINES[language], strict=True)]
    return [c for c in cues if duration_ms is None or c.start < duration_ms]


def _srt_time(ms: int) -> str:
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def _vtt_time(ms: int) -> str:
    return _srt_time(ms).replace(",", ".")


def srt(language: str) -> str:
    """SubRip with <i> on the first cue and <b> on the third."""
    lines = LINES[language]
    texts = [f"<i>{lines[0]}</i>", lines[1], f"<b>{lines[2]}</b>", lines[3]]
    return "".join(f"{i}\n{_srt_time(a)} --> {_srt_time(b)}\n{text}\n\n"
                   for i, ((a, b), text) in enumerate(zip(TIMES, texts, strict=True), 1))


def webvtt(language: str) -> str:
    """WebVTT with positioning on the first cue and a top line on the second."""
    settings = ("position:10% align:start", "line:0", "", "")
    blocks = [f"{_vtt_time(a)} --> {_vtt_time(b)}{' ' + s if s else ''}\n{text}"
              for (a, b), s, text in zip(TIMES, settings, LINES[language], strict=True)]
    return "WEBVTT\n\n" + "\n\n".join(blocks) + "\n"


def ttml(language: str) -> str:
    """IMSC1 text profile TTML: an italic span, a <br/>, a top region, offset and clock times."""
    lines = LINES[language]
    (a0, b0), (a1, b1), (a2, b2), (a3, b3) = TIMES
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<tt xmlns="http://www.w3.org/ns/ttml" xmlns:tts="http://www.w3.org/ns/ttml#styling"
    xmlns:ttp="http://www.w3.org/ns/ttml#parameter" ttp:frameRate="25" xml:lang="{language}">
  <head>
    <styling><style xml:id="italic" tts:fontStyle="italic"/></styling>
    <layout><region xml:id="top" tts:origin="10% 5%" tts:extent="80% 15%"/></layout>
  </head>
  <body><div>
    <p begin="{a0}ms" end="{b0}ms"><span style="italic">{lines[0]}</span></p>
    <p begin="{a1 / 1000:.3f}s" end="{b1 / 1000:.3f}s" region="top">{lines[1]}</p>
    <p begin="{_vtt_time(a2)}" end="{_vtt_time(b2)}">{lines[2]}</p>
    <p begin="{_vtt_time(a3)}" dur="{b3 - a3}ms">{lines[3]}</p>
  </div></body>
</tt>
"""


def ass(language: str) -> str:
    """ASS with italic and bold overrides and a top-centre (\\an8) cue."""
    lines = LINES[language]
    texts = [f"{{\\i1}}{lines[0]}{{\\i0}}", f"{{\\an8}}{lines[1]}", f"{{\\b1}}{lines[2]}",
             lines[3]]

    def t(ms: int) -> str:  # h:mm:ss.cc (centiseconds)
        return _srt_time(ms)[1:].replace(",", ".")[:-1]

    events = "".join(f"Dialogue: 0,{t(a)},{t(b)},Default,,0,0,0,,{text}\n"
                     for (a, b), text in zip(TIMES, texts, strict=True))
    return ("[Script Info]\nScriptType: v4.00+\nPlayResX: 640\nPlayResY: 360\n\n"
            "[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, Bold, Italic, "
            "Alignment\nStyle: Default,Arial,20,&H00FFFFFF,0,0,2\n\n"
            "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, "
            f"Effect, Text\n{events}")


WRITERS = {"srt": srt, "vtt": webvtt, "ttml": ttml, "ass": ass}


def write_subtitles(path: Path, language: str, fmt: str, encoding: str = "utf-8") -> Path:
    """One file: `fmt` a key of WRITERS; `encoding` utf-8, utf-8-sig (with a BOM), utf-16
    (with a BOM, as Windows tools save) or any other codec (which we must refuse)."""
    text = WRITERS[fmt](language)
    if encoding == "utf-16":
        data = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    else:
        data = text.encode(encoding)
    path.write_bytes(data)
    return path
