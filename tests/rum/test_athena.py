"""`rum ingest --engine athena`: the aggregation SQL that DuckDB runs, sent to Athena over the
log bucket, its results paged back into the same RUM records (moto stands in for AWS)."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import Any

import duckdb

from probes.config import load_config
from rum.aggregate import COLUMNS, mapping_for, render
from rum.athena import AthenaTarget, athena_source
from rum.ingest import TRINO_MACROS, read_csv_source
from rum.records import read_rum
from tests.conftest import cdnpack_cli
from tests.moto import FAKE_CREDENTIALS, MotoServer
from tests.rum.logs import CONFIG_YAML, T0, Viewer, session, write_logs

BUCKET = "cdnpack-logs"


def duckdb_rows(paths: list[Path], sql_source: str, fmt: str, config_path: Path) -> list[
        tuple[Any, ...]]:
    con = duckdb.connect()
    for macro in TRINO_MACROS:
        con.execute(macro)
    sql = render(fmt, sql_source, mapping_for(load_config(config_path)))
    return con.execute(sql).fetchall()


def seed_athena(moto: MotoServer, rows: list[tuple[Any, ...]]) -> None:
    """Queue the result Athena would return: a header row, then every value as text."""
    def cell(v: Any) -> dict[str, str]:
        return {} if v is None else {"VarCharValue": str(v)}

    result = [{"Data": [{"VarCharValue": c} for c in COLUMNS]},
              *({"Data": [cell(v) for v in row]} for row in rows)]
    body = json.dumps({"results": [{"rows": result, "column_info": []}]}).encode()
    request = urllib.request.Request(f"{moto.url}/moto-api/static/athena/query-results",
                                     data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10):
        pass


def test_athena_runs_the_duckdb_sql_on_the_bucket_and_reads_its_results(
        tmp_path: Path, moto_s3: MotoServer) -> None:
    config = tmp_path / "regions.yaml"
    config.write_text(CONFIG_YAML)
    files = write_logs(tmp_path / "logs", session(Viewer("a"), T0, 3000, 20_000)
                       + session(Viewer("b"), T0 + 30, 800, 2_000, stalls=1))
    standard = [p for p in files if p.parent.name == "standard"]
    s3 = moto_s3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    urls = []
    for p in standard:
        s3.upload_file(str(p), BUCKET, f"cf/{p.name}")
        urls.append(f"s3://{BUCKET}/cf/{p.name}")
    # What DuckDB computes from the local copies, as Athena would compute it from the bucket
    rows = duckdb_rows(standard, read_csv_source(standard, "cloudfront-standard", None),
                       "cloudfront-standard", config)
    local_to_s3 = {str(p): u for p, u in zip(standard, urls, strict=True)}
    seed_athena(moto_s3, [tuple(local_to_s3.get(v, v) if i == 1 else v
                                for i, v in enumerate(row)) for row in rows])
    env = {**os.environ, **FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": "us-east-1"}
    out = tmp_path / "RUM.jsonl"
    done = cdnpack_cli("rum", "ingest", f"s3://{BUCKET}/cf/", "--format", "cloudfront-standard",
                       "--config", config, "-o", out, "--engine", "athena", "--database",
                       "logs_db", "--workgroup", "primary", "--query-results",
                       f"s3://{BUCKET}/athena/", "--endpoint-url", moto_s3.url, "--json",
                       env=env)
    assert done.returncode == 0, done.stderr
    # the query Athena was given is the DuckDB text over the log table, limited to the files
    athena = moto_s3.client("athena")
    ids = athena.list_query_executions(WorkGroup="primary")["QueryExecutionIds"]
    assert len(ids) == 1
    execution = athena.get_query_execution(QueryExecutionId=ids[0])["QueryExecution"]
    target = AthenaTarget(database="logs_db", workgroup="primary")
    expected = render("cloudfront-standard", athena_source(target, "cloudfront-standard", urls),
                      mapping_for(load_config(config)))
    assert execution["Query"] == expected
    assert execution["QueryExecutionContext"]["Database"] == "logs_db"
    assert execution["ResultConfiguration"]["OutputLocation"].startswith(f"s3://{BUCKET}/athena/")
    # ... and its results are the same records a DuckDB ingest writes
    local = tmp_path / "LOCAL.jsonl"
    assert cdnpack_cli("rum", "ingest", *standard, "--format", "cloudfront-standard",
                       "--config", config, "-o", local).returncode == 0

    def key(path: Path) -> list[tuple[Any, ...]]:
        return sorted((c.region, c.cdn, c.hour, c.sessions, c.requests, c.startup_p50,
                       c.video_requests, c.starved_requests, c.mtp_p50, c.throughput_p50,
                       c.bitrate)
                      for c in read_rum(path).cells)
    assert key(out)
    assert key(out) == key(local)
    ledger = read_rum(out).files
    assert sorted(f.source for f in ledger) == sorted(urls)
    # a second run finds every file in the ledger: no query at all
    again = cdnpack_cli("rum", "ingest", f"s3://{BUCKET}/cf/", "--format",
                        "cloudfront-standard", "--config", config, "-o", out, "--engine",
                        "athena", "--database", "logs_db", "--workgroup", "primary",
                        "--endpoint-url", moto_s3.url, "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["files"] == []
    assert len(athena.list_query_executions(WorkGroup="primary")["QueryExecutionIds"]) == 1


def test_s3_logs_are_read_by_duckdb_after_download(tmp_path: Path,
                                                   moto_s3: MotoServer) -> None:
    config = tmp_path / "regions.yaml"
    config.write_text(CONFIG_YAML)
    files = write_logs(tmp_path / "logs", session(Viewer("a"), T0, 800, 5_000))
    s3 = moto_s3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for p in files:
        s3.upload_file(str(p), BUCKET, f"{p.parent.name}/{p.name}")
    env = {**os.environ, **FAKE_CREDENTIALS}
    done = cdnpack_cli("rum", "ingest", f"s3://{BUCKET}/realtime", "--format",
                       "cloudfront-realtime", "--config", config, "-o", tmp_path / "R.jsonl",
                       "--endpoint-url", moto_s3.url, "--json", env=env)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert [f["source"].startswith(f"s3://{BUCKET}/realtime/") for f in doc["files"]] == [True]
    assert [(c["region"], c["cdn"], c["sessions"]) for c in doc["cells"]] == [
        ("jpkr", "alpha", 1)]
