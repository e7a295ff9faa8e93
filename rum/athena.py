"""`rum ingest --engine athena`: the same aggregation SQL on Amazon Athena over the log bucket.

For logs that outgrow one machine. The table is the one deploy/athena/ creates over the log
bucket (standard or real-time columns, every one a string, as DuckDB reads them); the query is
rum/aggregate.py's text with that table as its source, limited to the files not yet in the
ledger (`"$path"`, Athena's pseudo-column of the object a row came from). Calls:
StartQueryExecution, GetQueryExecution until the query ends (a failed or cancelled query is an
error naming Athena's reason), GetQueryResults page by page (the first row is the header).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cdn.s3 import Connection, client
from packager.errors import EndpointError, InputError
from packager.files import write_atomic
from rum.aggregate import COLUMNS, cells_and_files, mapping_for, quote, render
from rum.cloudfront import REALTIME_FIELDS, STANDARD, column
from rum.ingest import IngestRequest, IngestResult, cell_of, load_ledger, realtime_fields
from rum.records import LogFile, RumData, jsonl, lines_of
from rum.sources import list_s3

DEFAULT_TABLES = {STANDARD: "cloudfront_standard_logs", "cloudfront-realtime":
                  "cloudfront_realtime_logs"}
_NUMERIC = {"hour", "sessions", "requests", "errors", "bytes", "startup_p50", "startup_p95",
            "starved", "media", "rebuffering_sessions", "mtp_p50", "throughput_p50", "bitrate",
            "bad_cmcd",
            "unreadable"}
_POLL_SECONDS = (0.2, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class AthenaTarget:
    database: str | None
    workgroup: str | None
    table: str | None = None
    query_results: str | None = None  # s3:// output location (else the workgroup's)
    region: str | None = None
    timeout: float = 1800.0  # seconds a query may run


def athena_source(target: AthenaTarget, log_format: str, paths: list[str]) -> str:
    """The log table as the aggregation's source: its rows from `paths`, with `filename`."""
    table = target.table or DEFAULT_TABLES[log_format]
    database = target.database or ""
    where = ", ".join(quote(p) for p in paths)
    return (f'(SELECT *, "$path" AS filename FROM "{database}"."{table}" '
            f'WHERE "$path" IN ({where}))')


def ingest_athena(request: IngestRequest, target: AthenaTarget) -> IngestResult:
    """Aggregate the new files under request.logs (s3:// prefixes) on Athena."""
    if not target.database:
        raise InputError("--engine athena needs --database (the Glue database of the log table)")
    urls = [x for x in request.logs if x.startswith("s3://")]
    if len(urls) != len(request.logs):
        raise InputError("--engine athena reads the log bucket: give LOGS as s3://BUCKET/PREFIX")
    if request.log_format != STANDARD:
        fields = realtime_fields(request.fields)
        if fields != REALTIME_FIELDS:
            raise InputError("--engine athena reads the table deploy/athena creates (every "
                             f"real-time field); --fields {','.join(column(f) for f in fields)} "
                             "applies to --engine duckdb")
    started = time.perf_counter()
    existing = load_ledger(request.output)
    known = existing.identities
    conn = Connection(endpoint_url=request.endpoint_url, region=target.region)
    listed = [x for url in urls for x in list_s3(url, client(conn))]
    fresh = [x for x in listed if (x[1].rsplit("/", 1)[-1], x[2], x[3]) not in known]
    already = [x[0] for x in listed if x not in fresh]
    batch = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    if not fresh:
        return IngestResult(request.output, batch, "athena", [], already, [],
                            time.perf_counter() - started)
    sql = render(request.log_format,
                 athena_source(target, request.log_format, [x[0] for x in fresh]),
                 mapping_for(request.config, request.cdn))
    rows = run_query(client(conn, "athena"), sql, target)
    cell_rows, file_rows = cells_and_files(rows)
    counts = {r["filename"]: r for r in file_rows}
    files = [LogFile(
        source=where, name=key.rsplit("/", 1)[-1], size=size, version=etag,
        lines=int(counts.get(where, {}).get("requests") or 0),
        rejected=int(counts.get(where, {}).get("unreadable") or 0),
        bad_cmcd=int(counts.get(where, {}).get("bad_cmcd") or 0),
        problem=None if where in counts else "no rows in the Athena table", batch=batch)
        for where, key, size, etag in fresh]
    cells = [cell_of(r, batch) for r in cell_rows]
    data = RumData([*existing.cells, *cells], [*existing.files, *files])
    write_atomic(request.output, jsonl(lines_of(data)))
    return IngestResult(request.output, batch, "athena", files, already, cells,
                        time.perf_counter() - started)


def run_query(athena: Any, sql: str, target: AthenaTarget) -> list[dict[str, Any]]:
    """Start `sql`, wait for it, and return its rows as dicts keyed by COLUMNS."""
    args: dict[str, Any] = {"QueryString": sql,
                            "QueryExecutionContext": {"Database": target.database}}
    if target.workgroup:
        args["WorkGroup"] = target.workgroup
    if target.query_results:
        args["ResultConfiguration"] = {"OutputLocation": target.query_results}
    try:
        query_id = athena.start_query_execution(**args)["QueryExecutionId"]
        _wait(athena, query_id, target.timeout)
        return _results(athena, query_id)
    except ClientError as exc:
        raise EndpointError(f"Athena: {exc}") from exc
    except BotoCoreError as exc:
        raise EndpointError(f"Athena: {exc}") from exc


def _wait(athena: Any, query_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for attempt in range(1_000_000):
        status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
        state = status["State"]
        if state == "SUCCEEDED":
            return
        if state in ("FAILED", "CANCELLED"):
            reason = status.get("StateChangeReason") or state.lower()
            raise EndpointError(f"Athena query {query_id} {state.lower()}: {reason}")
        if time.monotonic() > deadline:
            athena.stop_query_execution(QueryExecutionId=query_id)
            raise EndpointError(f"Athena query {query_id} still {state.lower()} after "
                                f"{timeout:g} s: stopped")
        time.sleep(_POLL_SECONDS[min(attempt, len(_POLL_SECONDS) - 1)])


def _results(athena: Any, query_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    header: list[str] | None = None
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
        for row in page["ResultSet"]["Rows"]:
            values = [d.get("VarCharValue") for d in row["Data"]]
            if header is None:
                header = [str(v) for v in values]
                if header != list(COLUMNS):
                    raise EndpointError(f"Athena query {query_id}: columns {header}, "
                                        f"expected {list(COLUMNS)}")
                continue
            rows.append({name: _value(name, v) for name, v in zip(header, values, strict=True)})
    return rows


def _value(name: str, text: str | None) -> Any:
    if text is None or text == "":
        return None
    return float(text) if name in _NUMERIC else text
