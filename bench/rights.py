"""Benchmark the rights function at catalog size: its work per request and its data.

A catalog of 1,000 titles, each licensed in 50 territories (four grants: 20 countries in HD,
15 in SD with two audio languages, 10 opening later, 5 whose window has closed), each a
localized release of 16 rendition directories (five rungs 1080p-240p, four audio languages,
six text languages, thumbnails) under `/titles/<slug>/`. Its KeyValueStore data is generated
as `rights publish` generates it (steering/rights_data.py) and measured against the store's
limits (a key <= 512 bytes, a value <= 1 KB, 5 MB in all).

Then the published function runs in node (testbed/cloudfront_runtime.mjs, the same runtime as
the tests, this store loaded) beside an empty function (`return event.request`, same runtime,
same store), interleaved per repetition, on requests of five classes: a licensed viewer's
manifest (routed to the grant's), a licensed viewer's segment, a segment above the grant's
max height (403), an unlicensed viewer (451), a path of no release (passed on). Reported per
class: KeyValueStore reads, and time per request (the rights function's, the empty one's, the
difference, the ratio). CloudFront's compute utilization cannot be measured off CloudFront;
the figures say how much work there is: the reads and the per-request CPU beside doing nothing.

Command: .venv/bin/python -m bench.rights [--titles 1000] [--repeat 5] [--iterations 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from packager.output.grants import grant_manifest
from packager.output.release import Release, ReleaseFile, RenditionSummary
from packager.rights.allowance import allowed
from packager.rights.instants import epoch_ms
from packager.rights.model import Grant, Rights
from packager.rights.summary import summarize
from packager.rights.territories import country_codes
from steering.rights_data import (
    MAX_KEY_BYTES,
    MAX_STORE_BYTES,
    MAX_VALUE_BYTES,
    entries,
    import_document,
)
from testbed.cloudfront_runtime import NODE_FLAGS, node, viewer_request

ROOT = Path(__file__).resolve().parents[1]
FUNCTION = ROOT / "steering" / "rights_function.js"
DRIVER = Path(__file__).with_name("rights_function.mjs")
NOW = datetime(2026, 6, 1, tzinfo=UTC)
HEIGHTS = (1080, 720, 540, 360, 240)
AUDIO = ("en", "es-419", "ja", "fr")
TEXT = ("en", "es-419", "ja", "fr", "ar", "th")


def renditions() -> list[RenditionSummary]:
    def one(rid: str, kind: str, height: int = 0, language: str = "und") -> RenditionSummary:
        return RenditionSummary(rid, kind, "c", 1, 1, 0, height, "", 0, 0, 1, 1.0, language)
    return ([one(f"video_{h}p", "video", h) for h in HEIGHTS]
            + [one(f"audio_{a}_aac_128k", "audio", language=a) for a in AUDIO]
            + [one(f"text_{t}", "text", language=t) for t in TEXT]
            + [one("thumbnails_180p", "image", 180)])


def title_rights(rng: random.Random) -> Rights:
    """Four grants over 50 distinct territories, windows around NOW."""
    codes = rng.sample(sorted(country_codes()), 50)
    day = timedelta(days=1)
    return Rights((
        Grant("hd", tuple(sorted(codes[:20])), NOW - 200 * day, NOW + 500 * day, 1080),
        Grant("sd", tuple(sorted(codes[20:35])), NOW - 100 * day, None, 576, ("en", "es-419")),
        Grant("later", tuple(sorted(codes[35:45])), NOW + 90 * day, NOW + 800 * day),
        Grant("closed", tuple(sorted(codes[45:])), NOW - 900 * day, NOW - 30 * day, 720),
    ))


def release(rights: Rights) -> Release:
    tracks = renditions()
    files = [ReleaseFile(f"{r.id}/seg_00001.m4s", "segment", r.id, 1, "")
             for r in tracks]
    files += [ReleaseFile("master.m3u8", "multivariant", None, 1, ""),
              ReleaseFile("manifest.mpd", "mpd", None, 1, "")]
    grants = []
    for g in rights.grants:
        kept = allowed(g, tracks)
        manifests = {"hls": grant_manifest("master.m3u8", g.id),
                     "dash": grant_manifest("manifest.mpd", g.id)}
        files += [ReleaseFile(p, "multivariant", None, 1, "") for p in manifests.values()]
        grants.append(summarize(g, [r.id for r in kept],
                                [r.language for r in kept if r.kind == "audio"],
                                [r.language for r in kept if r.kind == "text"], manifests))
    return Release(1, "s.mp4", 1.0, 1.0, ["hls", "dash"], tracks, files, rights=grants)


def slug(i: int) -> str:
    return f"/titles/the-long-title-of-film-{i:04d}/"


def catalog(titles: int) -> tuple[list[tuple[str, Rights]], list[Any]]:
    rng = random.Random(20261206)
    made = [(slug(i), title_rights(rng)) for i in range(titles)]
    pairs = [p for path, rights in made for p in entries(release(rights), path)]
    return made, pairs


def request_classes(made: list[tuple[str, Rights]], rng: random.Random
                    ) -> dict[str, list[dict[str, Any]]]:
    classes: dict[str, list[dict[str, Any]]] = {k: [] for k in (
        "manifest, licensed", "segment, licensed", "segment above the grant (403)",
        "unlicensed viewer (451)", "no release (passed on)")}
    everywhere = set().union(*(set(r.territories) for _, r in made))
    nowhere = sorted(country_codes() - everywhere) or ["ZZ"]
    for path, rights in rng.sample(made, min(200, len(made))):
        hd = rights.grant("hd").territories[0]
        sd = rights.grant("sd").territories[0]
        classes["manifest, licensed"].append(viewer_request(f"{path}master.m3u8", hd))
        classes["segment, licensed"].append(
            viewer_request(f"{path}video_720p/seg_00001.m4s", hd))
        classes["segment above the grant (403)"].append(
            viewer_request(f"{path}video_1080p/seg_00001.m4s", sd))
        classes["unlicensed viewer (451)"].append(
            viewer_request(f"{path}master.m3u8", rights.grant("closed").territories[0]
                           if rng.random() < 0.5 else nowhere[0]))
        classes["no release (passed on)"].append(
            viewer_request("/assets/site/logo.png", hd))
    return classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--titles", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=20_000)
    args = parser.parse_args()
    made, pairs = catalog(args.titles)
    total = sum(p.size for p in pairs)
    keys = max(len(p.key.encode()) for p in pairs)
    values = max(len(p.value.encode()) for p in pairs)
    roots = [p for p in pairs if p.value.startswith("R1|")]
    print(f"catalog: {args.titles} titles x 50 territories, {len(pairs)} keys, "
          f"{total:,} bytes = {total / MAX_STORE_BYTES:.1%} of the store's "
          f"{MAX_STORE_BYTES:,}; per title {total / args.titles:,.0f} bytes")
    root_bytes = statistics.median(len(r.value) for r in roots)
    print(f"largest key {keys} bytes (limit {MAX_KEY_BYTES}), largest value {values} bytes "
          f"(limit {MAX_VALUE_BYTES}), release roots {root_bytes:.0f} bytes (median)")
    with tempfile.TemporaryDirectory() as work:
        kvs = Path(work) / "kvs.json"
        kvs.write_text(import_document(pairs))
        plan = Path(work) / "plan.json"
        plan.write_text(json.dumps({
            "function": str(FUNCTION), "kvs": str(kvs), "now": epoch_ms(NOW),
            "repeat": args.repeat, "iterations": args.iterations,
            "classes": request_classes(made, random.Random(7))}))
        done = subprocess.run([node(), *NODE_FLAGS, str(DRIVER), str(plan)],
                              capture_output=True, text=True, check=True, cwd=ROOT)
    result = json.loads(done.stdout)
    version = subprocess.run([node(), "--version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    print(f"node {version}, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| request | KVS reads | answers | rights µs | empty µs | rights - empty µs | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, r in result.items():
        ours, empty = statistics.median(r["rights_ns"]), statistics.median(r["empty_ns"])
        print(f"| {name} | {r['reads']:.0f} | {', '.join(map(str, r['statuses']))} | "
              f"{ours / 1000:.2f} | {empty / 1000:.2f} | {(ours - empty) / 1000:.2f} | "
              f"{ours / empty:.1f} |")


if __name__ == "__main__":
    main()
