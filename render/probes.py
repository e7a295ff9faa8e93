"""`probe`, `score` and `gate` results: the scorecard table, the missed budgets, the run."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import click
from rich.table import Table

from probes.gate import RumCells, Verdict
from probes.run import ProbeRun
from probes.schedule import RoundReport
from probes.score import Cell, Scorecard
from render.console import fail, millis, out_console


def verdict_doc(verdict: Verdict) -> dict[str, Any]:
    return {"passed": verdict.passed,
            "checks": [{**asdict(c), "message": c.message} for c in verdict.checks]}


def show_verdict(verdict: Verdict) -> None:
    """The missed and unmeasured checks; a pass is one line."""
    table = Table(title=f"cdnpack gate: {len(verdict.checks)} checks, "
                        f"{len(verdict.violations)} missed")
    for col in ("region", "CDN", "budget", "measured", "limit", "result"):
        table.add_column(col)
    for c in verdict.checks:
        if c.passed is not True:
            mark = "[red]MISSED[/red]" if c.passed is False else "[yellow]no data[/yellow]"
            table.add_row(c.region, c.cdn, c.budget, c.measured_text, c.limit_text, mark)
    if table.row_count:
        out_console.print(table)
    else:
        out_console.print(f"gate: all {len(verdict.checks)} budget checks passed")


def show_scorecard(card: Scorecard, title: str, rum: RumCells | None = None) -> None:
    """The probes' table; with `rum`, the real viewers' columns beside each region x CDN."""
    table = Table(title=title)
    for col in ("region", "CDN", "rank", "score", "TTFB p50/p95/p99 ms", "startup p50/p95 ms",
                "Mb/s p50", "avail.", "errors"):
        table.add_column(col, justify="left" if col in ("region", "CDN", "errors") else "right")
    if rum is not None:
        for col in RUM_COLUMNS:
            table.add_column(col, justify="right", style="cyan")
    for region in card.regions:
        for c in region.cells:
            best = " *" if c.cdn == region.best else ""
            mbps = "-" if c.throughput.p50 is None else f"{c.throughput.p50 / 1e6:.1f}"
            errors = ", ".join(f"{k} {v}" for k, v in c.errors_by_class.items()) or "-"
            table.add_row(
                region.name, c.cdn + best, str(c.rank), f"{c.score:.1f}",
                f"{millis(c.ttfb.p50)}/{millis(c.ttfb.p95)}/{millis(c.ttfb.p99)}",
                f"{millis(c.startup.p50)}/{millis(c.startup.p95)}", mbps,
                f"{c.availability * 100:.2f}%", errors,
                *(rum_row(rum.get((region.id, c.cdn))) if rum is not None else ()),
            )
    out_console.print(table)
    if rum is not None:
        probed = {(r.id, c.cdn) for r in card.regions for c in r.cells}
        unprobed = sorted(k for k in rum if k not in probed)
        if unprobed:
            out_console.print("real viewers only (no probe results): " + ", ".join(
                f"{region}/{cdn} {rum[region, cdn].sessions} sessions"
                for region, cdn in unprobed))
    out_console.print("overall (audience-weighted): " + ", ".join(
        f"{r.rank}. {r.cdn} {r.score:.1f}" for r in card.overall))


#: The real-viewer columns (CDN logs with CMCD) beside the probes' in the score table.
RUM_COLUMNS = ("viewers", "RUM startup p50/p95 ms", "rebuffer", "RUM Mb/s mtp/edge", "err.")


def rum_row(viewers: Any) -> tuple[str, ...]:
    """The RUM_COLUMNS of one region x CDN ('no data' when no viewer reached it)."""
    if viewers is None:
        return ("no data", "-", "-", "-", "-")
    ratio = "-" if viewers.rebuffer_ratio is None else f"{viewers.rebuffer_ratio * 100:.1f}%"
    mbps = "/".join("-" if v is None else f"{v / 1e6:.1f}"
                    for v in (viewers.mtp_p50, viewers.throughput_p50))
    errors = "-" if viewers.error_rate is None else f"{viewers.error_rate * 100:.2f}%"
    return (str(viewers.sessions), f"{millis(viewers.startup_p50)}/{millis(viewers.startup_p95)}",
            ratio, mbps, errors)


def rum_doc(rum: RumCells) -> list[dict[str, Any]]:
    return [{**asdict(v), "error_rate": v.error_rate} for v in rum.values()]


def scorecard_doc(card: Scorecard, rum: RumCells | None = None) -> dict[str, Any]:
    def cell(c: Cell) -> dict[str, Any]:
        doc = asdict(c)
        doc.pop("ttfb_samples")
        if rum is not None:
            viewers = rum.get((c.region, c.cdn))
            doc["rum"] = None if viewers is None else {**asdict(viewers),
                                                       "error_rate": viewers.error_rate}
        return doc

    doc: dict[str, Any] = {
        "overall": [asdict(r) for r in card.overall],
        "regions": [{"id": r.id, "name": r.name, "weight": r.weight, "best": r.best,
                     "cells": [cell(c) for c in r.cells]} for r in card.regions],
    }
    if rum is not None:
        doc["rum"] = rum_doc(rum)
    return doc


def show_round(report: RoundReport, as_json: bool) -> None:
    """One line per scheduled round (a JSON object per line with --json); bus failures on
    stderr, where a cron mail or a pod log shows them."""
    if as_json:
        click.echo(json.dumps({**probe_doc(report.run, report.output, None),
                               "round": report.round, "stored": report.stored,
                               "bus_errors": report.bus_errors, "pending": report.pending}))
    else:
        run = report.run
        out_console.print(
            f"round {report.round}: {run.fetches} fetches, {run.errors} errors in "
            f"{run.seconds:.1f} s -> {report.output}"
            + (f", {len(report.stored)} stored" if report.stored else ""))
    for error in report.bus_errors:
        fail(f"results bus: round {report.round}: {error} (kept; retried with the next round)")


def probe_doc(run: ProbeRun, output: str, stored: str | None) -> dict[str, Any]:
    return {
        "run_id": run.run_id, "region": run.region, "output": output, "stored": stored,
        "seconds": round(run.seconds, 3), "units": run.units, "completed": run.completed,
        "abandoned": run.abandoned, "deadline_hit": run.deadline_hit,
        "fetches": run.fetches, "errors": run.errors, "lag_max_s": round(run.lag.max, 6),
    }


def show_probe(run: ProbeRun, card: Scorecard, output: str, stored: str | None) -> None:
    show_scorecard(card, f"probe {run.region}: {run.fetches} fetches in {run.seconds:.1f} s")
    out_console.print(f"results: {output}" + (f", {stored}" if stored else ""))
    lagged = run.lines[0]["lagged"]
    if lagged > run.fetches / 10:
        out_console.print(f"[yellow]{lagged} of {run.fetches} fetches were timed while the "
                          "event loop lagged; their timings are left out of percentiles. "
                          "Lower probe.concurrency or give the prober more CPU.[/yellow]")
    if run.deadline_hit:
        out_console.print(f"[yellow]deadline reached: {run.abandoned} of {run.units} units "
                          "not completed[/yellow]")
