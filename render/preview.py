"""`preview` for people (what is served and where to look) and machines (one JSON event a line)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from render.console import out_console
from render.steering import json_line

if TYPE_CHECKING:  # the CLI's start must not pay for aiohttp
    from preview.server import PreviewRequest, PreviewResult


def listening_doc(url: str, request: PreviewRequest) -> dict[str, Any]:
    """What the preview serves, for machines: URLs and the release's parts, never a key."""
    preview = request.preview
    contents, release = preview.contents, preview.contents.release
    keys = preview.keys
    return {
        "event": "listening",
        "url": url,
        "page": f"{url}/",
        "release": str(contents.root),
        "play_from": preview.source,
        "manifests": {fmt: u if u.startswith("http") else url + u
                      for fmt, u in preview.manifest_urls(preview.source).items()},
        "renditions": [r.id for r in release.renditions],
        "measured_quality": sorted(contents.quality),
        "iframes": [i.playlist for i in release.iframes],
        "thumbnails": [t.id for t in release.thumbnails],
        "protection": None if release.protection is None else {
            "scheme": release.protection.scheme, "kids": release.protection.kids,
            "delivery": keys.delivery if keys else None, "keys_from": keys.source if keys else None,
        },
        "pathways": [p.id for p in preview.steered.pathways] if preview.steered else [],
        "regions": {r.region: list(r.order) for r in preview.regions},
    }


def show_listening(url: str, request: PreviewRequest, as_json: bool) -> None:
    doc = listening_doc(url, request)
    if as_json:
        json_line(doc)
        return
    played = "its own files" if doc["play_from"] == "local" else "its CDNs"
    out_console.print(f"preview of {doc['release']} on [bold]{doc['page']}[/bold] (played from "
                      f"{played}); Ctrl-C stops it", highlight=False, soft_wrap=True)
    parts = [f"{len(doc['renditions'])} renditions"]
    if doc["measured_quality"]:
        parts.append(f"measured quality for {len(doc['measured_quality'])}")
    if doc["iframes"]:
        parts.append(f"{len(doc['iframes'])} I-frame playlists")
    if doc["thumbnails"]:
        parts.append("thumbnails")
    protection = doc["protection"]
    if protection:
        parts.append(f"{protection['scheme']}, keys from {protection['keys_from']} "
                     f"({protection['delivery']}, to this page only)")
    if doc["pathways"]:
        parts.append("pathways " + ", ".join(doc["pathways"]))
    out_console.print("; ".join(parts), highlight=False, soft_wrap=True)


def show_stopped(result: PreviewResult, as_json: bool) -> None:
    """The last words: a JSON event for machines, a line on stdout for people (the signal's
    one line on stderr is cli.main's, as for every command)."""
    if as_json:
        json_line({"event": "stopped", "url": result.url, "requests": result.requests,
                   "seconds": round(result.seconds, 1)})
        return
    out_console.print(f"preview stopped: {result.requests} requests in "
                      f"{result.seconds:.0f} s")
