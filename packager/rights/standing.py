"""Where a title stands in each territory at an instant: the grant in force and what it allows,
when the next opens, or when the last closed. What `rights check` prints and gates on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from packager.errors import InputError
from packager.rights.model import Grant, Rights
from packager.rights.territories import RegionCountries, TerritoryError, expand


@dataclass(frozen=True)
class Standing:
    territory: str  # ISO 3166-1 alpha-2
    in_force: Grant | None
    next: Grant | None  # the next grant to open there
    last: Grant | None  # the grant that closed last there (none in force)
    required: bool  # named by --require

    @property
    def licensed(self) -> bool:
        return self.in_force is not None


def required_countries(tokens: Sequence[str], regions: RegionCountries) -> tuple[str, ...]:
    """--require's territories and regions, expanded."""
    out: list[str] = []
    for token in tokens:
        try:
            codes = expand(token.strip(), regions)
        except TerritoryError as exc:
            raise InputError(f"--require {token}: {exc}") from None
        out += [code for code in codes if code not in out]
    return tuple(out)


def standings(rights: Rights, at: datetime, required: Sequence[str] = ()) -> list[Standing]:
    """Every territory of the rights and every required one, in code order."""
    out = []
    for code in sorted({*rights.territories, *required}):
        closed = [g for g in rights.grants
                  if code in g.territories and g.end is not None and g.end <= at]
        out.append(Standing(
            territory=code, in_force=rights.in_force(code, at),
            next=rights.next_opening(code, at),
            last=max(closed, key=lambda g: g.end or at, default=None),
            required=code in required))
    return out
