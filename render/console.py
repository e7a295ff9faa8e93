"""The two consoles, one-line errors, and the progress bars every long command shows on a TTY."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import TaskID

    from packager.output.pipeline import ProgressSink

err_console = Console(stderr=True)
#: Piped output (CI logs, `| tee`) gets room for the score table instead of rich's 80 columns.
out_console = Console(width=None if sys.stdout.isatty() else 150)

#: How each stage's progress reads: unit and divisor.
_UNITS = {
    "transcode": ("s", 1.0), "segment": (" tracks", 1.0), "upload": (" MB", 1e6),
    "objects": (" objects", 1.0), "analyse": (" trials", 1.0), "vmaf": ("", 1.0),
}


def fail(message: str) -> None:
    """One line on stderr, never wrapped: scripts grep it and CI logs show it whole."""
    click.echo(f"cdnpack: {' '.join(message.split())}", err=True)


def emit_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2))


def millis(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


@contextmanager
def progress(quiet: bool) -> Iterator[ProgressSink | None]:
    """A bar per stage (transcode, segment, upload, ...) on a terminal; nothing otherwise."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    if quiet or not err_console.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description:<10}"), BarColumn(), TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def sink(stage: str, done: float, total: float) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total, detail="")
            unit, scale = _UNITS.get(stage, ("", 1.0))
            detail = f"{done / scale:.0f}/{total / scale:.0f}{unit}"
            bar.update(tasks[stage], completed=done, total=total, detail=detail)

        yield sink


@contextmanager
def unit_progress(quiet: bool, label: str) -> Iterator[Callable[[int, int], None] | None]:
    """One bar counting units of work (probe fetches, log files) on a terminal."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    if quiet or not err_console.is_terminal:
        yield None
        return
    columns = (TextColumn(label), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@contextmanager
def status(quiet: bool, message: str) -> Iterator[None]:
    """A spinner for one long step whose progress cannot be counted (a query) on a terminal."""
    if quiet or not err_console.is_terminal:
        yield
        return
    with err_console.status(message):
        yield
