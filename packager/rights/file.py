"""Reading rights from a title file's `rights:` (or a rights file of its own); errors name
file:line: field.

    rights:
      - id: jp-hd                      # [a-z0-9_-], names its manifests and edge data
        territories: [JP, KR, jpkr]    # ISO 3166-1 alpha-2 codes and/or regions.yaml ids
        start: 2025-03-01T00:00:00Z    # RFC 3339; in force from (inclusive) ...
        end: 2026-03-01T00:00:00Z      # ... until (exclusive); none: no end
        max_height: 1080               # tallest video rendition; none: every rung
        audio: [ja, en]                # licensed audio languages (BCP 47); none: all
        subtitles: [ja]                # licensed text languages; [] none; none: all

A territory in two grants whose windows share an instant is refused, naming both grants'
lines: at the edge a viewer must have one answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from packager.errors import InputError
from packager.rights.instants import InstantError, format_instant, parse_instant
from packager.rights.model import Grant, GrantOrigin, Rights
from packager.rights.territories import RegionCountries, TerritoryError, expand
from packager.title.languages import LanguageError, normalise
from packager.yamlfile import LineMapping, Reader, load_yaml

KEY = "rights"
FIELDS = ("id", "territories", "start", "end", "max_height", "audio", "subtitles")
#: Grant ids name files (master.grant-<id>.m3u8) and edge data: short, lower case, no dots.
GRANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def has_rights(path: Path) -> bool:
    """Whether a title (or rights) file has a `rights:` section."""
    return KEY in load_yaml(path, "title file")


def rights_for(rights_file: Path | None, title_file: Path | None,
               regions: Callable[[], RegionCountries]) -> Rights | None:
    """`--rights FILE`, else the title file's `rights:`, else none (an unrestricted release);
    `regions` is asked for only when there are rights to read."""
    in_title = title_file is not None and has_rights(title_file)
    if rights_file is not None and in_title:
        raise InputError(f"--rights {rights_file}: the title file {title_file} has rights: "
                         "too; keep one of them")
    path = rights_file or (title_file if in_title else None)
    return load_rights(path, regions()) if path is not None else None


def load_rights(path: Path, regions: RegionCountries) -> Rights:
    """The `rights:` of a YAML file (a title file, or a file holding only rights)."""
    doc = load_yaml(path, "rights file")
    if KEY not in doc:
        raise InputError(f"{path}:1: rights: missing (a list of grants)")
    return parse_rights(Reader(path), doc, regions)


def parse_rights(r: Reader, doc: LineMapping, regions: RegionCountries) -> Rights:
    grants: list[Grant] = []
    for i, m in enumerate(r.items(doc, KEY, KEY)):
        grant = _grant(r, m, i, regions)
        for other in grants:
            if other.id == grant.id:
                raise r.fail(m, "id", f"{KEY}[{i}].id", f"duplicate grant id {grant.id!r} "
                             f"(also line {_line(other)})")
            shared = sorted(set(other.territories) & set(grant.territories))
            if shared and other.overlaps(grant):
                raise r.fail(m, "territories", f"{KEY}[{i}].territories",
                             f"{shared[0]} is in grant {grant.id!r} (line {m.line}) and grant "
                             f"{other.id!r} (line {_line(other)}) at once: {_window(grant)} "
                             f"overlaps {_window(other)}")
        grants.append(grant)
    return Rights(tuple(grants), str(r.path))


def _line(grant: Grant) -> int:
    return grant.origin.line if grant.origin else 0


def _window(grant: Grant) -> str:
    end = format_instant(grant.end) if grant.end else "no end"
    return f"[{format_instant(grant.start)}, {end})"


def _grant(r: Reader, m: LineMapping, i: int, regions: RegionCountries) -> Grant:
    name = f"{KEY}[{i}]"
    r.unknown(m, name, set(FIELDS))
    grant_id = r.text(m, "id", name)
    if not GRANT_ID.match(grant_id):
        raise r.fail(m, "id", f"{name}.id", f"{grant_id!r} must be 1-32 of a-z 0-9 _ - "
                     "(it names the grant's manifests)")
    start = _instant(r, m, "start", name, required=True)
    assert start is not None  # required
    end = _instant(r, m, "end", name, required=False)
    if end is not None and end <= start:
        raise r.fail(m, "end", f"{name}.end", f"{format_instant(end)} is not after start "
                     f"{format_instant(start)}")
    max_height = (int(r.number(m, "max_height", name, None, 1, 100_000, integer=True))
                  if m.get("max_height") is not None else None)
    return Grant(
        id=grant_id, territories=_territories(r, m, name, regions), start=start, end=end,
        max_height=max_height,
        audio=_languages(r, m, "audio", name, allow_empty=False),
        subtitles=_languages(r, m, "subtitles", name, allow_empty=True),
        origin=GrantOrigin(str(r.path), i, m.line, tuple(m.lines.items())),
    )


def _instant(r: Reader, m: LineMapping, key: str, name: str, required: bool
             ) -> datetime | None:
    value = m.get(key)
    if value is None:
        if required:
            raise r.fail(m, key, f"{name}.{key}", "missing" if key not in m else "is empty")
        return None
    try:
        return parse_instant(value)
    except InstantError as exc:
        raise r.fail(m, key, f"{name}.{key}", str(exc)) from None


def _territories(r: Reader, m: LineMapping, name: str,
                 regions: RegionCountries) -> tuple[str, ...]:
    where = f"{name}.territories"
    value = m.get("territories")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise r.fail(m, "territories", where, "missing" if "territories" not in m else
                     "must be a non-empty list of country codes and region ids")
    countries: set[str] = set()
    for token in value:
        if isinstance(token, bool):  # YAML 1.1 reads NO (Norway) as false
            raise r.fail(m, "territories", where, f"{token!r} is not a territory: quote it "
                         '("NO" for Norway; YAML reads a bare NO as false)')
        if not isinstance(token, str) or not token.strip():
            raise r.fail(m, "territories", where, f"{token!r} is not a territory")
        try:
            countries.update(expand(token.strip(), regions))
        except TerritoryError as exc:
            raise r.fail(m, "territories", where, str(exc)) from None
    return tuple(sorted(countries))


def _languages(r: Reader, m: LineMapping, key: str, name: str,
               allow_empty: bool) -> tuple[str, ...] | None:
    value = m.get(key)
    where = f"{name}.{key}"
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or (not value and not allow_empty):
        raise r.fail(m, key, where, "must be a non-empty list of BCP 47 language tags "
                     "(leave it out for every language)")
    tags: list[str] = []
    for text in value:
        if isinstance(text, bool):
            raise r.fail(m, key, where, f"{text!r} is a language tag YAML read as "
                         'true/false: quote it ("no" for Norwegian)')
        try:
            tag = normalise(str(text))
        except LanguageError as exc:
            raise r.fail(m, key, where, str(exc)) from None
        if tag not in tags:
            tags.append(tag)
    return tuple(tags)
