"""Scoring, ranking and the gate on results probed from emulated edges, through the real CLI."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from probes.config import Budget, load_config
from probes.results import parse_records
from probes.score import composite, nearest_rank, percentiles, scorecard
from tests.conftest import cdnpack_cli
from tests.probes.conftest import DELAY_FAST, DELAY_SLOW, ProbeRuns

BUDGETS_PER_CELL = 4
REPO = Path(__file__).resolve().parents[2]


def score_json(runs: ProbeRuns) -> dict[str, Any]:
    result = cdnpack_cli("score", runs.na, runs.eu, "--config", runs.config, "--json")
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def test_nearest_rank_percentiles_are_exact_samples() -> None:
    values = [float(v) for v in range(1, 101)]
    assert nearest_rank(values, 95) == 95.0
    assert nearest_rank(values, 50) == 50.0
    assert nearest_rank(values, 99) == 99.0
    assert nearest_rank([3.0], 99) == 3.0
    # higher is better: p95 is the value 95% of samples reached
    assert nearest_rank(values, 95, higher_is_better=True) == 6.0
    p = percentiles([0.2, 0.1, 0.3])
    assert (p.p50, p.p95, p.p99, p.count) == (0.2, 0.3, 0.3, 3)


def test_composite_score_is_half_at_budget_and_scaled_by_availability() -> None:
    budget = Budget(ttfb_p95=0.2, startup_p95=2.0, min_throughput=1.5)
    assert composite(1.0, 0.2, 2.0, 3e6, 2_000_000, budget) == pytest.approx(50.0)
    assert composite(0.5, 0.2, 2.0, 3e6, 2_000_000, budget) == pytest.approx(25.0)
    assert composite(1.0, 0.1, None, None, None, budget) > composite(1.0, 0.15, None, None,
                                                                     None, budget)


def test_measured_ttfb_matches_the_edges(probe_runs: ProbeRuns) -> None:
    doc = score_json(probe_runs)
    cells = {(r["id"], c["cdn"]): c for r in doc["regions"] for c in r["cells"]}
    # An edge never answers before its delay; a busy machine only adds to it: up to the 5 ms of
    # event-loop lag a sample may carry unflagged, plus the edge process waiting for a core.
    for region in ("na", "eu"):
        for cdn, delay in (("fast", DELAY_FAST), ("slow", DELAY_SLOW)):
            assert delay - 0.001 <= cells[region, cdn]["ttfb"]["p50"] <= delay + 0.008
    assert cells["eu", "slow"]["errors_by_class"] == {"http_5xx": cells["eu", "slow"]["errors"]}
    assert 0.07 < 1 - cells["eu", "slow"]["availability"] < 0.18  # every 8th request is a 503
    assert cells["na", "fast"]["availability"] == 1.0


def test_faster_cdn_ranks_first_in_every_region_and_overall(probe_runs: ProbeRuns) -> None:
    doc = score_json(probe_runs)
    assert [r["best"] for r in doc["regions"]] == ["fast", "fast"]
    assert [r["id"] for r in doc["regions"]] == ["na", "eu"]  # by audience weight
    overall = doc["overall"]
    assert [r["cdn"] for r in overall] == ["fast", "slow"]
    regions = {r["id"]: r for r in doc["regions"]}
    scores = {(rid, c["cdn"]): c["score"] for rid, r in regions.items() for c in r["cells"]}
    expected = (0.7 * scores["na", "fast"] + 0.3 * scores["eu", "fast"]) / 1.0
    assert overall[0]["score"] == pytest.approx(expected, abs=0.01)


def test_score_table_names_the_best_cdn(probe_runs: ProbeRuns) -> None:
    result = cdnpack_cli("score", probe_runs.na, probe_runs.eu, "--config", probe_runs.config)
    assert result.returncode == 0, result.stderr
    assert "fast *" in result.stdout
    assert "overall" in result.stdout


def test_prometheus_exposition_uses_blackbox_names(probe_runs: ProbeRuns, tmp_path: Path) -> None:
    out = tmp_path / "probe.prom"
    result = cdnpack_cli("score", probe_runs.na, probe_runs.eu, "--config", probe_runs.config,
                         "--prometheus", out, "--json")
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-z_]+="[^"]*",?)*\})? \S+$')
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.match(line), line
    assert ('probe_http_duration_seconds{region="na",cdn="fast",phase="processing",'
            'quantile="0.95"}') in text
    assert "# TYPE probe_http_duration_seconds summary" in text
    assert re.search(r'^probe_success_ratio\{region="eu",cdn="slow"\} 0\.\d+$', text, re.M)
    assert 'probe_cdn_overall_score{cdn="fast"}' in text


def test_html_report_has_a_heatmap_and_ttfb_distributions(
    probe_runs: ProbeRuns, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    result = cdnpack_cli("score", probe_runs.na, probe_runs.eu, "--config", probe_runs.config,
                         "--html", out, "--json")
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    assert page.count("class='heat'") == 4  # 2 regions x 2 CDNs
    assert page.count("<polyline") == 4  # one TTFB CDF per region x CDN
    assert "North America" in page
    assert "Europe" in page


def test_gate_fails_on_missed_budgets_and_writes_junit_and_summary(
    probe_runs: ProbeRuns, tmp_path: Path
) -> None:
    junit = tmp_path / "gate.xml"
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary)}
    result = cdnpack_cli("gate", probe_runs.na, probe_runs.eu, "--budgets", probe_runs.config,
                         "--junit", junit, env=env)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("cdnpack: error: ")
    assert "budget" in result.stderr
    assert "MISSED" in result.stdout
    suites = ET.parse(junit).getroot()
    cases = suites.findall("./testsuite/testcase")
    assert len(cases) == 2 * 2 * BUDGETS_PER_CELL
    failed = {(c.get("classname"), c.get("name")) for c in cases
              if c.find("failure") is not None}
    assert ("na.slow", "ttfb_p95") in failed
    assert ("eu.slow", "ttfb_p95") in failed
    assert ("eu.slow", "max_error_rate") in failed
    assert not any(str(cls).endswith(".fast") for cls, _ in failed)
    assert suites.get("failures") == str(len(failed))
    text = summary.read_text()
    assert text.startswith("earlier step\n## cdnpack gate:")
    assert "| eu | slow |" in text


def test_gate_passes_when_every_budget_holds(probe_runs: ProbeRuns, tmp_path: Path) -> None:
    result = cdnpack_cli("gate", probe_runs.na, probe_runs.eu, "--budgets", probe_runs.lenient,
                         "--json", "--junit", tmp_path / "j.xml")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["passed"] is True
    # lenient budgets set no throughput floor: 3 checks per cell, none skipped
    assert len(doc["checks"]) == 2 * 2 * 3
    assert all(c["passed"] for c in doc["checks"])
    assert ET.parse(tmp_path / "j.xml").getroot().get("failures") == "0"


@pytest.mark.parametrize("content", [
    "not json\n",
    '{"type": "fetch", "region": "na"}\n',
    '{"type": "mystery"}\n',
    "",
])
def test_gate_on_bad_results_is_bad_input(
    probe_runs: ProbeRuns, tmp_path: Path, content: str
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    result = cdnpack_cli("gate", bad, "--budgets", probe_runs.config)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("cdnpack: error: ")
    assert "Traceback" not in result.stderr


def test_gate_on_missing_file_is_bad_input(probe_runs: ProbeRuns, tmp_path: Path) -> None:
    result = cdnpack_cli("gate", tmp_path / "nope.jsonl", "--budgets", probe_runs.config)
    assert result.returncode == 2
    assert "nope.jsonl" in result.stderr


def test_lagged_samples_are_left_out_of_percentiles_but_count_for_availability() -> None:
    def fetch(ttfb: float, lagged: bool, error: str | None = None) -> tuple[str, dict[str, Any]]:
        return ("test", {"type": "fetch", "region": "na", "cdn": "a", "target": "x",
                         "step": "file", "ttfb_s": ttfb, "total_s": ttfb,
                         "throughput_bps": None, "error": error, "lagged": lagged})

    clean = [fetch(0.010, False) for _ in range(9)]
    results = parse_records([*clean, fetch(0.500, True), fetch(0.010, True, "http_5xx")])
    config = load_config(REPO / "regions.yaml")
    (cell,) = scorecard(results, config).regions[0].cells
    assert cell.ttfb.p99 == 0.010
    assert cell.ttfb.count == 9
    assert cell.lagged == 2
    assert cell.availability == pytest.approx(10 / 11)
    every_one_lagged = parse_records([fetch(0.5, True), fetch(0.7, True)])
    (tainted,) = scorecard(every_one_lagged, config).regions[0].cells
    assert tainted.ttfb.p50 == 0.5  # all flagged: kept rather than reporting no data


def test_failures_that_kept_up_do_not_hide_the_successes_that_lagged() -> None:
    """A busy runner flagged every success lagged; the failures beside them have no timing."""
    def play(startup: float | None, lagged: bool) -> tuple[str, dict[str, Any]]:
        return ("test", {"type": "playback", "region": "na", "cdn": "a", "target": "x.m3u8",
                         "rendition": "v", "startup_s": startup, "top_bandwidth_bps": 800_000,
                         "sustainable_ratio": None, "lagged": lagged,
                         "error": None if startup is not None else "http_5xx"})

    def fetch(ttfb: float | None, lagged: bool) -> tuple[str, dict[str, Any]]:
        return ("test", {"type": "fetch", "region": "na", "cdn": "a", "target": "x.m3u8",
                         "step": "manifest", "ttfb_s": ttfb, "total_s": ttfb or 0.1,
                         "throughput_bps": None, "lagged": lagged,
                         "error": None if ttfb is not None else "http_5xx"})

    results = parse_records([play(0.30, True), play(None, False), play(None, False),
                             fetch(0.05, True), fetch(None, False)])
    (cell,) = scorecard(results, load_config(REPO / "regions.yaml")).regions[0].cells
    assert cell.startup.p95 == 0.30
    assert cell.ttfb.p95 == 0.05
    assert cell.availability == 0.5
