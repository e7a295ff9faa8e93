"""Emulated CDN edges on 127.0.0.1 (a subprocess on a select() loop)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from packager.output.pipeline import PackageResult
from testbed.edges import Edges, EdgeSpec, edge_process
from tests.conftest import cdnpack_cli

#: Ground truth of the emulated edges: region x CDN, plus one edge per failure mode.
DELAY_FAST = 0.020
DELAY_SLOW = 0.100
CAP_BPS = 32_000_000


@pytest.fixture(scope="session")
def edges(packaged: PackageResult, certificate: tuple[Path, Path],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edges]:
    root = str(packaged.output)
    cert, key = map(str, certificate)
    specs = [
        EdgeSpec("na-fast", delay=DELAY_FAST, root=root, cache="cloudfront", record=True),
        EdgeSpec("na-slow", delay=DELAY_SLOW, root=root, cache="cloudflare", record=True),
        EdgeSpec("eu-fast", delay=DELAY_FAST, root=root, cache="fastly"),
        # Every 8th request fails: a failed request ends one playback (of 4-5 requests), so
        # however the runs interleave, some playbacks of each probe run get through.
        EdgeSpec("eu-slow", delay=DELAY_SLOW, root=root, cache="akamai", failure="503",
                 failure_every=8),
        EdgeSpec("capped", delay=0.005, bandwidth=CAP_BPS, root=root, record=True),
        EdgeSpec("fail-503", failure="503"),
        EdgeSpec("fail-reset", delay=0.002, failure="reset"),
        EdgeSpec("fail-stall", failure="stall"),
        EdgeSpec("fail-truncate", delay=0.002, failure="truncate"),
        EdgeSpec("fail-drop", failure="drop"),
        EdgeSpec("tls", delay=0.010, certfile=cert, keyfile=key),
    ]
    with edge_process(specs, tmp_path_factory.mktemp("edges")) as running:
        yield running


def write_config(path: Path, edges: Edges, budgets: str,
                 probe: str = "  samples: 4\n  segments: 2\n") -> Path:
    """Two regions x two CDNs on the emulated edges; `fast` is reached through a pinned name."""
    path.write_text(f"""\
regions:
  - {{id: na, name: North America, weight: 0.7}}
  - {{id: eu, name: Europe, weight: 0.3}}
cdns:
  - id: fast
    base_url: http://fast.cdn.test:{edges.ports["na-fast"]}/
    regions:
      na: {{resolve: 127.0.0.1}}
      eu: {{host: "{edges.host("eu-fast")}"}}
  - id: slow
    base_url: http://{edges.host("na-slow")}/
    regions:
      eu: {{host: "{edges.host("eu-slow")}"}}
targets:
  - master.m3u8
  - manifest.mpd
  - {{path: release.json, kind: file}}
probe:
  concurrency: 4
  timeout: 2s
  deadline: 30s
{probe}
budgets:
{budgets}
""")
    return path


#: `slow` misses TTFB everywhere (an edge never answers before its delay: 100 ms > 90 ms) and
#: the error rate in eu (every 8th is a 503); `fast` (20 ms) has 70 ms for a loaded machine's
#: tail (its p95 passed 40 ms once in a full run at load 15).
STRICT_BUDGETS = """\
  default: {ttfb_p95: 90ms, startup_p95: 1s, min_throughput: 1.0, max_error_rate: 0.01}
"""
LENIENT_BUDGETS = """\
  default: {ttfb_p95: 200ms, startup_p95: 2s, max_error_rate: 0.5}
"""


@dataclass(frozen=True)
class ProbeRuns:
    config: Path
    lenient: Path
    na: Path
    eu: Path


@pytest.fixture(scope="session")
def probe_runs(edges: Edges, tmp_path_factory: pytest.TempPathFactory) -> ProbeRuns:
    """`cdnpack probe` run from two regions through the real CLI."""
    d = tmp_path_factory.mktemp("probe")
    config = write_config(d / "regions.yaml", edges, STRICT_BUDGETS)
    lenient = write_config(d / "lenient.yaml", edges, LENIENT_BUDGETS)
    out = {}
    for region in ("na", "eu"):
        out[region] = d / f"{region}.jsonl"
        result = cdnpack_cli("probe", "--region", region, "--config", config,
                             "-o", out[region], "--json")
        assert result.returncode == 0, result.stderr
    return ProbeRuns(config, lenient, out["na"], out["eu"])
