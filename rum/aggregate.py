"""The one aggregation SQL (rum/sql/), filled in for a log format and an engine's log table.

DuckDB (rum/ingest.py) and Athena (rum/athena.py) run the same text: `requests_<format>.sql`
turns a log table into requests, `aggregate.sql` turns requests into (region, CDN, hour) cells
and per-file counts. Only the log table differs: DuckDB's `read_csv(...)` of the files, Athena's
table over the log bucket (deploy/athena/). Region and CDN maps travel inside the query as
VALUES rows, so neither engine needs a table of ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from rum.cloudfront import REALTIME, STANDARD
from rum.geography import Geography
from rum.locations import edge_regions

#: The columns aggregate.sql selects, in order.
COLUMNS = (
    "kind", "filename", "region", "cdn", "hour", "sessions", "requests", "errors", "bytes",
    "startup_p50", "startup_p95", "starved", "media", "rebuffering_sessions", "mtp_p50",
    "throughput_p50", "bitrate", "bad_cmcd", "unreadable",
)


def sql_text(name: str) -> str:
    return resources.files("rum").joinpath("sql", name).read_text()


def quote(text: str) -> str:
    """A SQL string literal (both engines: '' doubles a quote, backslash is literal)."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Mapping_:
    """Where log lines go: country/airport -> region, host -> CDN (or one CDN for all)."""

    regions: tuple[tuple[str, str, str], ...]  # (kind: country|edge, code, region id)
    hosts: tuple[tuple[str, str], ...]  # (host as logged, CDN id)
    cdn: str | None = None  # every line is this CDN's (--cdn)


def mapping_for(config: Geography, cdn: str | None = None) -> Mapping_:
    regions = [("country", code, r.id) for r in config.regions for code in r.countries]
    regions += [("edge", code, region) for code, region in edge_regions(config)]
    hosts: dict[str, str] = {}
    for c in config.cdns:
        parts = urlsplit(c.base_url)
        for name in (parts.netloc, parts.hostname or ""):
            if name:
                hosts.setdefault(name.lower(), c.id)
    return Mapping_(tuple(regions), tuple(sorted(hosts.items())), cdn)


def _values(rows: Iterable[Sequence[str]], width: int) -> str:
    text = ", ".join("(" + ", ".join(quote(x) for x in row) + ")" for row in rows)
    # VALUES needs a row: a placeholder that matches no log line
    return text or "(" + ", ".join(["''"] * width) + ")"


def render(log_format: str, source: str, mapping: Mapping_) -> str:
    """The full query over `source` (a relation with the format's columns and `filename`)."""
    if log_format not in (STANDARD, REALTIME):
        raise ValueError(log_format)
    default_cdn = quote(mapping.cdn) if mapping.cdn else "CAST(NULL AS VARCHAR)"
    name = "standard" if log_format == STANDARD else "realtime"
    requests = _strip_comments(sql_text(f"requests_{name}.sql")).replace("@SOURCE@", source)
    return (_strip_comments(sql_text("aggregate.sql"))
            .replace("@REGION_MAP@", _values(mapping.regions, 3))
            .replace("@CDN_MAP@", _values(mapping.hosts, 2))
            .replace("@DEFAULT_CDN@", default_cdn)
            .replace("@REQUESTS@", requests))


def _strip_comments(sql: str) -> str:
    """Whole-line `--` comments out (they name the placeholders; no statement line has one)."""
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


def rows_as_dicts(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]


def cells_and_files(rows: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]],
                                                                 list[dict[str, Any]]]:
    cells: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    for row in rows:
        (cells if row["kind"] == "cell" else files).append(dict(row))
    return cells, files
