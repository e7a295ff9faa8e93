"""`catalog run` and `catalog status` for people (progress bars, a table) and for `--json`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from render.console import err_console, out_console

if TYPE_CHECKING:
    from release.catalog import CatalogProgress, CatalogResult, TitleOutcome
    from release.catalog_state import TitleState

#: How each stage of a title's progress reads: unit and divisor (render/console.py's, plus
#: the download of an S3 source).
_UNITS = {"transcode": ("s", 1.0), "segment": (" tracks", 1.0), "upload": (" MB", 1e6),
          "objects": (" objects", 1.0), "download": ("", 1.0)}


class _Bars:
    """One bar for the catalog (titles done of those to do) and one per running title (its
    current stage: transcode, segment, upload...); a line for each title as it ends."""

    def __init__(self, bar: Progress) -> None:
        self._bar = bar
        self._catalog: TaskID | None = None
        self._titles: dict[str, TaskID] = {}

    def planned(self, states: list[TitleState], todo: int) -> None:
        up_to_date = len(states) - todo
        self._catalog = self._bar.add_task(
            "catalog", total=todo or 1, detail=f"{todo} to do, {up_to_date} up to date")

    def started(self, title: str) -> None:
        self._titles[title] = self._bar.add_task(title, total=None, detail="starting")

    def progress(self, title: str, stage: str, done: float, total: float) -> None:
        task = self._titles.get(title)
        if task is None:
            return
        unit, scale = _UNITS.get(stage, ("", 1.0))
        self._bar.update(task, completed=done, total=total or None,
                         detail=f"{stage} {done / scale:.0f}/{total / scale:.0f}{unit}")

    def finished(self, outcome: TitleOutcome) -> None:
        task = self._titles.pop(outcome.id, None)
        if task is not None:
            self._bar.remove_task(task)
        if self._catalog is not None:
            self._bar.advance(self._catalog)
        mark = "[green]published[/]" if outcome.state == "published" else "[red]failed[/]"
        self._bar.console.print(f"{outcome.id}: {mark} {outcome.reason}".rstrip())


@contextmanager
def catalog_progress(quiet: bool) -> Iterator[CatalogProgress | None]:
    if quiet or not err_console.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description:<16}"), BarColumn(),
               TextColumn("{task.fields[detail]}"), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        yield _Bars(bar)


def _outcome_doc(outcome: TitleOutcome) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": outcome.id, "state": outcome.state,
                           "destination": outcome.destination}
    if outcome.reason:
        doc |= {"reason": outcome.reason, "exit_code": outcome.exit_code}
    if outcome.published is not None:
        published = asdict(outcome.published)
        doc |= {k: published[k] for k in ("seconds", "uploaded", "bytes", "renditions",
                                          "chunks")}
        doc["seconds"] = round(doc["seconds"], 3)
    return doc


def catalog_doc(result: CatalogResult) -> dict[str, Any]:
    return {"catalog": str(result.catalog), "cluster": result.cluster or None,
            "seconds": round(result.seconds, 3),
            "titles": [_outcome_doc(o) for o in result.outcomes],
            "failed": [o.id for o in result.failed]}


def show_catalog(result: CatalogResult) -> None:
    table = Table(title=f"catalog {result.catalog}")
    for column in ("title", "state", "destination", "detail"):
        table.add_column(column)
    for outcome in result.outcomes:
        detail = outcome.reason
        if outcome.published is not None:
            p = outcome.published
            detail = (f"{p.uploaded} objects ({p.bytes / 1e6:.1f} MB) in {p.seconds:.1f} s, "
                      f"{p.renditions} renditions"
                      + (f", video in {p.chunks} chunks" if p.chunks > 1 else ""))
        table.add_row(outcome.id, outcome.state, outcome.destination, detail)
    out_console.print(table)
    counts = {s: sum(o.state == s for o in result.outcomes)
              for s in ("published", "up to date", "failed")}
    out_console.print(", ".join(f"{n} {s}" for s, n in counts.items())
                      + (f"; encode jobs on {result.cluster}" if result.cluster else "")
                      + f"; {result.seconds:.1f} s")


def _state_doc(state: TitleState) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": state.spec.id, "state": state.state, "destination": state.url,
                           "published": state.published is not None}
    if state.note:
        doc["note"] = state.note
    if state.failure is not None:
        doc |= {"reason": state.failure.reason, "exit_code": state.failure.exit_code,
                "failed_at": state.failure.at}
    return doc


def status_doc(path: str, states: list[TitleState]) -> dict[str, Any]:
    return {"catalog": path, "titles": [_state_doc(s) for s in states]}


def show_status(path: str, states: list[TitleState]) -> None:
    table = Table(title=f"catalog {path}")
    for column in ("title", "state", "published at", "detail"):
        table.add_column(column)
    for state in states:
        where = state.url if state.published is not None else "-"
        detail = (f"{state.failure.reason} ({state.failure.at})" if state.failure is not None
                  else state.note)
        table.add_row(state.spec.id, state.state, where, detail)
    out_console.print(table)
