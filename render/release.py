"""`release`'s result: staged, probed, gated, then published or held back."""

from __future__ import annotations

from typing import Any

from cdn.publish import PHASE_MANIFESTS
from release.flow import RolloutResult
from render.console import out_console
from render.probes import scorecard_doc, show_scorecard, show_verdict, verdict_doc
from render.push import push_doc, show_invalidations


def rollout_doc(result: RolloutResult) -> dict[str, Any]:
    return {
        "staged": push_doc(result.staged),
        "candidates": result.candidates,
        "probes": [{"region": r.region, "run_id": r.run_id, "fetches": r.fetches,
                    "errors": r.errors, "seconds": round(r.seconds, 3), "results": str(path)}
                   for r, path in zip(result.runs, result.results, strict=True)],
        "scorecard": scorecard_doc(result.card),
        "gate": verdict_doc(result.verdict),
        "published": push_doc(result.published) if result.published else None,
        "steering": ({"destination": result.steering.destination,
                      "documents": {d.key: list(d.order) for d in result.steering.documents},
                      "function": result.steering.function_key}
                     if result.steering else None),
    }


def show_rollout(result: RolloutResult) -> None:
    staged = result.staged
    out_console.print(
        f"staged {staged.destination}: {len(staged.uploaded)} objects uploaded, "
        f"{sum(p.action == 'skip' for p in staged.plan)} unchanged, verified; manifests held "
        "back, probed as " + ", ".join(result.candidates.values()))
    fetches = sum(r.fetches for r in result.runs)
    show_scorecard(result.card, f"staged release: {fetches} fetches from "
                                f"{len(result.runs)} regions")
    show_verdict(result.verdict)
    if result.published is None:
        out_console.print("[red]not published[/red]: the multivariant playlist and MPD stay "
                          "unpublished (staged candidates deleted)")
        return
    held = [p for p in result.published.plan if p.phase == PHASE_MANIFESTS]
    if result.steering is not None:
        out_console.print(f"steering documents: {result.steering.destination} "
                          f"({len(result.steering.documents)} documents, CloudFront Function "
                          f"{result.steering.function_key})")
    out_console.print(f"[green]published[/green] {', '.join(p.key for p in held)}")
    show_invalidations(result.published)
