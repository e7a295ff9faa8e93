"""Every request is a record: against an edge with a seeded fault plan, the probe's records
equal, class by class, what the edge did, and the edge served no request the probe left out."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from probes.http import Fetcher
from testbed.accesslog import read_lines
from testbed.edges import EdgeSpec, edge_process

REQUESTS = 47
#: What each fault the edge applies must be recorded as.
EXPECTED_CLASS = {"": None, "503": "http_5xx", "drop": "reset", "reset": "truncated",
                  "truncate": "truncated"}


def seeded_plan(seed: int, length: int) -> tuple[str, ...]:
    rng = random.Random(seed)
    faults = ["drop"] * 6 + ["reset"] * 3 + ["truncate"] * 3 + ["503"] * 2
    plan = faults + [""] * (length - len(faults))
    rng.shuffle(plan)
    return tuple(plan)


@pytest.mark.parametrize("warm", [True, False], ids=["keep-alive", "cold"])
async def test_records_per_class_equal_what_the_edge_did(tmp_path: Path, warm: bool) -> None:
    plan = seeded_plan(17, REQUESTS)
    spec = EdgeSpec("faulty", delay=0.002, fault_plan=plan, access_log=str(tmp_path / "logs"),
                    log_flush=60.0)
    with edge_process([spec], tmp_path) as edges:
        async with Fetcher(timeout=5.0, concurrency=1, warm=warm) as fetcher:
            records = [await fetcher.fetch(edges.url("faulty", "/bytes/200000"))
                       for _ in range(REQUESTS)]
    served = read_lines(sorted((tmp_path / "logs" / "standard").iterdir()))
    # the edge logged every request it received (a drop as status 000): one record each
    assert len(served) == REQUESTS
    assert len(records) == REQUESTS
    expected = Counter(EXPECTED_CLASS[f] for f in plan)
    assert Counter(r.error for r in records) == expected
    assert [r.error for r in records] == [EXPECTED_CLASS[f] for f in plan]
    assert expected["reset"] == 6  # the plan has resets before the headers...
    assert expected["truncated"] == 6  # ... and bodies cut after them, by RST or FIN
    cut = [r for r, f in zip(records, plan, strict=True) if f in ("reset", "truncate")]
    assert all(r.status == 200 and 0 < r.bytes < 200_000 for r in cut)
