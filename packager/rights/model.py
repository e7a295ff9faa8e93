"""The rights model: grants (territories x window x what may be shown) and the questions asked
of them: which grant is in force for a country at an instant, and when the next one opens.

A grant's window is [start, end): in force from its start (inclusive) until its end
(exclusive), or for ever without an end. One territory is never in two grants at once
(packager/rights/file.py refuses overlapping windows), so at most one grant is in force for a
country at any instant: the question has one answer, at the edge as here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class GrantOrigin:
    """Where a grant was written, for errors found after parsing (against the ladder, the
    title's languages): the file, the grant's index and line, and each field's line."""

    path: str
    index: int
    line: int
    lines: tuple[tuple[str, int], ...] = ()

    def where(self, field_name: str | None = None) -> str:
        """`rights.yaml:12: rights[1].max_height` (the field's line, else the grant's)."""
        line = dict(self.lines).get(field_name or "", self.line)
        name = f"rights[{self.index}]" + (f".{field_name}" if field_name else "")
        return f"{self.path}:{line}: {name}"


@dataclass(frozen=True)
class Grant:
    id: str
    territories: tuple[str, ...]  # ISO 3166-1 alpha-2 codes, sorted, each once
    start: datetime  # UTC, inclusive
    end: datetime | None = None  # UTC, exclusive; None: no end
    max_height: int | None = None  # tallest video rendition allowed; None: every one
    audio: tuple[str, ...] | None = None  # BCP 47 tags licensed; None: every language
    subtitles: tuple[str, ...] | None = None
    origin: GrantOrigin | None = field(default=None, compare=False)

    def in_force(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)

    def covers(self, country: str, at: datetime) -> bool:
        return country in self.territories and self.in_force(at)

    def overlaps(self, other: Grant) -> bool:
        """Whether the two windows share an instant (ends are exclusive)."""
        return ((other.end is None or self.start < other.end)
                and (self.end is None or other.start < self.end))

    def where(self, field_name: str | None = None) -> str:
        return self.origin.where(field_name) if self.origin else f"grant {self.id}"


@dataclass(frozen=True)
class Rights:
    grants: tuple[Grant, ...]
    source: str = ""  # the file they were read from

    @property
    def territories(self) -> tuple[str, ...]:
        return tuple(sorted({c for g in self.grants for c in g.territories}))

    def grant(self, grant_id: str) -> Grant:
        return next(g for g in self.grants if g.id == grant_id)

    def in_force(self, country: str, at: datetime) -> Grant | None:
        """The grant that lets viewers in `country` play at `at`; None: not licensed then."""
        code = country.strip().upper()
        return next((g for g in self.grants if g.covers(code, at)), None)

    def next_opening(self, country: str, at: datetime) -> Grant | None:
        """The earliest grant for `country` whose window opens after `at`."""
        code = country.strip().upper()
        later = [g for g in self.grants if code in g.territories and g.start > at]
        return min(later, key=lambda g: g.start, default=None)

    def current_or_upcoming(self, at: datetime) -> list[Grant]:
        """The grants in force at `at` or opening later: empty means the release can never
        play again anywhere."""
        return [g for g in self.grants if g.end is None or g.end > at]
