"""`rights report`: the rights matrix as one self-contained HTML page with an inline SVG.

Territories are rows, time runs left to right; each title has a lane in every row and each of
its grants a bar over its window there (open-ended windows run off the right edge with an
arrow), labelled with the grant, its max height and its languages; a red line marks today.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from packager.rights.instants import format_instant
from packager.rights.model import Grant, Rights
from packager.rights.territories import country_name

#: Colour per title (Okabe-Ito: told apart by colour-blind readers too).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000")
LABEL_WIDTH = 210
PLOT_WIDTH = 960
LANE = 18
ROW_GAP = 6
TOP = 46  # room for the axis and today's label


def _span(titles: list[tuple[str, Rights]], now: datetime) -> tuple[datetime, datetime]:
    starts = [g.start for _, r in titles for g in r.grants] + [now]
    ends = [g.end for _, r in titles for g in r.grants if g.end is not None]
    first = min(starts)
    last = max([*ends, *starts, now]) + timedelta(days=90)
    pad = (last - first) * 0.03
    return first - pad, last + pad


def _ticks(first: datetime, last: datetime) -> list[datetime]:
    months = (last.year - first.year) * 12 + last.month - first.month
    step = next(s for s in (1, 2, 3, 6, 12, 24, 60) if months / s <= 12)
    tick = datetime(first.year, first.month, 1, tzinfo=UTC)
    out = []
    while tick <= last:
        if tick >= first and (tick.month - 1) % min(step, 12) == 0:
            out.append(tick)
        month = tick.month - 1 + step
        tick = tick.replace(year=tick.year + month // 12, month=month % 12 + 1)
    return out


def label(grant: Grant) -> str:
    height = f"≤{grant.max_height}p" if grant.max_height else "all rungs"
    audio = ",".join(grant.audio) if grant.audio is not None else "all audio"
    text = (("subs " + ",".join(grant.subtitles)) if grant.subtitles else "no subs") \
        if grant.subtitles is not None else "all subs"
    return f"{grant.id} · {height} · {audio} · {text}"


def report_svg(titles: list[tuple[str, Rights]], now: datetime) -> str:
    territories = sorted({c for _, r in titles for c in r.territories})
    first, last = _span(titles, now)
    scale = PLOT_WIDTH / (last - first).total_seconds()

    def x(moment: datetime) -> float:
        return LABEL_WIDTH + (min(max(moment, first), last) - first).total_seconds() * scale

    row = LANE * len(titles) + ROW_GAP
    height = TOP + row * len(territories) + 10
    width = LABEL_WIDTH + PLOT_WIDTH + 20
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="system-ui, sans-serif" '
           'font-size="11" role="img" aria-label="rights matrix">']
    for tick in _ticks(first, last):
        tx = x(tick)
        out.append(f'<line x1="{tx:.1f}" y1="{TOP - 6}" x2="{tx:.1f}" y2="{height - 8}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{tx:.1f}" y="{TOP - 10}" text-anchor="middle" '
                   f'fill="#555">{tick:%Y-%m}</text>')
    for i, code in enumerate(territories):
        y0 = TOP + i * row
        if i % 2 == 0:
            out.append(f'<rect x="0" y="{y0 - 2}" width="{width}" height="{row}" '
                       'fill="#f6f7f9"/>')
        name = html.escape(f"{code} {country_name(code)}")
        out.append(f'<text x="8" y="{y0 + row / 2 + 2:.1f}" fill="#222">{name}</text>')
        for lane, (title, rights) in enumerate(titles):
            color = PALETTE[lane % len(PALETTE)]
            for grant in (g for g in rights.grants if code in g.territories):
                x0, x1 = x(grant.start), x(grant.end) if grant.end else x(last)
                y = y0 + lane * LANE
                until = format_instant(grant.end) if grant.end else "no end"
                tip = html.escape(f"{title} in {code}: {label(grant)}; "
                                  f"{format_instant(grant.start)} to {until}")
                open_end = "" if grant.end else f' stroke="{color}" stroke-dasharray="4 2"'
                out.append(f'<g><title>{tip}</title><rect x="{x0:.1f}" y="{y}" '
                           f'width="{max(x1 - x0, 2):.1f}" height="{LANE - 4}" rx="3" '
                           f'fill="{color}" fill-opacity="0.85"{open_end}/>')
                if grant.end is None:
                    out.append(f'<path d="M{x1 - 1:.1f},{y} l8,{(LANE - 4) / 2} '
                               f'l-8,{(LANE - 4) / 2} z" fill="{color}"/>')
                text = label(grant)
                if x1 - x0 > 7 * len(text) * 0.62:
                    out.append(f'<text x="{x0 + 4:.1f}" y="{y + LANE - 8}" fill="#fff">'
                               f'{html.escape(text)}</text>')
                elif x1 - x0 > 40:
                    out.append(f'<text x="{x0 + 4:.1f}" y="{y + LANE - 8}" fill="#fff">'
                               f'{html.escape(grant.id)}</text>')
                out.append("</g>")
    tx = x(now)
    out.append(f'<line x1="{tx:.1f}" y1="{TOP - 20}" x2="{tx:.1f}" y2="{height - 4}" '
               'stroke="#d62728" stroke-width="2"/>')
    out.append(f'<text x="{tx + 4:.1f}" y="{TOP - 24}" fill="#d62728" font-weight="600">'
               f'today {now:%Y-%m-%d}</text>')
    out.append("</svg>")
    return "\n".join(out)


def report_html(titles: list[tuple[str, Rights]], now: datetime) -> str:
    legend = "".join(
        f'<span class="key"><i style="background:{PALETTE[i % len(PALETTE)]}"></i>'
        f'{html.escape(name)}</span>' for i, (name, _) in enumerate(titles))
    rows = []
    for code in sorted({c for _, r in titles for c in r.territories}):
        cells = []
        for _, rights in titles:
            grant = rights.in_force(code, now)
            cells.append(f'<td class="on">{html.escape(label(grant))}</td>' if grant else
                         '<td class="off">not licensed</td>')
        rows.append(f"<tr><th>{code} {html.escape(country_name(code))}</th>"
                    f"{''.join(cells)}</tr>")
    heads = "".join(f"<th>{html.escape(name)}</th>" for name, _ in titles)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>cdnpack rights report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
h1 {{ font-size: 20px; margin: 0 0 4px; }}
p {{ color: #555; margin: 0 0 12px; }}
.key {{ margin-right: 16px; }} .key i {{ display: inline-block; width: 12px; height: 12px;
  margin-right: 6px; vertical-align: -1px; border-radius: 2px; }}
table {{ border-collapse: collapse; margin-top: 18px; font-size: 13px; }}
th, td {{ border: 1px solid #ddd; padding: 4px 8px; text-align: left; }}
td.on {{ background: #e8f5e9; }} td.off {{ color: #b71c1c; background: #fdecea; }}
</style></head><body>
<h1>Rights matrix</h1>
<p>Territories by row, time left to right; each title's windows as bars (grant, max height,
audio and subtitle languages); dashed bars with an arrow have no end. The red line is
{format_instant(now)}.</p>
<div>{legend}</div>
{report_svg(titles, now)}
<table><thead><tr><th>territory, {now:%Y-%m-%d}</th>{heads}</tr></thead>
<tbody>{''.join(rows)}</tbody></table>
</body></html>
"""


def report_summary(titles: list[tuple[str, Rights]], now: datetime,
                   path: Path) -> dict[str, Any]:
    territories = sorted({c for _, r in titles for c in r.territories})
    return {
        "html": str(path), "at": format_instant(now), "territories": territories,
        "titles": [{"title": name, "grants": [g.id for g in rights.grants],
                    "licensed_now": [c for c in territories if rights.in_force(c, now)]}
                   for name, rights in titles],
    }
