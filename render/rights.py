"""`rights check` and `rights publish` for people (a table) and machines (JSON)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.table import Table

from packager.rights.instants import format_instant
from packager.rights.model import Grant
from packager.rights.standing import Standing
from packager.rights.territories import country_name
from render.console import out_console

if TYPE_CHECKING:  # `rights check` must not pay for botocore
    from steering.rights_publish import RightsPublishResult


def _languages(tags: tuple[str, ...] | None) -> list[str] | None:
    return None if tags is None else list(tags)


def grant_doc(grant: Grant) -> dict[str, Any]:
    return {"id": grant.id, "start": format_instant(grant.start),
            "end": format_instant(grant.end) if grant.end else None,
            "max_height": grant.max_height, "audio": _languages(grant.audio),
            "subtitles": _languages(grant.subtitles)}


def check_doc(standings: list[Standing], at: datetime) -> dict[str, Any]:
    return {
        "at": format_instant(at),
        "territories": [{
            "territory": s.territory, "name": country_name(s.territory),
            "licensed": s.licensed, "required": s.required,
            "grant": grant_doc(s.in_force) if s.in_force else None,
            "next": grant_doc(s.next) if s.next else None,
            "last": grant_doc(s.last) if s.last else None,
        } for s in standings],
        "unlicensed_required": [s.territory for s in standings
                                if s.required and not s.licensed],
    }


def _allows(grant: Grant) -> str:
    height = f"up to {grant.max_height}p" if grant.max_height else "every rung"
    audio = ", ".join(grant.audio) if grant.audio is not None else "all"
    text = (", ".join(grant.subtitles) or "none") if grant.subtitles is not None else "all"
    return f"{height}; audio {audio}; subtitles {text}"


def _when(standing: Standing) -> str:
    if standing.in_force is not None:
        end = standing.in_force.end
        return f"until {format_instant(end)}" if end else "no end"
    if standing.next is not None:
        return f"opens {format_instant(standing.next.start)} ({standing.next.id})"
    if standing.last is not None and standing.last.end is not None:
        return f"closed {format_instant(standing.last.end)} ({standing.last.id})"
    return ""


def show_check(standings: list[Standing], at: datetime) -> None:
    table = Table(title=f"cdnpack rights check at {format_instant(at)}")
    for column in ("territory", "", "grant", "allows", "window"):
        table.add_column(column)
    for s in standings:
        name = f"{s.territory} {country_name(s.territory)}" + (" *" if s.required else "")
        if s.in_force is not None:
            table.add_row(name, "[green]licensed[/green]", s.in_force.id,
                          _allows(s.in_force), _when(s))
        else:
            mark = "[red]not licensed[/red]" if s.required else "[yellow]not licensed[/yellow]"
            table.add_row(name, mark, "-", "-", _when(s))
    out_console.print(table)
    missing = [s.territory for s in standings if s.required and not s.licensed]
    if missing:
        out_console.print(f"[red]required but not licensed[/red]: {', '.join(missing)}")


def publish_doc(result: RightsPublishResult) -> dict[str, Any]:
    return result.doc()


def show_publish(result: RightsPublishResult) -> None:
    for line in result.lines():
        out_console.print(line)


def demo_rights_doc(published: RightsPublishResult, viewers: Sequence[Any],
                    note: str) -> dict[str, Any]:
    """The demo's publish and what each region's viewers got (testbed/demo.py's answers)."""
    return {"published": published.doc(),
            "viewers": [asdict(v) for v in viewers
                        if is_dataclass(v) and not isinstance(v, type)], "note": note}


def show_demo_rights(published: RightsPublishResult, viewers: Sequence[Any],
                     note: str) -> None:
    show_publish(published)
    if note:
        out_console.print(note)
        return
    table = Table(title="what each region's viewers get (edges running the published function)")
    for column in ("region", "viewer country", "master.m3u8", "grant", "top rung"):
        table.add_column(column)
    for v in viewers:
        table.add_row(v.region, v.country, str(v.manifest), v.grant or "-", str(v.top))
    out_console.print(table)
