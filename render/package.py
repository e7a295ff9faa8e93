"""`package`'s result: the renditions table for people, the release summary for machines."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from packager.output.pipeline import PackageResult


def package_doc(result: PackageResult) -> dict[str, Any]:
    release = result.release
    return {
        "output": str(result.output),
        "seconds": round(result.seconds, 3),
        "duration": release.duration,
        "files": len(release.files),
        "bytes": release.total_bytes,
        "renditions": [asdict(r) for r in release.renditions],
        "protection": asdict(release.protection) if release.protection else None,
        "iframes": [asdict(i) for i in release.iframes],
        "thumbnails": [asdict(t) for t in release.thumbnails],
    }


def show_package(result: PackageResult) -> None:
    from rich.table import Table  # rich only for people: `--json` never loads it

    from render.console import out_console
    release = result.release
    table = Table(title=f"{result.output} ({release.duration:.2f} s in {result.seconds:.1f} s)")
    for col in ("rendition", "language", "codec", "size", "peak kb/s", "avg kb/s", "segments"):
        table.add_column(col, justify="left" if col in ("rendition", "language") else "right")
    for r in release.renditions:
        size = {"video": f"{r.width}x{r.height}@{r.frame_rate}",
                "audio": f"{r.channels}ch {r.sample_rate} Hz"}.get(r.kind, "")
        language = " ".join([r.name, r.role, *r.flags]) if r.kind != "video" else ""
        table.add_row(r.id, language, r.codec, size, f"{r.bandwidth / 1000:.0f}",
                      f"{r.average_bandwidth / 1000:.0f}", str(r.segments))
    out_console.print(table)
    for t in release.thumbnails:
        out_console.print(
            f"thumbnails: one every {t.interval:g} s, {t.width}x{t.height}, "
            f"{t.columns}x{t.rows} a sheet, {t.sheets} sheet{'s' if t.sheets != 1 else ''} "
            f"in {t.id}/")
    if release.iframes:
        out_console.print(f"trick play: I-frame playlists for "
                          f"{', '.join(i.rendition for i in release.iframes)}")
    out_console.print(
        f"{len(release.files)} files, {release.total_bytes / 1e6:.1f} MB; "
        "manifests: "
        + ", ".join(f.path for f in release.files if f.role in ("multivariant", "mpd"))
    )
