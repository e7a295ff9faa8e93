"""regions.yaml validation: typed objects, or an error naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from packager.errors import InputError
from probes.config import SHIPPED_CONFIG, Budget, load_config

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
regions:
  - {id: na, name: North America, weight: 2}
  - {id: eu, name: Europe, weight: 1}
cdns:
  - id: a
    base_url: https://a.example.com/rel
    regions:
      eu: {host: a-eu.example.com, resolve: 192.0.2.1}
  - id: b
    base_url: http://b.example.com:8080/x/
    regions:
      eu: {host: "127.0.0.1:9000"}
targets: [master.m3u8, manifest.mpd, {path: /release.json}]
probe: {samples: 3, connections: warm, timeout: 750ms, deadline: 1m}
budgets:
  default: {ttfb_p95: 200ms, max_error_rate: 0.02}
  eu: {ttfb_p95: 0.3s}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "regions.yaml"
    path.write_text(text)
    return path


def test_shipped_config_is_the_documented_example() -> None:
    """The package data an installed cdnpack reads and the repository's regions.yaml that
    users read and copy are one file: any edit to one must be made to the other."""
    assert SHIPPED_CONFIG.read_bytes() == (REPO / "regions.yaml").read_bytes()
    assert SHIPPED_CONFIG.parent.name == "probes"


def test_default_regions_yaml_covers_the_six_audiences() -> None:
    config = load_config(SHIPPED_CONFIG)
    names = {r.name for r in config.regions}
    assert {"North America", "Europe", "Japan / Korea", "Southeast Asia", "Latin America",
            "Middle East"} <= names
    assert all(r.weight > 0 for r in config.regions)
    assert config.probe.connections == "cold"
    for region in config.regions:
        b = config.budget(region.id)
        assert None not in (b.ttfb_p95, b.startup_p95, b.min_throughput, b.max_error_rate)


def test_valid_config_becomes_typed_objects(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert [t.kind for t in config.targets] == ["hls", "dash", "file"]
    assert config.targets[2].path == "release.json"
    a, b = config.cdns
    assert a.url_for("na", "master.m3u8") == "https://a.example.com/rel/master.m3u8"
    assert a.url_for("eu", "master.m3u8") == "https://a-eu.example.com/rel/master.m3u8"
    assert a.resolve_for("eu") == {"a-eu.example.com": "192.0.2.1"}
    assert b.url_for("na", "x.mpd") == "http://b.example.com:8080/x/x.mpd"
    assert b.url_for("eu", "x.mpd") == "http://127.0.0.1:9000/x/x.mpd"
    assert config.probe.timeout == 0.75
    assert config.probe.deadline == 60
    assert config.budget("na") == Budget(ttfb_p95=0.2, max_error_rate=0.02)
    assert config.budget("eu") == Budget(ttfb_p95=0.3, max_error_rate=0.02)


@pytest.mark.parametrize(("old", "new", "line", "field"), [
    ("weight: 2}", "weight: heavy}", 2, "regions[0].weight"),
    ("deadline: 1m", "deadline: 60", 14, "probe.deadline"),
    ("deadline: 1m", "deadline: 1w", 14, "probe.deadline"),
    ("https://a.example.com/rel", "ftp://a.example.com/", 6, "cdns[0].base_url"),
    ("resolve: 192.0.2.1", "resolve: not-an-ip", 8, "cdns[0].regions.eu.resolve"),
    ("  eu: {ttfb_p95: 0.3s}", "  mars: {ttfb_p95: 0.3s}", 17, "budgets.mars"),
    ("connections: warm", "connections: lukewarm", 14, "probe.connections"),
    ("{id: eu, name: Europe", "{id: na, name: Europe", 3, "regions[1].id"),
    ("samples: 3", "samples: 3, sample: 4", 14, "probe.sample"),
    ("max_error_rate: 0.02", "max_error_rate: 2", 16, "budgets.default.max_error_rate"),
])
def test_error_names_file_line_and_field(
    tmp_path: Path, old: str, new: str, line: int, field: str
) -> None:
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:{line}: {field}: ")


def test_duplicate_key_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "probe: {samples: 1}\n")
    with pytest.raises(InputError, match=rf"^{path}:18: .*duplicate key 'probe'"):
        load_config(path)


def test_broken_yaml_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("targets: [", "targets: [[", 1))
    with pytest.raises(InputError, match=rf"^{path}:\d+: not valid YAML"):
        load_config(path)


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_countries_put_viewers_in_regions(tmp_path: Path) -> None:
    text = GOOD.replace("weight: 2}", "weight: 2, countries: [us, CA]}").replace(
        "weight: 1}", 'weight: 1, countries: [GB, "NO"]}')
    config = load_config(write(tmp_path, text))
    assert config.region("na").countries == ("US", "CA")
    assert [config.region_of_country(c) for c in ("ca", "NO")] == [
        config.region("na"), config.region("eu")]
    assert config.region_of_country("JP") is None


@pytest.mark.parametrize(("countries", "message"), [
    ("[GB, NO]", "regions[1].countries: False is not a country code: quote it"),
    ("[GBR]", "regions[1].countries: 'GBR' is not an ISO 3166-1 alpha-2 country code"),
    ("[GB, gb]", "regions[1].countries: GB is listed twice"),
    ("[US]", "regions[1].countries: US is already in region 'na'"),
    ("GB", "regions[1].countries: must be a list"),
])
def test_bad_countries_name_the_line(tmp_path: Path, countries: str, message: str) -> None:
    text = GOOD.replace("weight: 2}", "weight: 2, countries: [US]}").replace(
        "weight: 1}", f"weight: 1, countries: {countries}}}")
    with pytest.raises(InputError) as caught:
        load_config(write(tmp_path, text))
    assert str(caught.value).startswith(f"{tmp_path / 'regions.yaml'}:3: {message}")
