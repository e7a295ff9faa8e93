"""Budgets against a scorecard: one check per region x CDN x budget, JUnit XML, markdown summary.

A check passes, fails, or is skipped when the results hold no data for it (no video target for a
startup budget, say): a missing measurement is reported, never silently counted as a pass.
The throughput budget compares the median segment throughput (score.py's p50) with
`min_throughput` x the highest video bitrate the manifest offers.
Real-viewer budgets (`rum_startup_p95`, `rum_rebuffer_ratio`) judge the RUM.jsonl cells of the
same region x CDN (`--rum`); a cell real viewers never reached is "no data", never a pass.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from packager.errors import BudgetError
from probes.config import ProbeConfig
from probes.score import Cell, Scorecard
from rum.records import RumSummary

BUDGETS = ("ttfb_p95", "startup_p95", "min_throughput", "max_error_rate", "rum_startup_p95",
           "rum_rebuffer_ratio")
#: Real-viewer summaries by (region, CDN), from a RUM.jsonl.
RumCells = dict[tuple[str, str], RumSummary]


@dataclass(frozen=True)
class Check:
    region: str
    cdn: str
    budget: str  # one of BUDGETS
    limit: float
    measured: float | None
    passed: bool | None  # None: skipped, no data

    @property
    def measured_text(self) -> str:
        return _fmt(self.budget, self.measured)

    @property
    def limit_text(self) -> str:
        op = {"min_throughput": ">=", "max_error_rate": "<="}.get(self.budget, "<=")
        return f"{op} {_fmt(self.budget, self.limit)}"

    @property
    def message(self) -> str:
        limit, measured = _fmt(self.budget, self.limit), _fmt(self.budget, self.measured)
        if self.passed is None:
            return f"{self.region}/{self.cdn} {self.budget}: no data (budget {limit})"
        op = {"min_throughput": ">=", "max_error_rate": "<="}.get(self.budget, "<=")
        verdict = "ok" if self.passed else "MISSED"
        return f"{self.region}/{self.cdn} {self.budget}: {measured} (budget {op} {limit}) {verdict}"


@dataclass(frozen=True)
class Verdict:
    checks: list[Check]

    @property
    def violations(self) -> list[Check]:
        return [c for c in self.checks if c.passed is False]

    @property
    def passed(self) -> bool:
        return not self.violations


def _fmt(budget: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if budget in ("ttfb_p95", "startup_p95", "rum_startup_p95"):
        return f"{value * 1000:.1f} ms"
    if budget == "min_throughput":
        return f"{value:.2f}x top bitrate"
    return f"{value * 100:.2f}%"


def _checks(cell: Cell, config: ProbeConfig) -> list[Check]:
    budget = config.budget(cell.region)
    out: list[Check] = []

    def check(name: str, limit: float | None, measured: float | None, higher_ok: bool) -> None:
        if limit is None:
            return
        passed = None if measured is None else (
            measured >= limit if higher_ok else measured <= limit)
        out.append(Check(cell.region, cell.cdn, name, limit, measured, passed))

    check("ttfb_p95", budget.ttfb_p95, cell.ttfb.p95, higher_ok=False)
    check("startup_p95", budget.startup_p95, cell.startup.p95, higher_ok=False)
    ratio = (cell.throughput.p50 / cell.top_bandwidth
             if cell.throughput.p50 is not None and cell.top_bandwidth else None)
    check("min_throughput", budget.min_throughput, ratio, higher_ok=True)
    error_rate = 1.0 - cell.availability if cell.fetches else None
    check("max_error_rate", budget.max_error_rate, error_rate, higher_ok=False)
    return out


def evaluate(card: Scorecard, config: ProbeConfig, rum: RumCells | None = None) -> Verdict:
    checks = [c for r in card.regions for cell in r.cells for c in _checks(cell, config)]
    if rum is not None:
        checks += rum_checks(card, config, rum)
    return Verdict(checks)


def rum_checks(card: Scorecard, config: ProbeConfig, rum: RumCells) -> list[Check]:
    """The real-viewer budgets of every region x CDN the probes or the viewers saw."""
    probed = [(r.id, c.cdn) for r in card.regions for c in r.cells]
    known = {r.id for r in config.regions}
    seen = sorted(set(probed) | {k for k in rum if k[0] in known})
    out: list[Check] = []
    for region, cdn in seen:
        budget = config.budget(region)
        viewers = rum.get((region, cdn))
        for name, limit, measured in (
                ("rum_startup_p95", budget.rum_startup_p95,
                 viewers.startup_p95 if viewers else None),
                ("rum_rebuffer_ratio", budget.rum_rebuffer_ratio,
                 viewers.rebuffer_ratio if viewers else None)):
            if limit is not None:
                passed = None if measured is None else measured <= limit
                out.append(Check(region, cdn, name, limit, measured, passed))
    return out


def junit_xml(verdict: Verdict) -> str:
    """JUnit XML: a testsuite per region, a testcase per CDN x budget (classname region.cdn)."""
    root = ET.Element("testsuites", name="cdnpack gate", tests=str(len(verdict.checks)),
                      failures=str(len(verdict.violations)))
    by_region: dict[str, list[Check]] = {}
    for c in verdict.checks:
        by_region.setdefault(c.region, []).append(c)
    for region, checks in by_region.items():
        suite = ET.SubElement(
            root, "testsuite", name=f"region {region}", tests=str(len(checks)),
            failures=str(sum(1 for c in checks if c.passed is False)),
            skipped=str(sum(1 for c in checks if c.passed is None)), errors="0",
        )
        for c in checks:
            case = ET.SubElement(suite, "testcase", classname=f"{c.region}.{c.cdn}",
                                 name=c.budget)
            if c.passed is False:
                failure = ET.SubElement(case, "failure", message=c.message, type="BudgetMissed")
                failure.text = c.message
            elif c.passed is None:
                ET.SubElement(case, "skipped", message=c.message)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def markdown_summary(verdict: Verdict, card: Scorecard) -> str:
    """GitHub step summary: verdict, violations, then the region x CDN table."""
    lines = [
        "## cdnpack gate: " + ("passed" if verdict.passed else
                                f"{len(verdict.violations)} budget(s) missed"),
        "",
    ]
    if verdict.violations:
        lines += ["| region | CDN | budget | measured | limit |", "|---|---|---|---|---|"]
        lines += [f"| {c.region} | {c.cdn} | {c.budget} | {_fmt(c.budget, c.measured)} | "
                  f"{_fmt(c.budget, c.limit)} |" for c in verdict.violations]
        lines.append("")
    lines += ["| region | CDN | rank | score | TTFB p95 | startup p95 | availability |",
              "|---|---|---|---|---|---|---|"]
    for r in card.regions:
        for cell in r.cells:
            lines.append(
                f"| {r.name} | {cell.cdn} | {cell.rank} | {cell.score:.1f} | "
                f"{_fmt('ttfb_p95', cell.ttfb.p95)} | {_fmt('startup_p95', cell.startup.p95)} | "
                f"{cell.availability * 100:.2f}% |")
    return "\n".join(lines) + "\n"


def enforce(verdict: Verdict) -> None:
    """Exit code 1 (BudgetError) when any budget was missed."""
    if not verdict.passed:
        missed = verdict.violations
        raise BudgetError(f"{len(missed)} of {len(verdict.checks)} budget checks missed: "
                          + "; ".join(c.message for c in missed[:3])
                          + (" ..." if len(missed) > 3 else ""))


def write_step_summary(verdict: Verdict, card: Scorecard) -> None:
    """Append the markdown summary to $GITHUB_STEP_SUMMARY when GitHub Actions sets it."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with Path(path).open("a") as f:
            f.write(markdown_summary(verdict, card))
