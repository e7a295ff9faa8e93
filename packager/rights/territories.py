"""Territories of a grant: ISO 3166-1 alpha-2 country codes, or region ids whose countries
(regions.yaml) they stand for.

Codes are written in capitals (JP), region ids in lower case (jpkr, latam): the case tells
them apart, so a region can never shadow a country. A code must be an assigned ISO 3166-1
alpha-2 code (pycountry's table): CloudFront's viewer country header only ever carries those,
and a typo (UK for GB) would license nobody.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache

import pycountry

_CODE = re.compile(r"^[A-Z]{2}$")

#: Region id -> its countries (regions.yaml's `countries`), as the caller read them.
RegionCountries = Mapping[str, Sequence[str]]


class TerritoryError(ValueError):
    """Neither an assigned ISO 3166-1 alpha-2 code nor a known region id."""


@cache
def country_codes() -> frozenset[str]:
    return frozenset(c.alpha_2 for c in pycountry.countries)


def country_name(code: str) -> str:
    country = pycountry.countries.get(alpha_2=code)
    return str(getattr(country, "common_name", None) or country.name) if country else code


def expand(token: str, regions: RegionCountries) -> tuple[str, ...]:
    """The countries a territory stands for: itself, or a region's countries."""
    if _CODE.match(token):
        if token not in country_codes():
            raise TerritoryError(f"{token} is not an ISO 3166-1 alpha-2 country code")
        return (token,)
    if token in regions:
        countries = tuple(regions[token])
        if not countries:
            raise TerritoryError(f"region {token!r} lists no countries")
        return countries
    hint = (f" (a country code is written in capitals: {token.upper()})"
            if token.upper() in country_codes() else "")
    known = ", ".join(sorted(regions)) or "none"
    raise TerritoryError(f"{token!r} is neither a country code (like JP) nor a region id "
                         f"(known: {known}){hint}")
