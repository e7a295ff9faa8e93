"""Region x CDN scorecard: exact percentiles, availability, a composite score, rankings.

Percentiles are exact, from every sample (no histogram buckets), by the nearest-rank method:
pNN is the value that NN% of samples are at least as good as.  For TTFB and startup (lower is
better) that is the ceil(NN% * n)-th smallest sample; for throughput (higher is better) the
ceil(NN% * n)-th largest, so "p95 throughput" is the rate 95% of fetches reached.  A budget
"p95 TTFB <= 250 ms" therefore holds exactly when at least 95% of fetches had TTFB <= 250 ms.
Samples flagged as timed under event-loop lag are left out of timing percentiles (they measure
the prober, not the CDN) unless every sample of the cell is flagged; they always count for
availability.

Composite score (0..100, higher is better), per region x CDN:

    score = 100 * A * (0.4 * T + 0.3 * S + 0.3 * R) / (sum of the weights of present terms)
    A = availability (fetches without error / fetches)
    T = Bt / (Bt + ttfb_p95)          Bt = region's ttfb_p95 budget (250 ms when unset)
    S = Bs / (Bs + startup_p95)       Bs = region's startup_p95 budget (2 s when unset)
    R = thr_p50 / (thr_p50 + Br)      Br = min_throughput budget x top rendition bitrate

Each term is 0.5 exactly at its budget, tends to 1 far below (above, for throughput) it, and never
saturates, so two CDNs that both meet a budget are still told apart.  A term without data (no
video target: no S; no bitrate or budget: no R) is dropped and the weights renormalised.
Overall ranking: the audience-weighted mean of region scores over the probed regions; a CDN with
no samples in a probed region scores 0 there.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from probes.config import Budget, ProbeConfig
from probes.results import FetchRecord, PlaybackRecord, Results

DEFAULT_TTFB_BUDGET = 0.25
DEFAULT_STARTUP_BUDGET = 2.0
WEIGHTS = {"ttfb": 0.4, "startup": 0.3, "throughput": 0.3}
QUANTILES = (50, 95, 99)


@dataclass(frozen=True)
class Percentiles:
    p50: float | None
    p95: float | None
    p99: float | None
    count: int
    sum: float = 0.0


@dataclass(frozen=True)
class Cell:
    """Everything measured for one CDN in one region."""

    region: str
    cdn: str
    fetches: int
    errors: int
    errors_by_class: dict[str, int]
    availability: float
    ttfb: Percentiles  # seconds
    startup: Percentiles  # seconds
    throughput: Percentiles  # bits/s, higher-is-better percentiles
    top_bandwidth: int | None  # bits/s, highest video rendition offered
    lagged: int
    score: float
    rank: int
    ttfb_samples: tuple[float, ...]  # sorted; for distributions in the HTML report


@dataclass(frozen=True)
class RegionScore:
    id: str
    name: str
    weight: float
    best: str | None
    cells: list[Cell]  # by rank


@dataclass(frozen=True)
class Ranking:
    cdn: str
    score: float
    rank: int


@dataclass(frozen=True)
class Scorecard:
    regions: list[RegionScore]
    overall: list[Ranking]

    def cell(self, region: str, cdn: str) -> Cell | None:
        for r in self.regions:
            for c in r.cells:
                if r.id == region and c.cdn == cdn:
                    return c
        return None


def nearest_rank(values: Sequence[float], pct: float, higher_is_better: bool = False) -> float:
    """The value pct% of `values` are at least as good as (nearest-rank, exact)."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values, reverse=higher_is_better)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def percentiles(values: Sequence[float], higher_is_better: bool = False) -> Percentiles:
    if not values:
        return Percentiles(None, None, None, 0)
    p50, p95, p99 = (nearest_rank(values, q, higher_is_better) for q in QUANTILES)
    return Percentiles(p50, p95, p99, len(values), float(sum(values)))


def composite(availability: float, ttfb_p95: float | None, startup_p95: float | None,
              throughput_p50: float | None, top_bandwidth: int | None, budget: Budget) -> float:
    """The documented formula (module docstring)."""
    terms: dict[str, float] = {}
    if ttfb_p95 is not None:
        bt = budget.ttfb_p95 or DEFAULT_TTFB_BUDGET
        terms["ttfb"] = bt / (bt + ttfb_p95)
    if startup_p95 is not None:
        bs = budget.startup_p95 or DEFAULT_STARTUP_BUDGET
        terms["startup"] = bs / (bs + startup_p95)
    if throughput_p50 is not None and top_bandwidth and budget.min_throughput:
        br = budget.min_throughput * top_bandwidth
        terms["throughput"] = throughput_p50 / (throughput_p50 + br)
    if not terms:
        return 0.0
    weighted = sum(WEIGHTS[k] * v for k, v in terms.items()) / sum(WEIGHTS[k] for k in terms)
    return 100.0 * availability * weighted


def _cell(region: str, cdn: str, fetches: list[FetchRecord], plays: list[PlaybackRecord],
          budget: Budget) -> Cell:
    errors: dict[str, int] = defaultdict(int)
    for f in fetches:
        if f.error is not None:
            errors[f.error] += 1
    n_errors = sum(errors.values())
    availability = 1.0 - n_errors / len(fetches) if fetches else 0.0
    # Timings come from the samples that succeeded and whose event loop kept up; when every
    # success lagged, from those anyway (an inflated figure beats going blind). Falling back
    # only among successes matters: clean failures beside lagged successes are no timing.
    ok = [f for f in fetches if f.error is None]
    clean = [f for f in ok if not f.lagged] or ok
    ttfb_values = sorted(f.ttfb for f in clean if f.ttfb is not None)
    throughput_values = [f.throughput for f in clean
                         if f.step == "segment" and f.throughput is not None]
    started = [p for p in plays if p.startup is not None]
    steady = [p for p in started if not p.lagged] or started
    startup_values = [p.startup for p in steady if p.startup is not None]
    tops = [p.top_bandwidth for p in plays if p.top_bandwidth]
    ttfb = percentiles(ttfb_values)
    startup = percentiles(startup_values)
    throughput = percentiles(throughput_values, higher_is_better=True)
    top = max(tops) if tops else None
    score = composite(availability, ttfb.p95, startup.p95, throughput.p50, top, budget)
    return Cell(
        region=region, cdn=cdn, fetches=len(fetches), errors=n_errors,
        errors_by_class=dict(sorted(errors.items())), availability=availability,
        ttfb=ttfb, startup=startup, throughput=throughput, top_bandwidth=top,
        lagged=sum(1 for f in fetches if f.lagged), score=round(score, 2), rank=0,
        ttfb_samples=tuple(ttfb_values),
    )


def scorecard(results: Results, config: ProbeConfig) -> Scorecard:
    """Score every region x CDN in the results; rank per region and overall."""
    fetches: dict[tuple[str, str], list[FetchRecord]] = defaultdict(list)
    plays: dict[tuple[str, str], list[PlaybackRecord]] = defaultdict(list)
    for f in results.fetches:
        fetches[f.region, f.cdn].append(f)
    for p in results.playbacks:
        plays[p.region, p.cdn].append(p)
    names = {r.id: (r.name, r.weight) for r in config.regions}
    for run in results.runs:
        names.setdefault(run.region, (run.region_name, run.weight))
    region_ids = sorted({region for region, _ in fetches},
                        key=lambda r: (-names.get(r, (r, 0.0))[1], r))
    cdns = sorted({cdn for _, cdn in fetches})
    regions: list[RegionScore] = []
    for region in region_ids:
        cells = [_cell(region, cdn, fetches[region, cdn], plays[region, cdn],
                       config.budget(region)) for cdn in cdns if (region, cdn) in fetches]
        cells.sort(key=lambda c: (-c.score, c.cdn))
        cells = [_ranked(c, i + 1) for i, c in enumerate(cells)]
        name, weight = names.get(region, (region, 0.0))
        regions.append(RegionScore(region, name, weight, cells[0].cdn if cells else None, cells))
    total_weight = sum(r.weight for r in regions)
    overall: list[tuple[str, float]] = []
    for cdn in cdns:
        scores = {c.region: c.score for r in regions for c in r.cells if c.cdn == cdn}
        if total_weight > 0:
            value = sum(r.weight * scores.get(r.id, 0.0) for r in regions) / total_weight
        else:
            value = sum(scores.values()) / len(regions)
        overall.append((cdn, round(value, 2)))
    overall.sort(key=lambda x: (-x[1], x[0]))
    return Scorecard(regions, [Ranking(c, s, i + 1) for i, (c, s) in enumerate(overall)])


def _ranked(cell: Cell, rank: int) -> Cell:
    return replace(cell, rank=rank)
