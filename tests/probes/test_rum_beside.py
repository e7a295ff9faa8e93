"""`score --rum` and `gate --rum`: real viewers (RUM.jsonl from CDN logs) beside the probes;
real-viewer budgets judged, and "no data" where no viewer reached a region x CDN."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from packager.errors import InputError
from probes.config import load_config
from tests.conftest import cdnpack_cli
from tests.probes.conftest import LENIENT_BUDGETS, ProbeRuns
from tests.rum.logs import T0, Viewer, session, write_logs

RUM_BUDGETS = (LENIENT_BUDGETS.rstrip("}\n")
               + ", rum_startup_p95: 1500ms, rum_rebuffer_ratio: 0.1}\n")


@pytest.fixture
def rum(probe_runs: ProbeRuns, tmp_path: Path) -> tuple[Path, Path]:
    """(config with countries and real-viewer budgets, RUM.jsonl): in na, `fast` viewers play
    well and `slow` viewers stall; nobody watched in eu."""
    text = probe_runs.lenient.read_text()
    text = text.replace("{id: na, name: North America, weight: 0.7}",
                        "{id: na, name: North America, weight: 0.7, countries: [US]}")
    text = text.replace(LENIENT_BUDGETS, RUM_BUDGETS)
    config = tmp_path / "regions.yaml"
    config.write_text(text)
    out = tmp_path / "RUM.jsonl"
    for cdn, stalls in (("fast", 0), ("slow", 3)):
        logs = tmp_path / cdn
        write_logs(logs, [e for i in range(4) for e in session(
            Viewer(f"{cdn}-{i}", country="US", edge="IAD89-P1"), T0 + 40 * i, 1200, 8000,
            stalls=stalls)])
        done = cdnpack_cli("rum", "ingest", logs / "realtime", "--format", "cloudfront-realtime",
                           "--config", config, "--cdn", cdn, "-o", out)
        assert done.returncode == 0, done.stderr
    return config, out


def test_score_shows_probes_and_real_viewers_side_by_side(
        probe_runs: ProbeRuns, rum: tuple[Path, Path], tmp_path: Path) -> None:
    config, out = rum
    html = tmp_path / "report.html"
    done = cdnpack_cli("score", probe_runs.na, probe_runs.eu, "--config", config, "--rum", out,
                       "--html", html, "--json")
    assert done.returncode == 0, done.stderr
    cells = {(r["id"], c["cdn"]): c for r in json.loads(done.stdout)["regions"]
             for c in r["cells"]}
    assert cells["na", "fast"]["rum"]["sessions"] == 4
    assert cells["na", "slow"]["rum"]["rebuffering_sessions"] == 4
    assert cells["eu", "fast"]["rum"] is None
    assert cells["na", "fast"]["ttfb"]["p95"] is not None  # the synthetic columns stay
    page = html.read_text()
    assert "Synthetic probes and real viewers, side by side" in page
    assert page.count("<tr data-region=") == 4
    assert "no data" in page
    table = cdnpack_cli("score", probe_runs.na, probe_runs.eu, "--config", config, "--rum", out)
    assert table.returncode == 0, table.stderr
    assert "viewers" in table.stdout
    assert "no data" in table.stdout


def test_gate_judges_real_viewer_budgets_and_reports_no_data(
        probe_runs: ProbeRuns, rum: tuple[Path, Path]) -> None:
    config, out = rum
    done = cdnpack_cli("gate", probe_runs.na, probe_runs.eu, "--budgets", config, "--rum", out,
                       "--json")
    assert done.returncode == 1, done.stderr
    checks = {(c["region"], c["cdn"], c["budget"]): c for c in json.loads(done.stdout)["checks"]
              if c["budget"].startswith("rum_")}
    assert len(checks) == 2 * 2 * 2
    assert checks["na", "fast", "rum_rebuffer_ratio"]["passed"] is True
    assert checks["na", "fast", "rum_startup_p95"]["passed"] is True
    assert checks["na", "slow", "rum_rebuffer_ratio"]["passed"] is False
    assert checks["na", "slow", "rum_rebuffer_ratio"]["measured"] == pytest.approx(0.5)
    assert [checks["eu", cdn, b]["passed"] for cdn in ("fast", "slow")
            for b in ("rum_startup_p95", "rum_rebuffer_ratio")] == [None] * 4
    people = cdnpack_cli("gate", probe_runs.na, probe_runs.eu, "--budgets", config, "--rum", out)
    assert people.returncode == 1
    assert "rum_rebuffer_ratio" in people.stdout
    assert "no data" in people.stdout


@pytest.mark.parametrize(("line", "message"), [
    ("rum_rebuffer_ratio: 2", "budgets.default.rum_rebuffer_ratio: must be in [0.0, 1.0]"),
    ("rum_startup_p95: 3", "budgets.default.rum_startup_p95: must be a duration"),
])
def test_real_viewer_budgets_are_checked_with_file_and_line(
        tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "regions.yaml"
    path.write_text("regions: [{id: na, name: NA, weight: 1}]\n"
                    "cdns: [{id: a, base_url: 'http://a.example/'}]\ntargets: [x.m3u8]\n"
                    f"budgets:\n  default:\n    {line}\n")
    with pytest.raises(InputError, match=re.escape(f"regions.yaml:6: {message}")):
        load_config(path)
