"""Scorecard renderings for machines and people: Prometheus text exposition and an HTML report.

Metric names follow blackbox_exporter (`probe_http_duration_seconds{phase="processing"}` is its
request-written-to-first-byte phase, our TTFB) with region and cdn labels; percentiles are
exposed as Prometheus summaries whose `quantile` is the φ-quantile, so our higher-is-better
"p95 throughput" appears as quantile="0.05".  Text format 0.0.4.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

from probes.score import Percentiles, Scorecard
from rum.records import RumSummary

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


def _num(value: float) -> str:
    return "NaN" if math.isnan(value) else repr(float(value))


def _summary(name: str, p: Percentiles, higher_is_better: bool, **labels: str) -> list[str]:
    if p.count == 0:
        return []
    quantiles = ("0.5", "0.05", "0.01") if higher_is_better else ("0.5", "0.95", "0.99")
    out = [f"{name}{_labels(**labels, quantile=q)} {_num(v)}"
           for q, v in zip(quantiles, (p.p50, p.p95, p.p99), strict=True) if v is not None]
    out.append(f"{name}_sum{_labels(**labels)} {_num(p.sum)}")
    out.append(f"{name}_count{_labels(**labels)} {p.count}")
    return out


def prometheus_text(card: Scorecard) -> str:
    families: list[tuple[str, str, str, list[str]]] = []

    def family(name: str, kind: str, doc: str, samples: Iterable[str]) -> None:
        families.append((name, kind, doc, list(samples)))

    cells = [c for r in card.regions for c in r.cells]
    family("probe_http_duration_seconds", "summary",
           "Request written to first response byte (blackbox phase processing), seconds.",
           (s for c in cells for s in _summary("probe_http_duration_seconds", c.ttfb, False,
                                                 region=c.region, cdn=c.cdn, phase="processing")))
    family("probe_startup_duration_seconds", "summary",
           "Manifest + init + first segment, fetched in sequence like a player, seconds.",
           (s for c in cells for s in _summary("probe_startup_duration_seconds", c.startup,
                                                 False, region=c.region, cdn=c.cdn)))
    family("probe_http_throughput_bits_per_second", "summary",
           "Segment body bits over the transfer phase; quantile is the phi-quantile.",
           (s for c in cells for s in _summary("probe_http_throughput_bits_per_second",
                                                 c.throughput, True, region=c.region, cdn=c.cdn)))
    family("probe_http_requests_total", "counter", "Fetches made.",
           (f"probe_http_requests_total{_labels(region=c.region, cdn=c.cdn)} {c.fetches}"
            for c in cells))
    family("probe_http_errors_total", "counter", "Failed fetches by error class.",
           (f"probe_http_errors_total{_labels(region=c.region, cdn=c.cdn, error=k)} {v}"
            for c in cells for k, v in c.errors_by_class.items()))
    family("probe_success_ratio", "gauge", "Availability: fetches without error / fetches.",
           (f"probe_success_ratio{_labels(region=c.region, cdn=c.cdn)} {_num(c.availability)}"
            for c in cells))
    family("probe_cdn_score", "gauge", "Composite score 0..100 (see cdnpack score --help).",
           (f"probe_cdn_score{_labels(region=c.region, cdn=c.cdn)} {_num(c.score)}"
            for c in cells))
    family("probe_cdn_rank", "gauge", "Rank of the CDN within the region (1 = best).",
           (f"probe_cdn_rank{_labels(region=c.region, cdn=c.cdn)} {c.rank}" for c in cells))
    family("probe_cdn_overall_score", "gauge", "Audience-weighted mean of region scores.",
           (f"probe_cdn_overall_score{_labels(cdn=r.cdn)} {_num(r.score)}"
            for r in card.overall))
    lines: list[str] = []
    for name, kind, doc, samples in families:
        lines += [f"# HELP {name} {doc}", f"# TYPE {name} {kind}", *samples]
    return "\n".join(lines) + "\n"


def _side_by_side(card: Scorecard, rum: dict[tuple[str, str], RumSummary]) -> list[str]:
    """One row per region x CDN: synthetic columns, then real-viewer ones ('no data' cells)."""
    esc = html.escape
    names = {r.id: r.name for r in card.regions}
    cells = {(r.id, c.cdn): c for r in card.regions for c in r.cells}
    out = ["<h2>Synthetic probes and real viewers, side by side</h2>",
           "<table class='rum'><tr><th>region</th><th>CDN</th><th>probe TTFB p95 ms</th>"
           "<th>probe startup p95 ms</th><th>probe availability</th><th>viewers</th>"
           "<th>viewer startup p50/p95 ms</th><th>rebuffer ratio</th>"
           "<th>rebuffering sessions</th><th>throughput p50 (mtp) Mb/s</th>"
           "<th>delivered p50 Mb/s</th>"
           "<th>bitrate Mb/s</th><th>viewer error rate</th></tr>"]
    for key in sorted(set(cells) | set(rum)):
        c, v = cells.get(key), rum.get(key)
        probe = (["–"] * 3 if c is None else
                 [_ms(c.ttfb.p95), _ms(c.startup.p95), f"{c.availability * 100:.2f}%"])
        if v is None:
            viewers = ["no data"] + ["–"] * 7
        else:
            viewers = [
                str(v.sessions), f"{_ms(v.startup_p50)}/{_ms(v.startup_p95)}",
                "–" if v.rebuffer_ratio is None else f"{v.rebuffer_ratio * 100:.1f}%",
                str(v.rebuffering_sessions),
                "–" if v.mtp_p50 is None else f"{v.mtp_p50 / 1e6:.2f}",
                "–" if v.throughput_p50 is None else f"{v.throughput_p50 / 1e6:.2f}",
                "–" if v.bitrate is None else f"{v.bitrate / 1e6:.2f}",
                "–" if v.error_rate is None else f"{v.error_rate * 100:.2f}%"]
        row = [names.get(key[0], key[0]), key[1], *probe, *viewers]
        out.append(f"<tr data-region='{esc(key[0])}' data-cdn='{esc(key[1])}'>"
                   + "".join(f"<td>{esc(x)}</td>" for x in row) + "</tr>")
    out.append("</table>")
    return out


def _heat(score: float) -> str:
    return f"hsl({max(0.0, min(score, 100.0)) * 1.2:.0f}, 65%, 42%)"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.1f}"


def _cdf_svg(series: dict[str, tuple[float, ...]], width: int = 520, height: int = 180) -> str:
    """One empirical CDF line per CDN: x = TTFB (ms), y = share of fetches at or below it."""
    values = [v for vs in series.values() for v in vs]
    if not values:
        return "<p>no TTFB samples</p>"
    top = max(values) * 1000 * 1.05 or 1.0
    pad = 36
    parts = [f'<svg width="{width}" height="{height}" role="img">',
             f'<line x1="{pad}" y1="{height - 20}" x2="{width - 8}" y2="{height - 20}" '
             'stroke="#999"/>',
             f'<line x1="{pad}" y1="8" x2="{pad}" y2="{height - 20}" stroke="#999"/>',
             f'<text x="{pad}" y="{height - 4}" font-size="10">0</text>',
             f'<text x="{width - 60}" y="{height - 4}" font-size="10">{top:.0f} ms</text>',
             '<text x="2" y="14" font-size="10">100%</text>']
    for i, (cdn, samples) in enumerate(sorted(series.items())):
        color = _PALETTE[i % len(_PALETTE)]
        n = len(samples)
        points = []
        for k, v in enumerate(samples):
            x = pad + (v * 1000 / top) * (width - pad - 8)
            y_prev = height - 20 - (k / n) * (height - 28)
            y = height - 20 - ((k + 1) / n) * (height - 28)
            points += [f"{x:.1f},{y_prev:.1f}", f"{x:.1f},{y:.1f}"]
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" '
                     f'points="{" ".join(points)}"/>')
        parts.append(f'<text x="{width - 120}" y="{20 + 12 * i}" font-size="11" '
                     f'fill="{color}">{html.escape(cdn)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def html_report(card: Scorecard, title: str = "cdnpack delivery scorecard",
                rum: dict[tuple[str, str], RumSummary] | None = None,
                sections: Sequence[str] = ()) -> str:
    """Self-contained HTML: overall ranking, region x CDN heatmap, TTFB CDFs per region, and
    with `rum` the probes' and the real viewers' figures side by side; `sections` (HTML the
    caller drew, e.g. the release's rate-quality picture) come last."""
    cdns = [r.cdn for r in card.overall]
    esc = html.escape
    out = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}",
        "table{border-collapse:collapse;margin:1em 0}td,th{padding:.4em .7em;border:1px solid "
        "#ddd;text-align:right}th:first-child,td:first-child{text-align:left}",
        "td.heat{color:#fff;font-weight:600}small{font-weight:400;opacity:.85}",
        "</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        "<h2>Overall ranking (audience-weighted)</h2><table><tr><th>rank</th><th>CDN</th>"
        "<th>score</th></tr>",
    ]
    out += [f"<tr><td>{r.rank}</td><td>{esc(r.cdn)}</td><td>{r.score:.1f}</td></tr>"
            for r in card.overall]
    out.append("</table><h2>Region × CDN heatmap</h2><table class='heatmap'><tr><th>region "
               "(weight)</th>" + "".join(f"<th>{esc(c)}</th>" for c in cdns) + "</tr>")
    for region in card.regions:
        row = [f"<tr><td>{esc(region.name)} ({region.weight:g})</td>"]
        for cdn in cdns:
            cell = next((c for c in region.cells if c.cdn == cdn), None)
            if cell is None:
                row.append("<td>–</td>")
                continue
            tip = (f"TTFB p50/p95/p99 {_ms(cell.ttfb.p50)}/{_ms(cell.ttfb.p95)}/"
                   f"{_ms(cell.ttfb.p99)} ms; availability {cell.availability * 100:.2f}%")
            row.append(
                f"<td class='heat' style='background:{_heat(cell.score)}' title='{esc(tip)}' "
                f"data-region='{esc(region.id)}' data-cdn='{esc(cdn)}'>{cell.score:.1f}<br>"
                f"<small>p95 {_ms(cell.ttfb.p95)} ms · {cell.availability * 100:.1f}%</small>"
                "</td>")
        out.append("".join(row) + "</tr>")
    out.append("</table>")
    if rum is not None:
        out += _side_by_side(card, rum)
    out.append("<h2>TTFB distributions (empirical CDF)</h2>")
    for region in card.regions:
        out.append(f"<h3>{esc(region.name)}</h3>")
        out.append(_cdf_svg({c.cdn: c.ttfb_samples for c in region.cells}))
    out += [section for section in sections if section]
    out.append("</body></html>")
    return "\n".join(out) + "\n"
