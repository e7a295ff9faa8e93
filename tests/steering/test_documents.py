"""Steering documents: what each kind carries, and pathway clones for per-region edge hosts."""

from __future__ import annotations

import json
from pathlib import Path

from probes.config import load_config
from probes.results import parse_records
from steering.answers import Answers
from steering.documents import clones_for, document
from steering.plan import make_plan
from tests.steering.conftest import CONFIG, write_config
from tests.steering.results import Delivery, run_lines
from tests.steering.test_plan import NOW

#: alpha reaches Japan / Korea through its own host name there; beta through another port
#: (which a clone cannot express: HOST replaces the host only).
EDGES = CONFIG.replace(
    '  - {id: alpha, base_url: "http://127.0.0.1:1/rel/"}\n'
    '  - {id: beta, base_url: "http://127.0.0.1:2/rel/"}\n',
    '  - {id: alpha, base_url: "https://alpha.example/rel/",'
    ' regions: {jpkr: {host: alpha-ap.example}}}\n'
    '  - {id: beta, base_url: "https://beta.example/rel/",'
    ' regions: {jpkr: {host: "beta.example:8443"}}}\n')


def test_hls_and_dash_documents_carry_the_order(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    assert config.steering is not None
    hls = document("hls.json", ("beta", "alpha"), config.steering, {})
    assert hls == {"VERSION": 1, "TTL": 7,
                   "RELOAD-URI": "https://steer.example/v1/hls.json?reload=1",
                   "PATHWAY-PRIORITY": ["beta", "alpha"]}
    dash = document("dash.json", ("beta", "alpha"), config.steering, {}, region="eu")
    assert dash["PATHWAY-PRIORITY"] == dash["SERVICE-LOCATION-PRIORITY"] == ["beta", "alpha"]
    assert dash["RELOAD-URI"] == "https://steer.example/v1/dash.json?reload=1&region=eu"


def test_a_regional_edge_host_becomes_a_pathway_clone(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, EDGES))
    assert config.steering is not None
    clones = clones_for(config, "jpkr")
    assert list(clones) == ["alpha"]  # beta's override changes the port: no clone
    doc = document("hls.json", ("alpha", "beta"), config.steering, clones)
    assert doc["PATHWAY-PRIORITY"] == ["alpha.jpkr", "beta"]
    assert doc["PATHWAY-CLONES"] == [{"BASE-ID": "alpha", "ID": "alpha.jpkr",
                                      "URI-REPLACEMENT": {"HOST": "alpha-ap.example"}}]
    assert clones_for(config, "eu") == {}
    assert clones_for(config, None) == {}


def test_a_session_on_a_clone_counts_as_its_cdn(tmp_path: Path) -> None:
    """A Japanese viewer on the clone pathway reporting a throughput below the floor is moved
    off alpha; the clone's name means nothing for another region's viewer (ignored)."""
    config = load_config(write_config(tmp_path, EDGES))
    fast, slow_cdn = Delivery(ttfb=0.03, startup=0.3), Delivery(ttfb=0.2, startup=1.5)
    results = parse_records(("test", line) for line in run_lines(
        "jpkr", {"alpha": fast, "beta": slow_cdn}, NOW))
    answers = Answers(make_plan(results, config, NOW), config)
    assert answers.plan.for_region("jpkr").order == ("alpha", "beta")
    slow = {"reload": "1", "region": "jpkr", "_HLS_pathway": "alpha.jpkr",
            "_HLS_throughput": "10"}
    moved = answers.answer("hls.json", slow, {})
    assert json.loads(moved.body)["PATHWAY-PRIORITY"] == ["beta", "alpha.jpkr"]
    assert moved.moved == ("alpha",)
    assert answers.reported("hls.json", "eu", slow) == []
