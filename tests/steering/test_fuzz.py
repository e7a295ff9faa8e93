"""10,000 fuzzed steering requests against the real server (tests/fuzz.py: the parameters
players send, _HLS_*, _DASH_*, region, reload, and the region header, among junk): no 5xx,
no crash, flat memory, and nothing a request carries ever comes back in a response."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from tests.fuzz import exchange, fuzzed, reflected, rss_kb
from tests.steering.results import Delivery, write_run
from tests.steering.serving import steer_serve

#: Ten thousand requests to a live server.
pytestmark = pytest.mark.slow

REQUESTS = 10_000
WARM_UP = 2_000  # requests before the first memory reading (caches filled, pools sized)
#: Generous for CPython's allocator on a shared machine, far below a leak of this many
#: requests (10,000 x even 1 KiB kept = 10 MB).
MAX_GROWTH_KB = 3_000
PATHS = ["/hls.json"] * 8 + ["/dash.json"] * 8 + [
    "/metrics", "/healthz", "/", "/hls.json/", "/x.json", "/%2e%2e/hls.json", "/hls.json%00",
    "/dash.json;a=b"]
KEYS = ["_HLS_pathway", "_HLS_throughput", "_DASH_pathway", "_DASH_throughput", "region",
        "reload"]
COUNTRIES = ["FR", "fr", " de ", "JP", "US", "ZZ", "", "F", "FRA", "\u00c9", "<b>", "1"]


def test_ten_thousand_fuzzed_requests(config_path: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    write_run(results, "eu", {"alpha": Delivery(ttfb=0.2), "beta": Delivery(ttfb=0.03)})
    rng = random.Random(20261204)
    requests = [fuzzed(rng, i, PATHS, KEYS, {"CloudFront-Viewer-Country": COUNTRIES})
                for i in range(REQUESTS)]
    with steer_serve(config_path, str(results), refresh="1s") as served:
        answers = asyncio.run(exchange(served.url, requests[:WARM_UP]))
        before = rss_kb(served.proc.pid)
        answers += asyncio.run(exchange(served.url, requests[WARM_UP:]))
        after = rss_kb(served.proc.pid)
        assert served.get("/healthz")[0] == 200  # still alive
    assert len(answers) == REQUESTS
    statuses = sorted({status for status, _ in answers})
    assert all(status < 500 for status in statuses), statuses
    assert 200 in statuses
    assert 400 in statuses  # the malformed ones were refused, not answered as if fine
    documents = sum(status == 200 and b'"VERSION":1' in raw for status, raw in answers)
    assert documents > REQUESTS // 3  # most fuzz reached the steering logic
    echoed = reflected(answers)
    assert not echoed, echoed[:3]
    assert after - before < MAX_GROWTH_KB, (before, after)
