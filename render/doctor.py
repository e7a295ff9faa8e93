"""`doctor`'s result: each tool's version and where it comes from, or what is wrong with it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.table import Table

from packager.tools import ToolCheck
from render.console import out_console


def doctor_doc(checks: list[ToolCheck], problems: list[str]) -> dict[str, Any]:
    tools = [{k: v for k, v in asdict(c).items() if v not in (None, ())} for c in checks]
    return {"ok": not problems, "tools": tools, "problems": problems}


def show_doctor(checks: list[ToolCheck]) -> None:
    table = Table(title="cdnpack doctor")
    for col in ("tool", "version", "source", "path / problem"):
        table.add_column(col)
    for c in checks:
        where = f"[red]{c.error}[/red]" if c.error else (c.path or "")
        table.add_row(c.tool, c.version or "-", c.source or "-", where)
    out_console.print(table)
    for c in checks:
        if c.encoders:
            out_console.print(f"encoders: {', '.join(c.encoders)}")
