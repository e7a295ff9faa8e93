"""`rum ingest` on DuckDB: sessions, startup, rebuffering, throughput and bitrate per (region,
CDN, hour) from CloudFront logs; damage counted per file; files counted once; no viewer named."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import pytest

from probes.config import ProbeConfig, load_config
from rum.cloudfront import REALTIME_FIELDS, STANDARD_FIELDS, STANDARD_HEADER
from rum.ingest import IngestRequest, ingest
from rum.records import read_rum
from testbed.accesslog import read_lines
from tests.conftest import cdnpack_cli
from tests.rum.logs import CONFIG_YAML, T0, Viewer, cmcd_query, request, session, write_logs

#: AWS's own example line of a standard log ("Log file fields"), with a CMCD query added.
AWS_EXAMPLE = (
    "2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t"
    "/index.html\t200\t-\tMozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)\t"
    "CMCD=br%3D3200%2Cot%3Dv%2Csid%3D%22aws-1%22\t-\tHit\t"
    "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\td111111abcdef8.cloudfront.net\t"
    "https\t23\t0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040\t"
    "0.001\tHit\ttext/html\t78\t-\t-"
)


@pytest.fixture
def config(tmp_path: Path) -> ProbeConfig:
    path = tmp_path / "regions.yaml"
    path.write_text(CONFIG_YAML)
    return load_config(path)


Lines = list[dict[str, Any]]


def run(config: ProbeConfig, logs: list[Path], fmt: str, out: Path) -> tuple[Lines, Lines]:
    result = ingest(IngestRequest(tuple(map(str, logs)), fmt, config, out))
    return ([c.line() for c in result.cells], [f.line() for f in result.files])


def test_standard_log_lines_have_the_33_documented_fields(tmp_path: Path) -> None:
    files = write_logs(tmp_path, session(Viewer("s1"), T0, 800, 5000))
    standard = [p for p in files if p.parent.name == "standard"]
    assert len(STANDARD_FIELDS) == 33
    with gzip.open(standard[0], "rt") as f:
        assert f.readline() + f.readline() == STANDARD_HEADER
    lines = read_lines(standard)
    assert lines
    assert all(len(x.split("\t")) == 33 for x in lines)
    assert len(AWS_EXAMPLE.split("\t")) == 33


def test_the_documented_example_line_is_read(tmp_path: Path, config: ProbeConfig) -> None:
    log = tmp_path / "E2.2019-12-04-21.abcdef01.gz"
    log.write_bytes(gzip.compress((STANDARD_HEADER + AWS_EXAMPLE + "\n").encode()))
    cells, files = run(config, [log], "cloudfront-standard", tmp_path / "RUM.jsonl")
    assert files[0]["lines"] == 1
    assert files[0]["rejected"] == 0
    # LAX is in the US: region na; the host is no CDN of the config: the host names it
    assert [(c["region"], c["cdn"], c["sessions"], c["bitrate"]) for c in cells] == [
        ("na", "d111111abcdef8.cloudfront.net", 1, 3_200_000.0)]


@pytest.mark.parametrize("fmt", ["cloudfront-standard", "cloudfront-realtime"])
def test_sessions_startup_rebuffering_throughput_and_bitrate_per_cell(
        tmp_path: Path, config: ProbeConfig, fmt: str) -> None:
    entries = (session(Viewer("fast"), T0 + 10, 3000, 20_000)
               + session(Viewer("slow"), T0 + 20, 800, 2_000, stalls=2)
               + session(Viewer("other", host="beta.example"), T0 + 30, 1500, 9_000))
    write_logs(tmp_path / "logs", entries)
    cells, _ = run(config, [tmp_path / "logs" / fmt.split("-")[1]], fmt, tmp_path / "RUM.jsonl")
    by_cdn = {c["cdn"]: c for c in cells}
    assert set(by_cdn) == {"alpha", "beta"}
    alpha = by_cdn["alpha"]
    assert (alpha["region"], alpha["hour"]) == ("jpkr", "2026-12-04T12:00:00+00:00")
    assert alpha["sessions"] == 2
    assert alpha["requests"] == 14
    assert alpha["rebuffering_sessions"] == 1
    assert alpha["starved_requests"] == 2
    assert alpha["video_requests"] == 12
    assert alpha["bitrate"] == pytest.approx((3000 + 800) / 2 * 1000)
    assert alpha["mtp_p50"] is not None
    assert 2e6 <= alpha["mtp_p50"] <= 20e6
    # the edge delivered 100 300 bytes in 0.3 s per segment
    assert alpha["throughput_p50"] == pytest.approx(8 * 100_300 / 0.3, rel=0.01)
    # startup: first request sent (end 0.2 s - took 0.2 s) -> 2nd segment done (1.0 s)
    tolerance = 0.002 if fmt == "cloudfront-realtime" else 1.0  # standard logs: whole seconds
    assert alpha["startup_p50"] == pytest.approx(1.0, abs=tolerance)
    assert by_cdn["beta"]["sessions"] == 1
    assert by_cdn["beta"]["rebuffering_sessions"] == 0


def test_region_from_the_country_else_from_the_edge_location(
        tmp_path: Path, config: ProbeConfig) -> None:
    """A Japanese viewer served from Los Angeles: real-time logs say JP (c-country), standard
    logs only know the edge (LAX, the US)."""
    write_logs(tmp_path, session(Viewer("x", country="JP", edge="LAX50-C1"), T0, 800, 5000))
    realtime, _ = run(config, [tmp_path / "realtime"], "cloudfront-realtime", tmp_path / "a")
    standard, _ = run(config, [tmp_path / "standard"], "cloudfront-standard", tmp_path / "b")
    assert [c["region"] for c in realtime] == ["jpkr"]
    assert [c["region"] for c in standard] == ["na"]


def test_damage_is_counted_per_file_and_never_fatal(tmp_path: Path,
                                                    config: ProbeConfig) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    viewer = Viewer("d")
    good = write_logs(tmp_path / "w", session(viewer, T0, 800, 5000))
    standard = next(p for p in good if p.parent.name == "standard")
    text = gzip.decompress(standard.read_bytes()).decode()
    # 1. a line with the wrong field count
    (logs / "E2.2026-12-04-12.00000001.gz").write_bytes(
        gzip.compress((text + "2026-12-04\t12:00:01\tNRT57\t100\n").encode()))
    # 2. a malformed CMCD value (br is an integer)
    bad = request(viewer, T0 + 5, 0.1, cmcd_query(sid="d", ot="v") + "%2Cbr%3D%22fast%22")
    write_logs(tmp_path / "bad", [bad])
    (logs / "E2.2026-12-04-12.00000002.gz").write_bytes(
        next((tmp_path / "bad" / "standard").iterdir()).read_bytes())
    # 3. a truncated gzip: many lines, cut in the middle
    many = write_logs(tmp_path / "many", [request(viewer, T0 + i * 0.01, 0.1,
                                                  cmcd_query(sid="d", ot="v", br=800))
                                          for i in range(3000)])
    whole = next(p for p in many if p.parent.name == "standard").read_bytes()
    (logs / "E2.2026-12-04-12.00000003.gz").write_bytes(whole[: len(whole) // 2])
    # 4. random bytes, plain and gzipped: a NUL in the first lines, and where the first lines
    # hold none, bytes DuckDB's reader gives up on (seeds 0..7 make both kinds)
    noise = random.Random(20261204)
    for n in range(4, 12):
        data = noise.randbytes(4096).replace(b"\x00", b"") if n % 2 else noise.randbytes(4096)
        (logs / f"E2.2026-12-04-12.{n:08d}.gz").write_bytes(gzip.compress(data) if n > 7
                                                             else data)
    out = tmp_path / "RUM.jsonl"
    done = cdnpack_cli("rum", "ingest", logs, "--format", "cloudfront-standard", "--config",
                       config.path, "-o", out, "--json")
    assert done.returncode == 0, done.stderr
    files = {Path(f["source"]).name[-11:-3]: f for f in json.loads(done.stdout)["files"]}
    assert files["00000001"]["rejected"] == 1
    assert files["00000001"]["problem"] is None
    assert files["00000002"]["bad_cmcd"] == 1
    assert "truncated or damaged gzip" in str(files["00000003"]["problem"])
    assert 0 < int(files["00000003"]["lines"]) < 3000
    for n in range(4, 12):
        assert files[f"{n:08d}"]["problem"] or files[f"{n:08d}"]["rejected"], files[f"{n:08d}"]
    assert files["00000004"]["problem"] == "binary data, not a CloudFront log: skipped"
    assert any("gave up" in str(files[f"{n:08d}"]["problem"]) for n in range(4, 12))
    assert read_rum(out).files  # the ledger names every file


def test_second_ingest_of_the_same_files_counts_them_once(tmp_path: Path,
                                                          config: ProbeConfig) -> None:
    write_logs(tmp_path / "logs", session(Viewer("a"), T0, 800, 5000))
    out = tmp_path / "RUM.jsonl"
    first = ingest(IngestRequest((str(tmp_path / "logs" / "standard"),),
                                 "cloudfront-standard", config, out))
    text = out.read_text()
    again = ingest(IngestRequest((str(tmp_path / "logs" / "standard"),),
                                 "cloudfront-standard", config, out))
    assert len(first.files) == 1
    assert first.cells
    assert again.files == []
    assert len(again.already) == 1
    assert out.read_text() == text
    write_logs(tmp_path / "logs", session(Viewer("b"), T0 + 60, 800, 5000))  # a new file
    third = ingest(IngestRequest((str(tmp_path / "logs" / "standard"),),
                                 "cloudfront-standard", config, out))
    assert len(third.files) == 1
    assert len(third.already) == 1
    data = read_rum(out)
    assert sum(c.sessions for c in data.cells) == 2
    assert len(data.files) == 2


def test_no_viewer_address_or_session_id_in_any_output(tmp_path: Path,
                                                       config: ProbeConfig) -> None:
    viewer = Viewer("f81d4fae-7dec-11d0-a765-00a0c91e6bf6", ip="198.51.100.23")
    write_logs(tmp_path / "logs", session(viewer, T0, 800, 5000))
    out = tmp_path / "RUM.jsonl"
    for fmt in ("cloudfront-standard", "cloudfront-realtime"):
        logs = tmp_path / "logs" / fmt.split("-")[1]
        said = [cdnpack_cli("rum", "ingest", logs, "--format", fmt, "--config", config.path,
                            "-o", out, *extra) for extra in ((), ("--json",))]
        assert all(d.returncode == 0 for d in said), [d.stderr for d in said]
        for text in [out.read_text(), *(d.stdout + d.stderr for d in said)]:
            assert viewer.sid not in text
            assert viewer.sid[:8] not in text
            assert viewer.ip not in text
    assert sum(c.sessions for c in read_rum(out).cells) == 2  # counted, once per format


def test_realtime_with_the_fields_a_configuration_chose(tmp_path: Path,
                                                        config: ProbeConfig) -> None:
    chosen = ("timestamp", "sc-status", "sc-bytes", "time-taken", "x-edge-location",
              "c-country", "x-host-header", "cs-uri-query")
    write_logs(tmp_path / "all", session(Viewer("z"), T0, 800, 5000))
    lines = read_lines(list((tmp_path / "all" / "realtime").iterdir()))
    index = [REALTIME_FIELDS.index(f) for f in chosen]
    subset = "".join("\t".join(line.split("\t")[i] for i in index) + "\n" for line in lines)
    (tmp_path / "rt.log").write_text(subset)
    result = ingest(IngestRequest((str(tmp_path / "rt.log"),), "cloudfront-realtime", config,
                                  tmp_path / "RUM.jsonl", fields=chosen))
    assert [(c.region, c.cdn, c.sessions, c.bitrate) for c in result.cells] == [
        ("jpkr", "alpha", 1, 800_000.0)]
    done = cdnpack_cli("rum", "ingest", tmp_path / "rt.log", "--format", "cloudfront-realtime",
                       "--fields", "timestamp,sc-status", "-o", tmp_path / "x.jsonl")
    assert done.returncode == 2
    assert done.stderr.startswith("cdnpack: error: --fields: the aggregation needs")
