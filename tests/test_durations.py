"""Every duration, in regions.yaml and on the command line, is read by the one parser: ms, s, m,
h and d (and units combined, largest first); a mistake is one line naming where it was."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from cdn.timeparse import parse_time
from cli import cdnpack
from packager.durations import duration_seconds, parse_duration
from packager.encoding.thumbnails import parse_thumbnails
from packager.errors import InputError
from probes.config import SHIPPED_CONFIG, ProbeConfig, load_config
from tests.conftest import cdnpack_cli

BAD_UNIT = "(ms, s, m, h, d)"


@pytest.mark.parametrize(("text", "seconds"), [
    ("250ms", 0.25), ("2s", 2.0), ("2.5s", 2.5), ("5m", 300.0), ("1h", 3600.0),
    ("7d", 604800.0), ("1h30m", 5400.0), ("1d12h", 129600.0), ("2m30s500ms", 150.5),
    (".5h", 1800.0), (" 15m ", 900.0), ("5 m", 300.0), ("0s", 0.0),
])
def test_a_duration_is_numbers_with_units(text: str, seconds: float) -> None:
    assert duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [
    "", "5", "1w", "1y", "h", "ms", "-1s", "1s1h", "1h1h", "30m1h", "1h 30", "1hour", "1e3s",
    "1h30", "nan s", "inf",
])
def test_anything_else_is_not_a_duration(text: str) -> None:
    assert duration_seconds(text) is None


def test_a_bare_number_is_seconds_only_where_asked() -> None:
    assert duration_seconds("4", bare_seconds=True) == 4.0
    assert duration_seconds("4.5", bare_seconds=True) == 4.5
    assert duration_seconds("4") is None


def test_the_error_says_what_a_duration_looks_like() -> None:
    with pytest.raises(InputError) as caught:
        parse_duration("1w", "--every")
    assert str(caught.value) == (f"--every: must be a duration with a unit {BAD_UNIT} like "
                                 "250ms, 30s, 5m, 1h or 7d, got '1w'")
    with pytest.raises(InputError, match=r"^--x: must be > 0, got '0s'$"):
        parse_duration("0s", "--x")
    with pytest.raises(InputError, match=r"^--x: must be at most 1d, got '25h'$"):
        parse_duration("25h", "--x", maximum=86400)
    with pytest.raises(InputError, match=r"^--x: must be whole seconds, got '1500ms'"):
        parse_duration("1500ms", "--x", whole=True)


# --- every option that takes a duration --------------------------------------------------------


def option(path: str, name: str) -> click.Parameter:
    command: click.Command = cdnpack
    for word in path.split():
        assert isinstance(command, click.Group)
        command = command.commands[word]
    return next(p for p in command.params if name in p.opts)


def convert(path: str, name: str, value: str) -> float:
    param = option(path, name)
    result: float = param.type.convert(value, param, None)
    return result


@pytest.mark.parametrize(("path", "name", "value", "seconds"), [
    ("probe", "--every", "1h", 3600.0),
    ("probe", "--jitter", "1m30s", 90.0),
    ("steer serve", "--refresh", "250ms", 0.25),
    ("push", "--manifest-max-age", "1d", 86400.0),
    ("push", "--manifest-max-age", "30", 30.0),
    ("release", "--manifest-max-age", "5m", 300.0),
    ("package", "--segment-duration", "2.5s", 2.5),
    ("package", "--segment-duration", "6", 6.0),
    ("release", "--segment-duration", "4s", 4.0),
    ("package", "--key-server-timeout", "1m", 60.0),
    ("demo", "--duration", "1m", 60.0),
])
def test_duration_options_take_every_unit(path: str, name: str, value: str,
                                          seconds: float) -> None:
    assert convert(path, name, value) == seconds


@pytest.mark.parametrize(("path", "name"), [
    ("probe", "--every"), ("probe", "--jitter"), ("steer serve", "--refresh"),
    ("push", "--manifest-max-age"), ("package", "--segment-duration"),
    ("package", "--key-server-timeout"), ("demo", "--duration"),
])
def test_a_bad_unit_in_an_option_is_named(path: str, name: str) -> None:
    with pytest.raises(InputError, match=rf"^{name}: must be .*with a unit "
                                         rf"{re.escape(BAD_UNIT)}.*, got '5w'$"):
        convert(path, name, "5w")


def test_a_bad_duration_option_is_one_line_and_exit_2() -> None:
    done = cdnpack_cli("probe", "--region", "eu", "--every", "1w")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"cdnpack: error: --every: must be a duration with a unit {BAD_UNIT} like 250ms, 30s, "
        "5m, 1h or 7d, got '1w'"]


def test_the_thumbnail_interval_is_a_duration() -> None:
    assert parse_thumbnails("1m:2x2").interval == 60.0
    assert parse_thumbnails("2500ms").interval == 2.5
    assert parse_thumbnails("10").interval == 10.0
    with pytest.raises(InputError, match=re.escape(BAD_UNIT[1:-1])):
        parse_thumbnails("5w:2x2")


def test_sign_expiry_is_now_plus_a_duration() -> None:
    now = 1_800_000_000
    assert parse_time("+1d", now) == now + 86400
    assert parse_time("+1d12h", now) == now + 129600
    assert parse_time("+3600", now) == now + 3600
    with pytest.raises(InputError, match=r"^'\+5w' is not a time"):
        parse_time("+5w", now)


# --- every duration field of regions.yaml ------------------------------------------------------


SHIPPED = SHIPPED_CONFIG.read_text()


def with_field(tmp_path: Path, old: str, new: str) -> tuple[Path, int]:
    """The shipped config with one field's line changed; (its path, that line's number)."""
    assert SHIPPED.count(old) == 1, old
    text = SHIPPED.replace(old, new)
    path = tmp_path / "regions.yaml"
    path.write_text(text)
    return path, text[:text.index(new)].count("\n") + 1


FIELDS = [
    ("timeout: 5s", "timeout: {}", "probe.timeout", lambda c: c.probe.timeout),
    ("deadline: 120s", "deadline: {}", "probe.deadline", lambda c: c.probe.deadline),
    ("lag_threshold: 5ms", "lag_threshold: {}", "probe.lag_threshold",
     lambda c: c.probe.lag_threshold),
    ("ttfb_p95: 250ms", "ttfb_p95: {}", "budgets.default.ttfb_p95",
     lambda c: c.budget("na").ttfb_p95),
    ("startup_p95: 2s\n", "startup_p95: {}\n", "budgets.default.startup_p95",
     lambda c: c.budget("na").startup_p95),
    ("    max_error_rate: 0.01\n", "    rum_startup_p95: {}\n    max_error_rate: 0.01\n",
     "budgets.default.rum_startup_p95", lambda c: c.budget("na").rum_startup_p95),
    ("ttl: 30s", "ttl: {}", "steering.ttl", lambda c: c.steering.ttl),
    ("max_age: 15m", "max_age: {}", "steering.max_age", lambda c: c.steering.max_age),
]


@pytest.mark.parametrize(("old", "new", "field", "read"), FIELDS, ids=[f[2] for f in FIELDS])
@pytest.mark.parametrize(("value", "seconds"), [("1h", 3600.0), ("1d", 86400.0),
                                                ("1m30s", 90.0)])
def test_config_durations_take_hours_and_days(
    tmp_path: Path, old: str, new: str, field: str, read: object, value: str, seconds: float,
) -> None:
    path, _ = with_field(tmp_path, old, new.format(value))
    config = load_config(path)
    assert callable(read)
    assert read(config) == seconds


@pytest.mark.parametrize(("old", "new", "field", "read"), FIELDS, ids=[f[2] for f in FIELDS])
def test_a_bad_unit_in_the_config_names_file_line_and_field(
    tmp_path: Path, old: str, new: str, field: str, read: object,
) -> None:
    path, line = with_field(tmp_path, old, new.format("2w"))
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert str(caught.value) == (f"{path}:{line}: {field}: must be a duration with a unit "
                                 f"{BAD_UNIT} like 250ms, 30s, 5m, 1h or 7d, got '2w'")


def test_the_shipped_config_reads_the_same(tmp_path: Path) -> None:
    config: ProbeConfig = load_config(SHIPPED_CONFIG)
    assert config.steering is not None
    assert (config.probe.timeout, config.steering.max_age) == (5.0, 900.0)
