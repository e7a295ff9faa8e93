"""The `steering:` section of regions.yaml: typed settings, or an error naming file:line: field."""

from __future__ import annotations

from pathlib import Path

import pytest

from packager.errors import InputError
from probes.config import SHIPPED_CONFIG, ProbeConfig, load_config
from tests.steering.conftest import CONFIG, write_config


def test_steering_section_becomes_settings(config: ProbeConfig) -> None:
    steering = config.steering
    assert steering is not None
    assert steering.server == "https://steer.example/v1/"
    assert steering.document_url("hls.json") == "https://steer.example/v1/hls.json"
    assert (steering.ttl, steering.max_age, steering.hysteresis) == (7, 600.0, 5.0)
    assert steering.region_header == "CloudFront-Viewer-Country"
    assert steering.enabled


def test_a_config_without_the_section_has_no_steering(tmp_path: Path) -> None:
    text = CONFIG.split("steering:")[0]
    assert load_config(write_config(tmp_path, text)).steering is None


def test_the_shipped_config_documents_steering() -> None:
    steering = load_config(SHIPPED_CONFIG).steering
    assert steering is not None
    assert steering.server.startswith("https://")


@pytest.mark.parametrize(("old", "new", "field", "message"), [
    ("ttl: 7s", "ttl: 7", "steering.ttl", "must be a duration with a unit"),
    ("ttl: 7s", "ttl: 1500ms", "steering.ttl", "must be whole seconds"),
    ("max_age: 10m", "max_age: 0s", "steering.max_age", "must be > 0"),
    ("hysteresis: 5", "hysteresis: -1", "steering.hysteresis", "must be in [0.0, 100.0]"),
    ("server: https://steer.example/v1", "server: steer.example", "steering.server",
     "must be an http(s) URL"),
    ("server: https://steer.example/v1", "server: https://s.example/?a=1", "steering.server",
     "must not have a query"),
    ("hysteresis: 5", "region_header: 'Bad Header'", "steering.region_header",
     "is not an HTTP header name"),
    ("hysteresis: 5", "enabled: maybe", "steering.enabled", "must be true or false"),
    ("hysteresis: 5", "colour: blue", "steering.colour", "unknown field"),
])
def test_a_bad_steering_field_is_named_with_its_line(
        tmp_path: Path, old: str, new: str, field: str, message: str) -> None:
    text = CONFIG.replace(old, new)
    line = text.splitlines().index("  " + new) + 1
    with pytest.raises(InputError) as caught:
        load_config(write_config(tmp_path, text))
    assert str(caught.value).startswith(f"{tmp_path / 'regions.yaml'}:{line}: {field}: "), \
        caught.value
    assert message in str(caught.value)


def test_a_steering_section_needs_a_server(tmp_path: Path) -> None:
    text = CONFIG.replace("  server: https://steer.example/v1\n", "")
    with pytest.raises(InputError, match=r"steering.server: missing"):
        load_config(write_config(tmp_path, text))
