"""BCP 47 language tags (RFC 5646): checked, normalised, and named in their own language.

`langcodes` (with its `language_data` names) does the work: "spa-419" becomes "es-419", a
container's ISO 639-2 "fre" becomes "fr", and es-419 is named "Español (Latinoamérica)", ar
"العربية", th "ไทย" — the names a viewer picks from in a player's language menu. It is imported
when a tag other than 'und' is met: its tables take 25 ms to load, a third of packaging a
2-second source whose streams say nothing of their language.
"""

from __future__ import annotations

UNDETERMINED = "und"


class LanguageError(ValueError):
    """A tag that is not BCP 47, or names a language, script or region nobody knows."""


def normalise(text: str) -> str:
    """The canonical form of a tag (lower-case language, title-case script, upper-case region,
    ISO 639-1 where one exists); LanguageError for an invalid or unknown tag."""
    tag = text.strip()
    if tag.lower() == UNDETERMINED:
        return UNDETERMINED
    import langcodes
    if not tag or not langcodes.tag_is_valid(tag):
        raise LanguageError(f"{text!r} is not a BCP 47 language tag (like en, es-419, zh-Hant)")
    language = langcodes.Language.get(tag)
    # A well-formed tag can still name nothing: 'qaa' (private use), 'en-XX' (no such region).
    if not language.has_name_data() or "Unknown" in language.display_name():
        raise LanguageError(f"{text!r} is not a known language tag (like en, es-419, zh-Hant)")
    return langcodes.standardize_tag(tag)


def container_language(tag: str) -> str:
    """A stream's container language (ISO 639-2 in MP4/MKV, e.g. 'eng'), normalised; 'und' when
    missing or unusable (`--language` then says what the source's audio is)."""
    try:
        return normalise(tag) if tag else UNDETERMINED
    except LanguageError:
        return UNDETERMINED


def own_name(tag: str) -> str:
    """The language's name in that language, capitalised as a menu entry ('Español
    (Latinoamérica)'); scripts without case are unchanged ('العربية', 'ไทย')."""
    if tag == UNDETERMINED:
        return "Original"
    import langcodes
    name = langcodes.Language.get(tag).autonym()
    return name[:1].upper() + name[1:]
