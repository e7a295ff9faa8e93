"""Picture quality for people and machines: `cdnpack quality`'s table and JSON, a per-title
ladder's hull (`package -v`), and the rate-quality picture of report.html (inline SVG)."""

from __future__ import annotations

import html
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from packager.output.release import RatePointSummary, Release
    from packager.quality.check import QualityReport

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#17becf")
#: Each codec's line style in the picture (the table's codecs; others solid).
_DASH = {"h264": "", "hevc": "6,3", "av1": "2,3"}


def quality_doc(report: QualityReport) -> dict[str, Any]:
    return {
        "release": str(report.release),
        "source": str(report.source),
        "model": report.model,
        "viewing": f"{report.viewing.width}x{report.viewing.height}",
        "min_vmaf": report.min_vmaf,
        "renditions": [
            {"rendition": m.rendition, "codec": m.codec, "width": m.width, "height": m.height,
             "bitrate": m.bitrate, "vmaf": round(m.score.mean, 4), "vmaf_p5": round(m.score.p5, 4),
             "frames": m.score.frames, "target": m.target, "recorded": m.recorded,
             "bits_per_vmaf_point": round(m.bits_per_point, 1)}
            for m in report.renditions
        ],
        "passed": not report.failures,
        "failures": report.failures,
    }


def show_quality(report: QualityReport) -> None:
    from rich.table import Table  # rich only for people: `--json` never loads it

    from render.console import out_console
    table = Table(title=f"{report.release}: VMAF ({report.model}) at "
                        f"{report.viewing.width}x{report.viewing.height} against {report.source}")
    for col in ("rendition", "codec", "size", "kb/s", "VMAF", "p5", "target", "recorded",
                "b/s per point"):
        table.add_column(col, justify="left" if col in ("rendition", "codec") else "right")
    for m in report.renditions:
        table.add_row(m.rendition, m.codec, f"{m.width}x{m.height}", f"{m.bitrate / 1000:.0f}",
                      f"{m.score.mean:.2f}", f"{m.score.p5:.2f}",
                      "-" if m.target is None else f"{m.target:g}",
                      "-" if m.recorded is None else f"{m.recorded:.2f}",
                      f"{m.bits_per_point:,.0f}")
    out_console.print(table)
    for failure in report.failures:
        out_console.print(f"[red]under[/red] {failure}")
    if not report.failures:
        floor = f" (--min-vmaf {report.min_vmaf:g})" if report.min_vmaf is not None else ""
        out_console.print(f"[green]passed[/green]: every rendition meets its target{floor}")


def show_hull(release: Release) -> None:
    """A per-title ladder's measured hull, and the rungs placed on the curves (`package -v`)."""
    from rich.table import Table

    from render.console import out_console
    quality = release.quality
    if quality is None or quality.per_title is None:
        return
    per_title = quality.per_title
    hull = Table(title=f"per-title hull (sample: {len(per_title.excerpts)} excerpts, "
                       f"analysis {per_title.analysis_cpu_seconds:.1f} s CPU)")
    for col in ("codec", "size", "CRF", "kb/s", "VMAF", "p5"):
        hull.add_column(col, justify="left" if col == "codec" else "right")
    for p in per_title.hull:
        hull.add_row(p.codec, f"{p.width}x{p.height}", f"{p.quality:g}",
                     f"{p.bitrate / 1000:.0f}", f"{p.vmaf:.2f}", f"{p.vmaf_p5:.2f}")
    out_console.print(hull)
    rungs = Table(title="rungs placed on it (predicted by the sample)")
    for col in ("rendition", "role", "target", "size", "CRF", "kb/s", "VMAF"):
        rungs.add_column(col, justify="left" if col in ("rendition", "role") else "right")
    for r in per_title.rungs:
        rungs.add_row(r.rendition, r.role, "-" if r.target is None else f"{r.target:g}",
                      f"{r.width}x{r.height}", f"{r.crf:g}", f"{r.predicted_bitrate / 1000:.0f}",
                      f"{r.predicted_vmaf:.2f}")
    out_console.print(rungs)


def rate_quality_section(release: Release) -> str:
    """report.html's picture of the release's quality: the rate-quality curves per resolution
    and codec (a per-title analysis' trial points, each size a line), each codec's hull,
    and the delivered renditions (measured) marked; '' when nothing was measured."""
    rungs = [r for r in release.renditions if r.kind == "video" and r.vmaf is not None]
    if not rungs:
        return ""
    per_title = release.quality.per_title if release.quality is not None else None
    points: list[RatePointSummary] = list(per_title.points) if per_title else []
    hull: list[RatePointSummary] = list(per_title.hull) if per_title else []
    codecs = sorted({_codec_name(r.codec) for r in rungs} | {p.codec for p in points})
    delivered = [(r.id, _codec_name(r.codec), r.height, r.average_bandwidth,
                  r.vmaf.mean if r.vmaf else 0.0) for r in rungs]
    rates = [p.bitrate for p in points] + [d[3] for d in delivered]
    scores = [p.vmaf for p in points] + [d[4] for d in delivered]
    chart = _Chart(min(rates), max(rates), min(scores), max(scores))
    heights = sorted({p.height for p in points} | {d[2] for d in delivered}, reverse=True)
    color = {h: _PALETTE[i % len(_PALETTE)] for i, h in enumerate(heights)}
    parts = chart.axes()
    curves: dict[tuple[str, int], list[RatePointSummary]] = defaultdict(list)
    for p in points:
        curves[(p.codec, p.height)].append(p)
    for (codec, height), curve in sorted(curves.items()):
        line = sorted(curve, key=lambda p: p.bitrate)
        parts.append(chart.line([(p.bitrate, p.vmaf) for p in line], color[height],
                                _DASH.get(codec, ""), 1.2,
                                f"{codec} {height}p (trial encodes)"))
        parts += [chart.dot(p.bitrate, p.vmaf, 2.5, color[height],
                            f"{codec} {p.width}x{p.height} CRF {p.quality:g}: "
                            f"{p.bitrate / 1000:.0f} kb/s, VMAF {p.vmaf:.2f}") for p in line]
    for codec in codecs:
        line = sorted((p for p in hull if p.codec == codec), key=lambda p: p.bitrate)
        if len(line) > 1:
            parts.append(chart.line([(p.bitrate, p.vmaf) for p in line], "#222",
                                    _DASH.get(codec, ""), 2.5, f"{codec} convex hull"))
    for i, (rid, codec, height, rate, vmaf) in enumerate(sorted(delivered, key=lambda d: d[3])):
        parts.append(chart.dot(rate, vmaf, 6, color[height],
                               f"{rid} ({codec}): {rate / 1000:.0f} kb/s, VMAF {vmaf:.2f} "
                               "(delivered, measured)", ring=True))
        parts.append(chart.label(rate, vmaf, rid, below=i % 2 == 1))
    legend = [f"<span style='color:{color[h]}'>■ {h}p</span>" for h in heights]
    legend += [f"<span>{c}: {'solid' if not _DASH.get(c) else 'dashed'} line</span>"
               for c in codecs]
    what = ("trial encodes of the sample per resolution (small dots), each codec's convex hull "
            "(dark line) and the delivered renditions (rings)" if per_title else
            "the delivered renditions (rings)")
    model = release.quality.model if release.quality else "vmaf"
    viewing = release.quality.viewing if release.quality else ""
    return "\n".join([
        "<h2>Picture quality: rate against VMAF</h2>",
        f"<p>{html.escape(what)}; VMAF ({html.escape(model)}) at {html.escape(viewing)}, "
        "bitrate on a log scale.</p>",
        f"<svg class='rate-quality' width='{chart.width}' height='{chart.height}' role='img' "
        "aria-label='rate-quality curves'>", *parts, "</svg>",
        "<p class='legend'>" + " · ".join(legend) + "</p>",
    ])


def _codec_name(codec: str) -> str:
    """release.json's RFC 6381 string → the table's name (avc1 → h264, ...)."""
    prefix = codec.split(".", 1)[0]
    return {"avc1": "h264", "avc3": "h264", "hvc1": "hevc", "hev1": "hevc",
            "av01": "av1"}.get(prefix, prefix)


class _Chart:
    """Log-rate x axis, VMAF y axis, in pixels."""

    width, height, pad = 720, 360, 48

    def __init__(self, rate_lo: float, rate_hi: float, vmaf_lo: float, vmaf_hi: float) -> None:
        self.x0 = math.log10(max(rate_lo, 1.0) * 0.9)
        self.x1 = math.log10(max(rate_hi, rate_lo + 1.0) * 1.1)
        self.y0 = max(0.0, math.floor(vmaf_lo / 10) * 10)
        self.y1 = min(100.0, math.ceil(vmaf_hi / 10) * 10) if vmaf_hi > self.y0 else 100.0

    def x(self, rate: float) -> float:
        span = self.width - 2 * self.pad
        return self.pad + (math.log10(max(rate, 1.0)) - self.x0) / (self.x1 - self.x0) * span

    def y(self, vmaf: float) -> float:
        span = self.height - 2 * self.pad
        return self.height - self.pad - (vmaf - self.y0) / max(self.y1 - self.y0, 1) * span

    def axes(self) -> list[str]:
        left, bottom = self.pad, self.height - self.pad
        out = [f"<line x1='{left}' y1='{bottom}' x2='{self.width - 8}' y2='{bottom}' "
               "stroke='#999'/>",
               f"<line x1='{left}' y1='8' x2='{left}' y2='{bottom}' stroke='#999'/>",
               f"<text x='{self.width / 2:.0f}' y='{self.height - 8}' font-size='11' "
               "text-anchor='middle'>video bitrate (kb/s, log)</text>",
               f"<text x='12' y='{self.height / 2:.0f}' font-size='11' "
               f"transform='rotate(-90 12 {self.height / 2:.0f})' text-anchor='middle'>"
               "VMAF</text>"]
        for vmaf in range(int(self.y0), int(self.y1) + 1, 10):
            out.append(f"<text x='{left - 6}' y='{self.y(vmaf) + 4:.1f}' font-size='10' "
                       f"text-anchor='end'>{vmaf}</text>")
        decade = 10 ** math.floor(self.x0)
        for step in _ticks(10**self.x0, 10**self.x1, decade):
            out.append(f"<text x='{self.x(step):.1f}' y='{bottom + 14}' font-size='10' "
                       f"text-anchor='middle'>{step / 1000:g}</text>")
        return out

    def line(self, points: Sequence[tuple[float, float]], color: str, dash: str, width: float,
             title: str) -> str:
        coords = " ".join(f"{self.x(r):.1f},{self.y(v):.1f}" for r, v in points)
        dashed = f" stroke-dasharray='{dash}'" if dash else ""
        return (f"<polyline fill='none' stroke='{color}' stroke-width='{width}'{dashed} "
                f"points='{coords}'><title>{html.escape(title)}</title></polyline>")

    def dot(self, rate: float, vmaf: float, radius: float, color: str, title: str,
            ring: bool = False) -> str:
        fill = "#fff" if ring else color
        return (f"<circle class='{'rung' if ring else 'point'}' cx='{self.x(rate):.1f}' "
                f"cy='{self.y(vmaf):.1f}' r='{radius}' fill='{fill}' stroke='{color}' "
                f"stroke-width='2'><title>{html.escape(title)}</title></circle>")

    def label(self, rate: float, vmaf: float, text: str, below: bool = False) -> str:
        """A rung's name beside its ring, above it or (every other rung, so that neighbours
        do not overlap) below it."""
        x, y = self.x(rate) + 8, self.y(vmaf) + (16 if below else -8)
        return f"<text x='{x:.1f}' y='{y:.1f}' font-size='9'>{html.escape(text)}</text>"


def _ticks(lo: float, hi: float, decade: float) -> list[float]:
    """1-2-5 steps between lo and hi (bits per second)."""
    out = []
    while decade <= hi:
        out += [decade * m for m in (1, 2, 5) if lo <= decade * m <= hi]
        decade *= 10
    return out
