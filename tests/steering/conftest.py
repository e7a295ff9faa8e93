"""Steering test fixtures: a two-CDN, three-region config with a `steering:` section."""

from __future__ import annotations

from pathlib import Path

import pytest

from probes.config import ProbeConfig, load_config

CONFIG = """\
regions:
  - {id: eu, name: Europe, weight: 3, countries: [FR, DE, "NO"]}
  - {id: jpkr, name: Japan / Korea, weight: 1, countries: [JP, KR]}
  - {id: sea, name: Southeast Asia, weight: 1, countries: [SG, TH]}
cdns:
  - {id: alpha, base_url: "http://127.0.0.1:1/rel/"}
  - {id: beta, base_url: "http://127.0.0.1:2/rel/"}
targets: [master.m3u8]
budgets:
  default: {ttfb_p95: 250ms, startup_p95: 2s, min_throughput: 1.5, max_error_rate: 0.01}
steering:
  server: https://steer.example/v1
  ttl: 7s
  max_age: 10m
  hysteresis: 5
"""


def write_config(directory: Path, text: str = CONFIG) -> Path:
    path = directory / "regions.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def config(config_path: Path) -> ProbeConfig:
    return load_config(config_path)
