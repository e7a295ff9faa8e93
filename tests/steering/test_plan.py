"""The steering plan: per region the pathway order and why, from the newest probe runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from probes.config import ProbeConfig
from probes.results import Results, parse_records
from steering.plan import MEASURED, NO_DATA, OVERALL, STALE, make_plan
from tests.steering.results import TOP_BANDWIDTH, Delivery, run_lines

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
FAST = Delivery(ttfb=0.03, startup=0.3)
SLOW = Delivery(ttfb=0.20, startup=1.5)


def results(*runs: list[dict[str, Any]]) -> Results:
    return parse_records(("test", line) for run in runs for line in run)


def test_each_region_is_ordered_by_its_own_newest_run(config: ProbeConfig) -> None:
    plan = make_plan(results(run_lines("eu", {"alpha": FAST, "beta": SLOW}, NOW),
                             run_lines("jpkr", {"alpha": SLOW, "beta": FAST}, NOW)),
                     config, NOW)
    assert plan.for_region("eu").order == ("alpha", "beta")
    assert plan.for_region("jpkr").order == ("beta", "alpha")
    eu = plan.for_region("eu")
    assert eu.basis == MEASURED
    assert eu.ranks[0].score is not None
    assert eu.ranks[1].score is not None
    assert eu.ranks[0].score > eu.ranks[1].score


def test_only_the_newest_run_of_a_region_counts(config: ProbeConfig) -> None:
    old = run_lines("eu", {"alpha": FAST, "beta": SLOW}, NOW - timedelta(minutes=2))
    new = run_lines("eu", {"alpha": SLOW, "beta": FAST}, NOW - timedelta(minutes=1))
    plan = make_plan(results(new, old), config, NOW)
    assert plan.for_region("eu").order == ("beta", "alpha")
    assert plan.for_region("eu").run_id == new[0]["run_id"]


def test_a_cdn_that_missed_a_budget_ranks_after_one_that_met_them(config: ProbeConfig) -> None:
    """beta is faster but fails 1 fetch in 20 (5 % > max_error_rate 1 %): alpha meets every
    budget and goes first, though its composite score is lower."""
    flaky = Delivery(ttfb=0.02, startup=0.2, errors=1)
    plan = make_plan(results(run_lines("eu", {"alpha": SLOW, "beta": flaky}, NOW)), config, NOW)
    eu = plan.for_region("eu")
    assert eu.order == ("alpha", "beta")
    ranks = {r.cdn: r for r in eu.ranks}
    assert ranks["beta"].missed == ("max_error_rate",)
    assert ranks["alpha"].missed == ()
    assert "beta: score" in "\n".join(eu.reasons(NOW, 600, 5))
    assert "missed max_error_rate" in \
        "\n".join(eu.reasons(NOW, 600, 5))


def test_hysteresis_keeps_the_leader_until_a_challenger_leads_by_enough(
        config: ProbeConfig) -> None:
    first = make_plan(results(run_lines("eu", {"alpha": FAST, "beta": SLOW}, NOW)), config, NOW)
    assert first.for_region("eu").order[0] == "alpha"
    # beta now a little better: within 5 points, alpha stays first.
    close = Delivery(ttfb=0.029, startup=0.29)
    later = NOW + timedelta(minutes=1)
    second = make_plan(results(run_lines("eu", {"alpha": FAST, "beta": close}, later)),
                       config, later, previous=first)
    eu = second.for_region("eu")
    assert eu.order == ("alpha", "beta")
    assert eu.held
    assert eu.challenger == "beta"
    assert any("hysteresis" in line for line in eu.reasons(later, 600, 5))
    # beta far better: it takes first place.
    third = make_plan(results(run_lines("eu", {"alpha": SLOW, "beta": FAST}, later)),
                      config, later, previous=second)
    assert third.for_region("eu").order == ("beta", "alpha")
    assert not third.for_region("eu").held


def test_a_missed_budget_overrides_hysteresis(config: ProbeConfig) -> None:
    first = make_plan(results(run_lines("eu", {"alpha": FAST, "beta": SLOW}, NOW)), config, NOW)
    failing = Delivery(ttfb=0.03, startup=0.3, errors=2)
    second = make_plan(results(run_lines("eu", {"alpha": failing, "beta": SLOW}, NOW)),
                       config, NOW, previous=first)
    assert second.for_region("eu").order == ("beta", "alpha")


def test_stale_results_give_the_config_order_flagged(config: ProbeConfig) -> None:
    """max_age is 10 minutes: a run that ended 11 minutes ago no longer steers."""
    ended = NOW - timedelta(minutes=11)
    plan = make_plan(results(run_lines("eu", {"alpha": SLOW, "beta": FAST}, ended)), config, NOW)
    eu = plan.for_region("eu")
    assert eu.order == ("alpha", "beta")  # the config's order
    assert eu.basis == STALE
    assert eu.stale
    assert eu.age(NOW) == 660
    assert "stale" in eu.reasons(NOW, 600, 5)[0]


def test_no_results_give_the_config_order_flagged(config: ProbeConfig) -> None:
    plan = make_plan(None, config, NOW)
    for region in (*plan.regions, plan.overall):
        assert region.order == ("alpha", "beta")
        assert region.basis == NO_DATA
        assert region.throughput_floor is None


def test_unknown_viewers_get_the_audience_weighted_order(config: ProbeConfig) -> None:
    """eu (weight 3) prefers alpha, jpkr and sea (weight 1 each) prefer beta: alpha wins the
    audience-weighted order; a region with no run does not count."""
    plan = make_plan(results(run_lines("eu", {"alpha": FAST, "beta": SLOW}, NOW),
                             run_lines("jpkr", {"alpha": SLOW, "beta": FAST}, NOW)),
                     config, NOW)
    assert plan.for_region(None) is plan.overall
    assert plan.for_region("nowhere") is plan.overall
    assert plan.overall.region == OVERALL
    assert plan.overall.order == ("alpha", "beta")
    assert plan.for_region("sea").basis == NO_DATA
    eu, jp = plan.for_region("eu"), plan.for_region("jpkr")
    alpha = (3 * eu.ranks[0].score + 1 * jp.ranks[1].score) / 4  # type: ignore[operator]
    assert plan.overall.ranks[0].score == round(alpha, 2)


def test_cdns_the_config_does_not_list_are_ignored(config: ProbeConfig) -> None:
    plan = make_plan(results(run_lines("eu", {"gamma": FAST, "beta": SLOW}, NOW)), config, NOW)
    eu = plan.for_region("eu")
    assert eu.order == ("beta", "alpha")  # alpha: not measured, last
    assert [r.score is None for r in eu.ranks] == [False, True]
    assert "gamma" not in eu.order


def test_the_throughput_floor_is_min_throughput_times_the_top_bitrate(
        config: ProbeConfig) -> None:
    plan = make_plan(results(run_lines("eu", {"alpha": FAST, "beta": SLOW}, NOW)), config, NOW)
    assert plan.for_region("eu").throughput_floor == 1.5 * TOP_BANDWIDTH
    assert plan.overall.throughput_floor == 1.5 * TOP_BANDWIDTH


def test_before_any_plan_the_default_pathway_leads_until_a_challenger_leads_by_enough(
        config: ProbeConfig) -> None:
    """alpha, the config's first CDN, is the manifests' default pathway: beta, a little
    better, does not make players move (each move costs a media playlist fetch)."""
    close = Delivery(ttfb=0.029, startup=0.29)
    plan = make_plan(results(run_lines("eu", {"alpha": FAST, "beta": close}, NOW)), config, NOW)
    eu = plan.for_region("eu")
    assert eu.order == ("alpha", "beta")
    assert eu.held
    assert eu.challenger == "beta"
