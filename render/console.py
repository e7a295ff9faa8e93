"""The two consoles, one-line errors, and the progress bars every long command shows on a TTY.

rich is loaded the first time a console is used (`err_console`, `out_console` are made on
first access): `--json` output, one-line errors and every `--help` need none of it, and it
costs 20-40 ms to import (bench/startup.py, bench/encrypt.py on a 2-second source).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

    from packager.output.pipeline import ProgressSink

    err_console: Console
    #: Piped output (CI logs, `| tee`) gets room for the score table instead of rich's 80
    #: columns.
    out_console: Console


def __getattr__(name: str) -> Any:
    """err_console and out_console, made on first use."""
    if name not in ("err_console", "out_console"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    consoles = globals()
    if "err_console" not in consoles:
        from rich.console import Console
        consoles["err_console"] = Console(stderr=True)
        consoles["out_console"] = Console(width=None if sys.stdout.isatty() else 150)
    return consoles[name]


def _err_console() -> Console:
    return __getattr__("err_console")  # type: ignore[no-any-return]

#: How each stage's progress reads: unit and divisor.
_UNITS = {
    "transcode": ("s", 1.0), "segment": (" tracks", 1.0), "upload": (" MB", 1e6),
    "objects": (" objects", 1.0),
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
    if quiet or not _err_console().is_terminal:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    err_console = _err_console()
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
    if quiet or not _err_console().is_terminal:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    err_console = _err_console()
    columns = (TextColumn(label), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@contextmanager
def status(quiet: bool, message: str) -> Iterator[None]:
    """A spinner for one long step whose progress cannot be counted (a query) on a terminal."""
    if quiet or not _err_console().is_terminal:
        yield
        return
    with _err_console().status(message):
        yield
