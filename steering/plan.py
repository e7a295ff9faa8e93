"""THE steering plan: per region, the order of pathways (CDNs) players should use, and why.

One pure function, `make_plan`, feeds `steer plan`, `steer serve`, `steer publish`,
`release --steering` and the demo, so every way of steering decides alike:

  * each region is planned from its newest probe run (the latest measurement decides; older
    runs of the same region do not dilute it);
  * a CDN that met every budget of the region ranks before one that missed any, then by the
    composite score of probes/score.py (higher first); a CDN of the config that the run did
    not measure comes last; CDNs the config does not list are ignored;
  * hysteresis: the previous leader keeps first place unless a challenger's score leads it by
    at least `steering.hysteresis` points, or the leader now misses a budget the challenger
    meets, so two CDNs of equal merit do not flip every probe run. Before any plan, the
    leader is the config's first CDN, the manifests' default pathway: a player that starts
    there moves only for a real gain (each move costs it a media playlist fetch);
  * a region without a run, or whose newest run ended more than `steering.max_age` ago, gets
    the config's order of `cdns` (flagged: basis "no data" or "stale");
  * viewers of no configured region get the audience-weighted overall order: each CDN's
    region scores weighted by audience share over the regions measured freshly.

Each region also carries its throughput floor: `min_throughput` (x the top rendition's
bitrate, the gate's definition) times the highest video bitrate the probed manifests offer.
A session reporting less than that on its pathway is moved on by the server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from probes.config import ProbeConfig
from probes.gate import evaluate
from probes.results import Results, RunRecord
from probes.score import Scorecard, scorecard

#: The plan for viewers whose region is unknown (no header, a country no region lists).
OVERALL = "_overall"
MEASURED, STALE, NO_DATA = "measured", "stale", "no data"


@dataclass(frozen=True)
class PathwayRank:
    """One CDN's standing in a region: what put it where it is in the order."""

    cdn: str
    score: float | None  # composite score 0..100; None: not measured in the run
    missed: tuple[str, ...] = ()  # budgets missed (probes/gate.py names)


@dataclass(frozen=True)
class RegionPlan:
    region: str  # a region id, or OVERALL
    order: tuple[str, ...]  # pathway ids (CDN ids), first = where players go
    ranks: tuple[PathwayRank, ...]  # in `order`
    basis: str  # MEASURED, STALE or NO_DATA (the last two: the config's order)
    measured_at: datetime | None = None  # end of the newest run (None: no run)
    run_id: str | None = None
    #: Hysteresis kept the previous leader first although `challenger` scored higher.
    held: bool = False
    challenger: str | None = None
    throughput_floor: float | None = None  # bits/s a session must reach on its pathway

    @property
    def stale(self) -> bool:
        return self.basis != MEASURED

    def age(self, now: datetime) -> float | None:
        """Seconds since the measurement this order comes from ended."""
        return None if self.measured_at is None else (now - self.measured_at).total_seconds()

    def reasons(self, now: datetime, max_age: float, hysteresis: float) -> list[str]:
        """Why the order is what it is, one line each (for `steer plan` and the server log)."""
        if self.basis == NO_DATA:
            return ["no probe results: the config's order of cdns"]
        if self.basis == STALE:
            age = self.age(now) or 0.0
            return [f"results stale ({age:.0f} s old > max_age {max_age:.0f} s): "
                    "the config's order of cdns"]
        lines = []
        for rank in self.ranks:
            if rank.score is None:
                lines.append(f"{rank.cdn}: not measured in run {self.run_id}")
            elif rank.missed:
                lines.append(f"{rank.cdn}: score {rank.score:.1f}, missed "
                             + ", ".join(rank.missed))
            else:
                lines.append(f"{rank.cdn}: score {rank.score:.1f}, every budget met")
        if self.held and self.challenger is not None:
            lines.append(f"hysteresis: {self.order[0]} kept first, {self.challenger} leads by "
                         f"less than {hysteresis:g} points")
        return lines


@dataclass(frozen=True)
class Plan:
    created: datetime
    regions: tuple[RegionPlan, ...]  # in the config's order
    overall: RegionPlan
    by_id: Mapping[str, RegionPlan] = field(default_factory=dict, compare=False, repr=False)

    def for_region(self, region_id: str | None) -> RegionPlan:
        """The region's plan; the overall one for None or an id the config does not know."""
        if region_id is None:
            return self.overall
        return self.by_id.get(region_id, self.overall)


def newest_runs(results: Results) -> dict[str, tuple[RunRecord, datetime]]:
    """Each region's newest run and the instant it ended."""
    newest: dict[str, tuple[RunRecord, datetime]] = {}
    for run in results.runs:
        ended = run_end(run)
        current = newest.get(run.region)
        if current is None or ended > current[1]:
            newest[run.region] = (run, ended)
    return newest


def run_end(run: RunRecord) -> datetime:
    return datetime.fromisoformat(run.started_at) + timedelta(seconds=run.seconds)


def make_plan(results: Results | None, config: ProbeConfig, now: datetime,
              previous: Plan | None = None) -> Plan:
    """The pathway order of every region of the config and of unknown viewers (module doc)."""
    steering = config.steering
    max_age = steering.max_age if steering is not None else float("inf")
    hysteresis = steering.hysteresis if steering is not None else 0.0
    results = results or Results([], [], [])
    fresh: dict[str, tuple[RunRecord, datetime]] = {}
    stale: dict[str, datetime] = {}
    for region_id, (run, ended) in newest_runs(results).items():
        if (now - ended).total_seconds() > max_age:
            stale[region_id] = ended
        else:
            fresh[region_id] = (run, ended)
    card = _card(results, {run.run_id for run, _ in fresh.values()}, config)
    missed = _missed(card, config)
    tops = [p.top_bandwidth for p in results.playbacks if p.top_bandwidth]
    top = max(tops) if tops else None

    def floor(region: str | None) -> float | None:
        budget = config.budget(region) if region is not None else config.budgets["default"]
        return budget.min_throughput * top if budget.min_throughput and top else None

    configured = tuple(c.id for c in config.cdns)
    regions: list[RegionPlan] = []
    for region in config.regions:
        before = previous.for_region(region.id) if previous is not None else None
        if region.id in fresh:
            run, ended = fresh[region.id]
            scores = {c.cdn: c.score for r in card.regions if r.id == region.id for c in r.cells}
            plan = _ranked(region.id, configured, scores, missed.get(region.id, {}), before,
                           hysteresis)
            plan = replace(plan, measured_at=ended, run_id=run.run_id)
        else:
            plan = _fallback(region.id, configured, stale.get(region.id))
        regions.append(replace(plan, throughput_floor=floor(region.id)))
    overall = _overall(config, configured, regions, previous, hysteresis)
    overall = replace(overall, throughput_floor=floor(None))
    return Plan(now, tuple(regions), overall, {r.region: r for r in regions})


def _card(results: Results, run_ids: set[str], config: ProbeConfig) -> Scorecard:
    """The scorecard of the fresh newest runs only."""
    return scorecard(Results(
        [r for r in results.runs if r.run_id in run_ids],
        [f for f in results.fetches if f.run_id in run_ids],
        [p for p in results.playbacks if p.run_id in run_ids],
    ), config)


def _missed(card: Scorecard, config: ProbeConfig) -> dict[str, dict[str, tuple[str, ...]]]:
    """region -> cdn -> budgets missed (the gate's own checks)."""
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for check in evaluate(card, config).violations:
        cell = out.setdefault(check.region, {})
        cell[check.cdn] = (*cell.get(check.cdn, ()), check.budget)
    return out


def _fallback(region: str, configured: tuple[str, ...], ended: datetime | None) -> RegionPlan:
    return RegionPlan(region, configured, tuple(PathwayRank(c, None) for c in configured),
                      STALE if ended is not None else NO_DATA, measured_at=ended)


def _ranked(region: str, configured: Sequence[str], scores: Mapping[str, float],
            missed: Mapping[str, tuple[str, ...]], before: RegionPlan | None,
            hysteresis: float) -> RegionPlan:
    ranks = [PathwayRank(cdn, scores.get(cdn), missed.get(cdn, ())) for cdn in configured]
    position = {cdn: i for i, cdn in enumerate(configured)}

    def key(rank: PathwayRank) -> tuple[bool, bool, float, int]:
        return (rank.score is None, bool(rank.missed), -(rank.score or 0.0), position[rank.cdn])

    ranks.sort(key=key)
    held, challenger = False, None
    leader = ranks[0]
    incumbent = (before.order[0] if before is not None and before.basis == MEASURED
                 else configured[0])
    if incumbent != leader.cdn:
        kept = next((r for r in ranks if r.cdn == incumbent), None)
        if (kept is not None and kept.score is not None and leader.score is not None
                and bool(kept.missed) <= bool(leader.missed)
                and leader.score - kept.score < hysteresis):
            ranks.remove(kept)
            ranks.insert(0, kept)
            held, challenger = True, leader.cdn
    return RegionPlan(region, tuple(r.cdn for r in ranks), tuple(ranks), MEASURED,
                      held=held, challenger=challenger)


def _overall(config: ProbeConfig, configured: tuple[str, ...], regions: list[RegionPlan],
             previous: Plan | None, hysteresis: float) -> RegionPlan:
    """Audience-weighted scores over the freshly measured regions (probes/score.py's overall,
    restricted to them); the config's order when none is."""
    measured = [r for r in regions if r.basis == MEASURED]
    if not measured:
        ended = [r.measured_at for r in regions if r.measured_at is not None]
        return _fallback(OVERALL, configured, max(ended) if ended else None)
    weights = {r.id: r.weight for r in config.regions}
    total = sum(weights[r.region] for r in measured)
    scores: dict[str, float] = {}
    for cdn in configured:
        values = [(weights[r.region], next((x.score for x in r.ranks if x.cdn == cdn), None))
                  for r in measured]
        if total > 0:
            scores[cdn] = round(sum(w * (s or 0.0) for w, s in values) / total, 2)
        else:
            scores[cdn] = round(sum(s or 0.0 for _, s in values) / len(values), 2)
    before = previous.overall if previous is not None else None
    plan = _ranked(OVERALL, configured, scores, {}, before, hysteresis)
    newest = max(r.measured_at for r in measured if r.measured_at is not None)
    return replace(plan, measured_at=newest)
