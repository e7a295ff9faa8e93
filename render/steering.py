"""`steer plan` and `steer serve` for people (a table, a line) and machines (JSON)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from render.console import out_console

if TYPE_CHECKING:  # `steer plan` must not pay for aiohttp and botocore to print a table
    from probes.config import ProbeConfig
    from steering.plan import Plan, RegionPlan
    from steering.publish import PublishResult
    from steering.server import ServeResult


def _limits(config: ProbeConfig) -> tuple[float, float]:
    steering = config.steering
    if steering is None:
        return float("inf"), 0.0
    return steering.max_age, steering.hysteresis


def region_doc(region: RegionPlan, now: datetime, config: ProbeConfig) -> dict[str, Any]:
    age = region.age(now)
    return {
        "region": region.region,
        "order": list(region.order),
        "basis": region.basis,
        "age_s": None if age is None else round(age, 1),
        "run_id": region.run_id,
        "held": region.held,
        "challenger": region.challenger,
        "throughput_floor_bps": region.throughput_floor,
        "pathways": [{"cdn": r.cdn, "score": r.score, "missed": list(r.missed)}
                     for r in region.ranks],
        "reasons": region.reasons(now, *_limits(config)),
    }


def plan_doc(plan: Plan, config: ProbeConfig) -> dict[str, Any]:
    return {
        "created": plan.created.isoformat(timespec="seconds"),
        "regions": [region_doc(r, plan.created, config) for r in plan.regions],
        "overall": region_doc(plan.overall, plan.created, config),
    }


def show_plan(plan: Plan, config: ProbeConfig) -> None:
    table = Table(title="cdnpack steer plan: pathway order per region")
    for col in ("region", "order", "basis", "why"):
        table.add_column(col)
    names = {r.id: r.name for r in config.regions}
    for region in (*plan.regions, plan.overall):
        name = names.get(region.region, "unknown viewers (audience-weighted)")
        basis = region.basis if region.basis != "measured" else "[green]measured[/green]"
        if region.stale:
            basis = f"[yellow]{region.basis}[/yellow]"
        why = "\n".join(region.reasons(plan.created, *_limits(config)))
        table.add_row(name, " > ".join(region.order), basis, why)
    out_console.print(table)


def json_line(doc: dict[str, Any]) -> None:
    """One compact JSON object per line: a server's events as a stream."""
    click.echo(json.dumps(doc, separators=(",", ":")))


def show_listening(url: str, as_json: bool) -> None:
    if as_json:
        json_line({"event": "listening", "url": url,
                   "documents": [f"{url}/hls.json", f"{url}/dash.json"],
                   "metrics": f"{url}/metrics", "health": f"{url}/healthz"})
        return
    click.echo(f"steering on {url}: {url}/hls.json, {url}/dash.json; metrics {url}/metrics; "
               "Ctrl-C stops it")


def show_stopped(result: ServeResult, as_json: bool) -> None:
    if as_json:
        json_line({"event": "stopped", "url": result.url, "requests": result.requests,
                   "refreshes": result.refreshes, "refresh_failures": result.failures,
                   "seconds": round(result.seconds, 1)})
        return
    out_console.print(f"steering stopped: {result.requests} requests in {result.seconds:.0f} s, "
                      f"{result.refreshes} refreshes ({result.failures} failed)")


def publish_doc(result: PublishResult, config: ProbeConfig) -> dict[str, Any]:
    return {
        "destination": result.destination,
        "documents": [{"key": d.key, "region": d.region, "order": list(d.order),
                       "bytes": len(d.body)} for d in result.documents],
        "function": {"key": result.function_key, "bytes": result.function_bytes,
                     "runtime": result.runtime, "file": result.function_file},
        "server": config.steering.server if config.steering else None,
    }


def show_publish(result: PublishResult, config: ProbeConfig) -> None:
    table = Table(title=f"cdnpack steer publish: {result.destination}")
    for col in ("document", "region", "order"):
        table.add_column(col)
    for doc in result.documents:
        table.add_row(doc.key, doc.region, " > ".join(doc.order))
    out_console.print(table)
    out_console.print(
        f"CloudFront Function ({result.runtime}, {result.function_bytes} bytes): "
        f"{result.function_key}"
        + (f", {result.function_file}" if result.function_file else "")
        + "; associate it (viewer request) with the behaviour serving "
        + (config.steering.server if config.steering else "the documents"))


def demo_steering_doc(url: str, plan: Plan, config: ProbeConfig,
                      served: dict[str, list[str]]) -> dict[str, Any]:
    return {"server": url, "plan": plan_doc(plan, config), "served": served}


def show_demo_steering(url: str, plan: Plan, config: ProbeConfig,
                       served: dict[str, list[str]]) -> None:
    show_plan(plan, config)
    out_console.print(f"steering server {url} answered: " + "; ".join(
        f"{region} {' > '.join(order)}" for region, order in served.items()))
