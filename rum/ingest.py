"""The `rum ingest` job: CDN log files -> RUM.jsonl, on DuckDB reading the gzip TSV directly.

DuckDB parses every file in one multi-threaded scan (`read_csv` over the list, gzip decoded as
it streams), and the one aggregation SQL (rum/sql/, shared with Athena) folds the requests into
sessions and cells in hash tables that spill to disk past `memory_limit`: memory stays flat
however many lines come in. Damage is counted per file, never fatal:
  - a line with the wrong field count: DuckDB's rejects table (`store_rejects`), per file;
  - a malformed CMCD value: counted by the SQL, per file;
  - a truncated gzip: DuckDB stops the scan naming the file; its readable lines are salvaged
    into a plain file and the scan runs again;
  - a standard log whose `#Fields` line is not CloudFront's 33 fields: reported, skipped.
Files already in RUM.jsonl's ledger are skipped, so ingesting twice counts once.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packager.errors import InputError
from packager.files import read_text, write_atomic
from rum.aggregate import Mapping_, cells_and_files, mapping_for, quote, render, rows_as_dicts
from rum.cloudfront import (
    REALTIME_CMCD,
    REALTIME_FIELDS,
    REALTIME_REQUIRED,
    STANDARD,
    STANDARD_COLUMNS,
    STANDARD_FIELDS,
    column,
)
from rum.geography import Geography
from rum.records import RUM_FILE, LogFile, RumCell, RumData, jsonl, lines_of, parse_rum
from rum.sources import LogSource, head, local_sources, s3_sources, salvage_gzip

ENGINES = ("duckdb", "athena")
#: Trino's names for what DuckDB spells otherwise: the shared SQL calls these.
TRINO_MACROS = (
    "CREATE OR REPLACE MACRO to_unixtime(t) AS epoch(t)",
    "CREATE OR REPLACE MACRO approx_percentile(x, p) AS approx_quantile(x, p)",
)
#: Real-time columns the SQL reads; a configuration without them gets NULLs.
_REALTIME_USED = ("timestamp", "time-taken", "c-country", "x-edge-location", "cs-host",
                  "x-host-header", "sc-status", "sc-bytes", "cs-uri-query", *REALTIME_CMCD)
_GZIP_DAMAGE = re.compile(r"GZIP|gzip|Unexpected end|corrupt|decompress", re.IGNORECASE)


@dataclass(frozen=True)
class IngestRequest:
    logs: tuple[str, ...]  # files, directories or s3://BUCKET/PREFIX
    log_format: str
    config: Geography
    output: Path
    cdn: str | None = None  # every line is this CDN's; else from the host
    fields: tuple[str, ...] | None = None  # real-time: the configuration's field order
    endpoint_url: str | None = None
    memory_limit: str = "512MB"


@dataclass(frozen=True)
class IngestResult:
    output: Path
    batch: str
    engine: str
    files: list[LogFile]  # read this time
    already: list[str]  # skipped: in the ledger already
    cells: list[RumCell]  # new this time
    seconds: float

    @property
    def lines(self) -> int:
        return sum(f.lines for f in self.files)


def realtime_fields(fields: Sequence[str] | None) -> tuple[str, ...]:
    chosen = tuple(fields) if fields else REALTIME_FIELDS
    unknown = [f for f in chosen if f not in REALTIME_FIELDS]
    if unknown:
        raise InputError(f"--fields: {', '.join(unknown)} is not a CloudFront real-time log "
                         "field")
    missing = [f for f in REALTIME_REQUIRED if f not in chosen]
    if missing:
        raise InputError(f"--fields: the aggregation needs {', '.join(missing)}")
    return chosen


def load_ledger(output: Path) -> RumData:
    if not output.exists():
        return RumData([], [])
    return parse_rum(read_text(output, RUM_FILE), str(output))


def ingest(request: IngestRequest) -> IngestResult:
    """Read the new files of request.logs and append their cells and ledger to the output."""
    started = time.perf_counter()
    fields = realtime_fields(request.fields) if request.log_format != STANDARD else None
    existing = load_ledger(request.output)
    known = existing.identities
    batch = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    with _sources(request, known) as (fresh, already):
        mapping = mapping_for(request.config, request.cdn)
        files, cells = run_duckdb(fresh, request.log_format, fields, mapping,
                                  request.memory_limit, batch)
    if files:
        data = RumData([*existing.cells, *cells], [*existing.files, *files])
        write_atomic(request.output, jsonl(lines_of(data)))
    return IngestResult(request.output, batch, "duckdb", files, [s.source for s in already],
                        cells, time.perf_counter() - started)


@contextlib.contextmanager
def _sources(request: IngestRequest, known: set[tuple[str, int, str]]) -> Iterator[
        tuple[list[LogSource], list[LogSource]]]:
    s3_urls = [x for x in request.logs if x.startswith("s3://")]
    local = local_sources([x for x in request.logs if not x.startswith("s3://")])
    fresh = [s for s in local if s.identity not in known]
    already = [s for s in local if s.identity in known]
    with contextlib.ExitStack() as stack:
        if s3_urls:
            from cdn.s3 import Connection, client  # noqa: PLC0415
            s3 = client(Connection(endpoint_url=request.endpoint_url))
            for url in s3_urls:
                new, old = stack.enter_context(s3_sources(url, s3, known))
                fresh += new
                already += old
        seen: set[tuple[str, int, str]] = set()
        unique = []
        for s in fresh:  # the same file named twice in one call counts once too
            if s.identity not in seen:
                seen.add(s.identity)
                unique.append(s)
        yield unique, already


def run_duckdb(sources: Sequence[LogSource], log_format: str, fields: tuple[str, ...] | None,
               mapping: Mapping_, memory_limit: str, batch: str) -> tuple[list[LogFile],
                                                                          list[RumCell]]:
    """Aggregate `sources` on an embedded DuckDB; damaged files are counted, not fatal."""
    import duckdb  # noqa: PLC0415

    problems: dict[Path, str] = {}
    readable: dict[Path, LogSource] = {}
    for s in sources:
        problem = _header_problem(s.path, log_format)
        if problem is None:
            readable[s.path] = s
        else:
            problems[s.path] = problem
    with tempfile.TemporaryDirectory(prefix="cdnpack-duckdb-") as tmp:
        con = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": tmp,
                                     "preserve_insertion_order": False})
        try:
            for macro in TRINO_MACROS:
                con.execute(macro)
            paths = dict(readable)  # where DuckDB reads each source (a salvaged copy, maybe)
            rows: list[dict[str, Any]] = []
            while paths:
                try:
                    sql = render(log_format, read_csv_source(list(paths), log_format, fields),
                                 mapping)
                    rows = rows_as_dicts(con.execute(sql).fetchall())
                    break
                except (duckdb.IOException, duckdb.InvalidInputException) as exc:
                    # DuckDB stops the whole scan at one bad file and names it: that file is
                    # salvaged (a damaged gzip) or set aside, and the scan runs again.
                    broken = _named_file(str(exc), paths)
                    if broken is None:
                        raise InputError(f"cannot read the logs: {exc}") from exc
                    source = paths.pop(broken)
                    if not _GZIP_DAMAGE.search(str(exc)):
                        problems[source.path] = ("not a tab-separated log (the CSV reader gave "
                                                 "up on it): skipped")
                        continue
                    salvaged = Path(tmp) / f"salvaged-{len(problems)}.log"
                    kept = salvage_gzip(broken, salvaged)
                    problems[source.path] = (
                        f"truncated or damaged gzip: {kept} complete lines before the damage "
                        "were read")
                    paths[salvaged] = source
            rejected = _rejects(con) if paths else {}
        finally:
            con.close()
    by_path = {str(p): s for p, s in paths.items()}
    cells_rows, file_rows = cells_and_files(rows)
    counts = {by_path[r["filename"]].path: r for r in file_rows if r["filename"] in by_path}
    files = []
    for s in sources:
        row = counts.get(s.path, {})
        reject = sum(n for p, n in rejected.items() if by_path.get(p) is s)
        files.append(LogFile(
            source=s.source, name=s.name, size=s.size, version=s.version,
            lines=int(row.get("requests") or 0) + reject,
            rejected=reject + int(row.get("unreadable") or 0),
            bad_cmcd=int(row.get("bad_cmcd") or 0), problem=problems.get(s.path), batch=batch))
    return files, [cell_of(r, batch) for r in cells_rows]


def cell_of(row: dict[str, Any], batch: str) -> RumCell:
    """A RumCell from an aggregate.sql `cell` row (CMCD kbps -> bits/s, epoch hour -> ISO)."""
    def kbps(value: Any) -> float | None:
        return None if value is None else round(float(value) * 1000.0, 1)

    def seconds(value: Any) -> float | None:
        return None if value is None else round(float(value), 3)

    hour = datetime.fromtimestamp(float(row["hour"] or 0), UTC).isoformat(timespec="seconds")
    return RumCell(
        region=str(row["region"]), cdn=str(row["cdn"]), hour=hour,
        sessions=int(row["sessions"]), requests=int(row["requests"]),
        errors=int(row["errors"]), bytes=int(row["bytes"]),
        startup_p50=seconds(row["startup_p50"]), startup_p95=seconds(row["startup_p95"]),
        video_requests=int(row["media"]), starved_requests=int(row["starved"]),
        rebuffering_sessions=int(row["rebuffering_sessions"]),
        mtp_p50=kbps(row["mtp_p50"]), bitrate=kbps(row["bitrate"]),
        throughput_p50=None if row["throughput_p50"] is None else round(
            float(row["throughput_p50"]), 1),
        batch=batch,
    )


def read_csv_source(paths: Sequence[Path], log_format: str, fields: tuple[str, ...] | None) -> str:
    """DuckDB's reader over the files: tab-separated, no quoting, `#` lines skipped, every
    column text (the SQL casts), bad lines set aside in the rejects table."""
    names = STANDARD_COLUMNS if log_format == STANDARD else tuple(
        column(f) for f in fields or REALTIME_FIELDS)
    columns = "{" + ", ".join(f"{quote(n)}: 'VARCHAR'" for n in names) + "}"
    files = "[" + ", ".join(quote(str(p)) for p in paths) + "]"
    reader = (f"read_csv({files}, delim='\t', header=false, comment='#', quote='', "
              f"escape='', auto_detect=false, columns={columns}, ignore_errors=true, "
              "store_rejects=true, filename=true, null_padding=false)")
    if log_format == STANDARD:
        return reader
    lacking = [column(f) for f in _REALTIME_USED if column(f) not in names]
    extra = "".join(f", CAST(NULL AS VARCHAR) AS {n}" for n in lacking)
    return f"(SELECT *{extra} FROM {reader})"


def _named_file(message: str, paths: dict[Path, LogSource]) -> Path | None:
    """The file a DuckDB error names (the longest match: log1 is a prefix of log10)."""
    return max((p for p in paths if str(p) in message), key=lambda p: len(str(p)),
               default=None)


def _rejects(con: Any) -> dict[str, int]:
    """Rejected lines per file path (wrong field count and other parse errors)."""
    import duckdb  # noqa: PLC0415
    try:
        rows = con.execute(
            "SELECT s.file_path, count(DISTINCT (e.scan_id, e.file_id, e.line)) "
            "FROM reject_errors e JOIN reject_scans s "
            "ON e.scan_id = s.scan_id AND e.file_id = s.file_id GROUP BY s.file_path"
        ).fetchall()
    except duckdb.CatalogException:  # no rejects table: nothing was rejected
        return {}
    return {str(path): int(n) for path, n in rows}


def _header_problem(path: Path, log_format: str) -> str | None:
    """Why a file cannot be read as `log_format` (a standard log's #Fields line), else None."""
    try:
        start = head(path)
    except (EOFError, OSError) as exc:
        return f"unreadable: {exc}"
    if b"\x00" in start:
        return "binary data, not a CloudFront log: skipped"
    if log_format != STANDARD:
        return None
    lines = start.decode("utf-8", "replace").splitlines()[:2]
    declared = next((h for h in lines if h.startswith("#Fields:")), None)
    if declared is not None and tuple(declared.split()[1:]) != STANDARD_FIELDS:
        count = len(declared.split()) - 1
        return (f"#Fields lists {count} fields, not CloudFront's {len(STANDARD_FIELDS)} in "
                "the documented order: skipped")
    return None
