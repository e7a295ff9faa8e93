"""CloudFront edge location -> country: the region of a log line that names no country.

An edge location is a three-letter IATA airport code plus a number and an optional suffix
(`NRT57-P1`, `FRA56-C2`; "Log file fields", x-edge-location). Standard logs carry no viewer
country, so the edge that served the viewer stands for where the viewer was: usually right, and
the only location such a log has. The table lists the airports of CloudFront's edge locations in
the regions our users ship to; a code it lacks puts the line in no region (`unknown`), counted
and shown, never guessed.
"""

from __future__ import annotations

from collections.abc import Iterator

from rum.geography import Geography

EDGE_COUNTRIES: dict[str, str] = {
    # North America
    "IAD": "US", "DFW": "US", "ATL": "US", "ORD": "US", "LAX": "US", "SFO": "US", "SEA": "US",
    "JFK": "US", "EWR": "US", "MIA": "US", "DEN": "US", "PHX": "US", "BOS": "US", "MSP": "US",
    "HIO": "US", "SLC": "US", "IAH": "US", "PHL": "US", "YTO": "CA", "YUL": "CA", "YVR": "CA",
    "QRO": "MX", "MEX": "MX",
    # Europe
    "LHR": "GB", "MAN": "GB", "EDI": "GB", "DUB": "IE", "CDG": "FR", "MRS": "FR", "FRA": "DE",
    "MUC": "DE", "HAM": "DE", "DUS": "DE", "TXL": "DE", "BER": "DE", "AMS": "NL", "BRU": "BE",
    "ZRH": "CH", "VIE": "AT", "MXP": "IT", "FCO": "IT", "PMO": "IT", "MAD": "ES", "BCN": "ES",
    "LIS": "PT", "CPH": "DK", "ARN": "SE", "OSL": "NO", "HEL": "FI", "WAW": "PL", "PRG": "CZ",
    "BUD": "HU", "ZAG": "HR", "OTP": "RO", "SOF": "BG", "ATH": "GR",
    # Japan / Korea and neighbours
    "NRT": "JP", "HND": "JP", "KIX": "JP", "ICN": "KR", "GMP": "KR", "TPE": "TW", "HKG": "HK",
    # Southeast Asia
    "SIN": "SG", "KUL": "MY", "BKK": "TH", "HAN": "VN", "SGN": "VN", "CGK": "ID", "MNL": "PH",
    # Latin America
    "GRU": "BR", "GIG": "BR", "FOR": "BR", "POA": "BR", "EZE": "AR", "SCL": "CL", "BOG": "CO",
    "LIM": "PE",
    # Middle East
    "DXB": "AE", "FJR": "AE", "BAH": "BH", "TLV": "IL", "JED": "SA", "DOH": "QA", "IST": "TR",
    "CAI": "EG",
}


def airport(edge_location: str) -> str:
    """`NRT57-P1` -> `NRT`."""
    return edge_location.strip()[:3].upper()


def edge_regions(config: Geography) -> Iterator[tuple[str, str]]:
    """(airport, region id) for every airport whose country a region of `config` lists."""
    region_of = {code: r.id for r in config.regions for code in r.countries}
    for code, country in EDGE_COUNTRIES.items():
        if country in region_of:
            yield code, region_of[country]
