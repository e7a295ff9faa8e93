"""`rum ingest` results: the new (region, CDN, hour) cells and what was wrong in which file."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.table import Table

from render.console import millis, out_console
from rum.ingest import IngestResult


def _mbps(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e6:.2f}"


def ingest_doc(result: IngestResult) -> dict[str, Any]:
    return {
        "output": str(result.output), "batch": result.batch, "engine": result.engine,
        "seconds": round(result.seconds, 3), "lines": result.lines,
        "files": [asdict(f) for f in result.files], "already_ingested": result.already,
        "cells": [c.line() for c in result.cells],
    }


def show_ingest(result: IngestResult) -> None:
    table = Table(title=f"rum ingest: {len(result.files)} files, {result.lines} lines in "
                        f"{result.seconds:.1f} s ({result.engine})")
    for col in ("region", "CDN", "hour (UTC)", "sessions", "startup p50/p95 ms",
                "rebuffer", "mtp p50 Mb/s", "delivered Mb/s", "bitrate Mb/s", "errors", "GB"):
        table.add_column(col, justify="left" if col in ("region", "CDN", "hour (UTC)")
                         else "right")
    for c in result.cells:
        ratio = "-" if c.rebuffer_ratio is None else f"{c.rebuffer_ratio * 100:.1f}%"
        table.add_row(c.region, c.cdn, c.hour[:13].replace("T", " "), str(c.sessions),
                      f"{millis(c.startup_p50)}/{millis(c.startup_p95)}",
                      f"{ratio} ({c.rebuffering_sessions} sess.)", _mbps(c.mtp_p50),
                      _mbps(c.throughput_p50), _mbps(c.bitrate), f"{c.error_rate * 100:.2f}%",
                      f"{c.bytes / 1e9:.3f}")
    if result.cells:
        out_console.print(table)
    for f in result.files:
        notes = [f"{f.rejected} lines rejected" if f.rejected else "",
                 f"{f.bad_cmcd} malformed CMCD values skipped" if f.bad_cmcd else "",
                 f.problem or ""]
        said = "; ".join(n for n in notes if n)
        if said:
            out_console.print(f"[yellow]{f.source}: {said}[/yellow]")
    if result.already:
        out_console.print(f"{len(result.already)} file(s) already in {result.output}: "
                          "counted once, skipped")
    out_console.print(f"written: {result.output}" if result.files else
                      f"nothing new: {result.output} unchanged")
