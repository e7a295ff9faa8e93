"""Reading a Title from `--title FILE.yaml` and the side-file options; errors name where.

A title file lists many languages, one a line; file paths are relative to the title file:

    language: en                # the source's own audio language (its tag is missing or wrong)
    default_language: es-419    # DEFAULT audio and subtitle language
    audio:                      # dubs: LANG: FILE (the first audio stream of FILE)
      es-419: dubs/es-419.mp4
    described_audio:            # audio description for the blind
      en: dubs/en-ad.mp4
    subtitles:                  # WebVTT, SRT, TTML (IMSC1 text) or ASS
      ar: subs/ar.srt
    forced_subtitles:           # forced narratives
      en: subs/en-forced.vtt
    captions:                   # SDH / closed captions
      en: subs/en-sdh.ttml
    rights:                     # where and when it may play (packager/rights/file.py)
      - {id: jp, territories: [JP], start: 2025-03-01T00:00:00Z}

Options add to the file's tracks. Every mistake is one InputError naming the option
(``--audio es-XX=dub.mp4: ...``) or the file, line and field (``title.yaml:7: subtitles.xx``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from packager.errors import InputError
from packager.title.languages import LanguageError, normalise
from packager.title.model import SIDE_OPTIONS, SideFile, Title

if TYPE_CHECKING:
    from packager.yamlfile import LineMapping, Reader

#: `rights:` is read with the regions it may name, by packager/rights/file.py.
_FIELDS = {"language", "default_language", "rights",
           *(field for field, _, _ in SIDE_OPTIONS.values())}


def resolve_title(
    title_file: Path | None,
    side_options: Mapping[str, Sequence[str]],
    language: str | None = None,
    default_language: str | None = None,
) -> Title:
    """One Title from a title file (or none) and the options: `side_options` maps an option
    of SIDE_OPTIONS (e.g. "--audio") to its LANG=FILE values."""
    title = load_title(title_file) if title_file is not None else Title()
    side = list(title.side_files)
    for option, values in side_options.items():
        _, kind, role = SIDE_OPTIONS[option]
        for value in values:
            origin = f"{option} {value}"
            lang, sep, file = value.partition("=")
            if not sep or not lang.strip() or not file.strip():
                raise InputError(f"{origin}: expected LANG=FILE, like es-419=dub.mp4")
            side.append(SideFile(kind, _tag(lang, origin), role, Path(file.strip()), origin))
    _check_side_files(side)
    return Title(
        side_files=tuple(side),
        language=_tag(language, "--language") if language else title.language,
        default_language=(_tag(default_language, "--default-language") if default_language
                          else title.default_language),
    )


def load_title(path: Path) -> Title:
    """A title file: see the module's docstring for its fields."""
    from packager.yamlfile import Reader, load_yaml  # YAML only when there is a title file
    doc = load_yaml(path, "title file")
    r = Reader(path)
    r.unknown(doc, "", _FIELDS)
    side: list[SideFile] = []
    for field, kind, role in SIDE_OPTIONS.values():
        entries = r.mapping(doc, field, field, required=False)
        for key, value in entries.items():
            origin = f"{path}:{entries.lines.get(key, entries.line)}"
            if key in ("True", "False"):  # YAML 1.1 reads a bare no / yes / on / off as a bool
                raise r.fail(entries, key, f"{field}.{key}", "a language tag read as true/false "
                             "by YAML: quote it (\"no\" for Norwegian)")
            tag = _field_tag(r, entries, key, f"{field}.{key}", key)
            if not isinstance(value, str) or not value.strip():
                raise r.fail(entries, key, f"{field}.{key}", "must be a file name")
            side.append(SideFile(kind, tag, role, path.parent / value.strip(), origin))
    return Title(
        side_files=tuple(side),
        language=_doc_tag(r, doc, "language"),
        default_language=_doc_tag(r, doc, "default_language"),
    )


def _doc_tag(r: Reader, doc: LineMapping, key: str) -> str | None:
    return _field_tag(r, doc, key, key, str(doc[key])) if key in doc else None


def _field_tag(r: Reader, m: LineMapping, key: str, name: str, text: str) -> str:
    try:
        return normalise(text)
    except LanguageError as exc:
        raise r.fail(m, key, name, str(exc)) from None


def _tag(text: str, origin: str) -> str:
    try:
        return normalise(text)
    except LanguageError as exc:
        raise InputError(f"{origin}: {exc}") from None


def _check_side_files(side: Sequence[SideFile]) -> None:
    """Each (language, role) once; every file present and not empty (checked before anything
    is encoded, so a typo costs nothing)."""
    seen: dict[tuple[str, str], SideFile] = {}
    for item in side:
        key = (item.language, item.role)
        if key in seen:
            raise InputError(f"{item.origin}: {item.language} {item.role} is given twice "
                             f"(also {seen[key].origin})")
        seen[key] = item
        if not item.path.is_file():
            what = "is a directory" if item.path.is_dir() else "no such file"
            raise InputError(f"{item.path}: {what} (from {item.origin})")
        if item.path.stat().st_size == 0:
            raise InputError(f"{item.path}: file is empty (0 bytes) (from {item.origin})")
