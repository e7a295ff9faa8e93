"""`push`'s result: what was uploaded, skipped, held and invalidated; the plan on --dry-run."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from cdn.publish import PushResult


def push_doc(result: PushResult) -> dict[str, Any]:
    uploaded = result.uploaded
    return {
        "destination": result.destination, "objects": len(result.plan),
        "uploaded": len(uploaded), "skipped": sum(p.action == "skip" for p in result.plan),
        "held": [p.key for p in result.plan if p.action == "hold"],
        "uploaded_bytes": sum(p.bytes for p in uploaded), "pruned": result.pruned,
        "verified": result.verified,
        "invalidations": [asdict(i) for i in result.invalidations],
        "seconds": round(result.seconds, 3),
    }


def push_command_doc(result: PushResult, dry_run: bool) -> dict[str, Any]:
    return {**push_doc(result), "dry_run": dry_run,
            "plan": [asdict(p) for p in result.plan] if dry_run else None}


def show_push(result: PushResult, dry_run: bool) -> None:
    from rich.table import Table  # rich only for people: `--json` never loads it

    from render.console import out_console
    uploaded = result.uploaded
    if dry_run:
        table = Table(title=f"push plan for {result.destination}")
        for col in ("phase", "action", "key", "content type", "cache control"):
            table.add_column(col)
        for p in result.plan:
            table.add_row(str(p.phase), p.action, p.key, p.content_type, p.cache_control)
        out_console.print(table)
    out_console.print(
        f"{result.destination}: {len(uploaded)} uploaded "
        f"({sum(p.bytes for p in uploaded) / 1e6:.1f} MB), "
        f"{len(result.plan) - len(uploaded)} unchanged, {len(result.pruned)} pruned"
        + (", verified" if result.verified else " (dry run)")
        + f" in {result.seconds:.1f} s"
    )
    show_invalidations(result)


def show_invalidations(result: PushResult) -> None:
    from render.console import out_console
    for inv in result.invalidations:
        out_console.print(f"invalidation {inv.id}: {len(inv.paths)} paths, {inv.status}")
