"""`cdnpack steer serve`: documents per viewer region, metrics that parse, stale and missing
results flagged, the last good plan kept, sessions moved off slow pathways, 410 Gone, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import urllib.request
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cdn.s3 import client
from probes.results import jsonl
from testbed.origin import local_connection, moto_server, origin_bucket
from tests.conftest import cdnpack_cli
from tests.interrupts import assert_stopped_cleanly, interrupt, start
from tests.moto import FAKE_CREDENTIALS
from tests.steering.conftest import CONFIG, write_config
from tests.steering.results import TOP_BANDWIDTH, Delivery, run_lines, write_run
from tests.steering.serving import Served, steer_serve

#: A live steering server per test (aiohttp on a thread, the CLI in processes).
pytestmark = pytest.mark.slow

FAST = Delivery(ttfb=0.03, startup=0.3)
SLOW = Delivery(ttfb=0.20, startup=1.5)
FR = {"CloudFront-Viewer-Country": "FR"}


def metrics(served: Served) -> dict[str, list[tuple[dict[str, str], float]]]:
    status, headers, body = served.get("/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str,
          **labels: str) -> float | None:
    for got, number in samples.get(name, []):
        if all(got.get(k) == v for k, v in labels.items()):
            return number
    return None


@pytest.fixture
def results(tmp_path: Path) -> Path:
    directory = tmp_path / "results"
    directory.mkdir()
    return directory


def test_each_viewer_gets_its_regions_order(config_path: Path, results: Path) -> None:
    write_run(results, "eu", {"alpha": SLOW, "beta": FAST})
    write_run(results, "jpkr", {"alpha": FAST, "beta": SLOW})
    with steer_serve(config_path, str(results)) as served:
        hls = served.document("/hls.json", FR)
        assert hls["VERSION"] == 1
        assert hls["TTL"] == 7
        assert hls["PATHWAY-PRIORITY"] == ["beta", "alpha"]
        assert hls["RELOAD-URI"] == "https://steer.example/v1/hls.json?reload=1"
        dash = served.document("/dash.json", {"CloudFront-Viewer-Country": "kr"})
        assert dash["PATHWAY-PRIORITY"] == dash["SERVICE-LOCATION-PRIORITY"] == ["alpha", "beta"]
        # ?region= names a region; reloads keep it.
        named = served.document("/hls.json?region=jpkr", FR)
        assert named["PATHWAY-PRIORITY"] == ["alpha", "beta"]
        assert named["RELOAD-URI"].endswith("?reload=1&region=jpkr")
        # Unknown viewers: eu weighs 3, jpkr 1: the audience-weighted order is eu's.
        assert served.priority("/hls.json") == ["beta", "alpha"]
        assert served.priority("/hls.json", {"CloudFront-Viewer-Country": "US"}) == [
            "beta", "alpha"]
        _, headers, _ = served.get("/hls.json", FR)
        assert headers["Access-Control-Allow-Origin"] == "*"
        assert headers["Cache-Control"] == "no-store"
        assert headers["Content-Type"] == "application/json"


def test_metrics_parse_and_count_decisions_per_region_and_pathway(
        config_path: Path, results: Path) -> None:
    write_run(results, "eu", {"alpha": SLOW, "beta": FAST})
    with steer_serve(config_path, str(results)) as served:
        for _ in range(3):
            served.document("/hls.json", FR)
        served.document("/dash.json?region=sea")
        samples = metrics(served)
    assert value(samples, "cdnpack_steering_decisions_total", region="eu", pathway="beta") == 3
    assert value(samples, "cdnpack_steering_decisions_total", region="sea",
                 pathway="alpha") == 1
    age = value(samples, "cdnpack_steering_plan_age_seconds")
    assert age is not None
    assert 0 <= age < 30
    assert value(samples, "cdnpack_steering_stale", region="eu") == 0
    assert value(samples, "cdnpack_steering_stale", region="sea", basis="no data") == 1
    assert value(samples, "cdnpack_steering_pathway_position", region="eu",
                 pathway="beta") == 1
    assert value(samples, "cdnpack_steering_responses_total", path="/hls.json",
                 code="200") == 3


def test_no_results_give_the_config_order_flagged_in_metrics_and_log(
        config_path: Path, results: Path) -> None:
    with steer_serve(config_path, str(results)) as served:
        assert served.priority("/hls.json", FR) == ["alpha", "beta"]
        samples = metrics(served)
        health = json.loads(served.get("/healthz")[2])
    for region in ("eu", "jpkr", "sea", "_overall"):
        assert value(samples, "cdnpack_steering_stale", region=region, basis="no data") == 1
    assert health["stale"] == ["eu", "jpkr", "sea", "_overall"]
    assert "no probe results" in served.stderr


def test_results_older_than_max_age_give_the_config_order_flagged(
        config_path: Path, results: Path) -> None:
    """max_age is 10 minutes; the run ended 20 minutes ago."""
    write_run(results, "eu", {"alpha": SLOW, "beta": FAST},
              ended=datetime.now(UTC) - timedelta(minutes=20))
    with steer_serve(config_path, str(results)) as served:
        assert served.priority("/hls.json", FR) == ["alpha", "beta"]
        samples = metrics(served)
    assert value(samples, "cdnpack_steering_stale", region="eu", basis="stale") == 1
    age = value(samples, "cdnpack_steering_results_age_seconds", region="eu")
    assert age is not None
    assert age >= 20 * 60
    assert "results stale" in served.stderr


def test_new_probe_results_change_the_order_within_a_refresh(
        config_path: Path, results: Path) -> None:
    write_run(results, "eu", {"alpha": FAST, "beta": SLOW})
    with steer_serve(config_path, str(results), refresh="200ms") as served:
        assert served.priority("/hls.json", FR) == ["alpha", "beta"]
        write_run(results, "eu", {"alpha": SLOW, "beta": FAST})
        seconds = served.wait_for(lambda: served.priority("/hls.json", FR)[0] == "beta")
    assert seconds < 5


def test_an_unreachable_results_bus_keeps_the_last_good_plan(config_path: Path) -> None:
    """Results on S3 (a moto_server of its own), then the S3 endpoint goes away: the server
    keeps steering by the last plan it made, and counts the failed refreshes."""
    with ExitStack() as bus:
        url = bus.enter_context(moto_server())
        s3 = client(local_connection(url))
        origin_bucket(s3, "probe-results")
        s3.put_object(Bucket="probe-results", Key="runs/eu/run.jsonl",
                      Body=jsonl(run_lines("eu", {"alpha": SLOW, "beta": FAST})).encode())
        with steer_serve(config_path, "s3://probe-results/runs", refresh="200ms",
                         extra=("--endpoint-url", url), env=FAKE_CREDENTIALS) as served:
            assert served.priority("/hls.json", FR) == ["beta", "alpha"]
            bus.close()  # moto_server stops: the results bus is unreachable
            served.wait_for(lambda: (value(metrics(served),
                                           "cdnpack_steering_refresh_failures_total") or 0) >= 2)
            assert served.priority("/hls.json", FR) == ["beta", "alpha"]
            assert value(metrics(served), "cdnpack_steering_stale", region="eu") == 0
    assert "keeping the last good plan" in served.stderr


def test_a_session_below_the_throughput_floor_moves_to_the_next_pathway(
        config_path: Path, results: Path) -> None:
    """The floor is min_throughput 1.5 x the top rendition's 1 Mb/s. beta ranks first in eu;
    a session on beta measuring 1.2 Mb/s there is sent to alpha; one measuring 2 Mb/s stays.
    The first request's throughput (hls.js's default estimate) does not count."""
    write_run(results, "eu", {"alpha": SLOW, "beta": FAST})
    slow = int(1.2 * TOP_BANDWIDTH)
    with steer_serve(config_path, str(results)) as served:
        first = f"/hls.json?_HLS_pathway=beta&_HLS_throughput={slow}"
        assert served.priority(first, FR) == ["beta", "alpha"]
        reload = f"/hls.json?reload=1&_HLS_pathway=beta&_HLS_throughput={slow}"
        assert served.priority(reload, FR) == ["alpha", "beta"]
        fine = f"/hls.json?reload=1&_HLS_pathway=beta&_HLS_throughput={2 * TOP_BANDWIDTH}"
        assert served.priority(fine, FR) == ["beta", "alpha"]
        dash = (f'/dash.json?reload=1&_DASH_pathway="alpha,beta"'
                f"&_DASH_throughput=9000000,{slow}")
        assert served.priority(dash.replace('"', "%22"), FR) == ["alpha", "beta"]
        samples = metrics(served)
    assert value(samples, "cdnpack_steering_throughput_moves_total", region="eu",
                 pathway="beta") == 2


def test_pathway_names_not_in_the_config_are_ignored(config_path: Path, results: Path) -> None:
    write_run(results, "eu", {"alpha": SLOW, "beta": FAST})
    with steer_serve(config_path, str(results)) as served:
        plain = served.get("/hls.json?reload=1", FR)[2]
        for query in ("_HLS_pathway=gamma&_HLS_throughput=1",
                      "_HLS_pathway=beta.eu&_HLS_throughput=1",
                      "_HLS_pathway=%3Cscript%3E&_HLS_throughput=1",
                      "_HLS_pathway=beta&_HLS_throughput=-5",
                      "_HLS_pathway=beta&_HLS_throughput=nan"):
            assert served.get(f"/hls.json?reload=1&{query}", FR)[2] == plain, query


def test_steering_disabled_answers_410_gone(tmp_path: Path, results: Path) -> None:
    """`enabled: false` in the config (re-read on every refresh) ends steering."""
    config = write_config(tmp_path)
    with steer_serve(config, str(results)) as served:
        assert served.get("/hls.json")[0] == 200
        config.write_text(CONFIG.replace("  hysteresis: 5\n", "  hysteresis: 5\n"
                                                                "  enabled: false\n"))
        served.wait_for(lambda: served.get("/hls.json")[0] == 410)
        assert served.get("/dash.json", FR)[0] == 410
        assert served.get("/metrics")[0] == 200
        assert value(metrics(served), "cdnpack_steering_enabled") == 0


def test_ctrl_c_stops_the_server_cleanly(config_path: Path, results: Path) -> None:
    """steer_serve sends SIGINT on the way out and checks exit 130, a `stopped` event and no
    traceback; here nothing listens on the port any more."""
    with steer_serve(config_path, str(results)) as served:
        port = int(served.url.rsplit(":", 1)[1])
        assert served.get("/healthz")[0] == 200
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


@pytest.mark.slow
@pytest.mark.parametrize(("moment", "sig"), [("serving", signal.SIGINT),
                                             ("mid-request", signal.SIGTERM)])
def test_a_signal_stops_the_server_in_one_line_even_mid_request(
        config_path: Path, results: Path, moment: str, sig: signal.Signals) -> None:
    """A request still arriving (its headers half sent) does not hold the server past its
    shutdown time: it closes, says why in one line and exits 128 + the signal."""
    command = start(["steer", "serve", "--config", config_path, "--results", results,
                     "--listen", "127.0.0.1:0", "--json"])
    command.wait_until(lambda: bool(command.stdout), "listening")
    url = json.loads(command.stdout[0])["url"]
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with ExitStack() as stack:
        if moment == "mid-request":
            client = stack.enter_context(socket.create_connection((host, int(port)), timeout=30))
            client.sendall(b"GET /hls.json?region=eu HTTP/1.1\r\nHost: steer\r\n")
        ended = interrupt(command, sig)
    assert_stopped_cleanly(ended, sig)
    assert json.loads(command.stdout[-1])["event"] == "stopped"


@pytest.mark.slow
def test_a_background_job_started_with_sigint_ignored_keeps_ignoring_it(
        config_path: Path, results: Path) -> None:
    """A shell starts `cmd &` with SIGINT ignored, so that the terminal's Ctrl-C is not for it;
    cdnpack keeps it so (as Python would) and still stops on SIGTERM."""
    args: list[str | Path] = ["steer", "serve", "--config", config_path, "--results", results,
                              "--listen", "127.0.0.1:0", "--json"]
    command = start(["-c", 'trap "" INT; exec "$0" -m cli "$@"', sys.executable, *args],
                    shell="/bin/sh")
    command.wait_until(lambda: bool(command.stdout), "listening")
    os.killpg(command.proc.pid, signal.SIGINT)
    url = json.loads(command.stdout[0])["url"]
    with urllib.request.urlopen(f"{url}/healthz", timeout=10) as answer:  # still serving
        assert answer.status == 200
    assert_stopped_cleanly(interrupt(command, signal.SIGTERM), signal.SIGTERM)


@pytest.mark.parametrize(("args", "message"), [
    (("--listen", "nowhere"), "--listen 'nowhere': expected HOST:PORT"),
    (("--refresh", "5"), "--refresh: must be a duration with a unit (ms, s, m, h, d) like "
                         "250ms, 30s, 5m, 1h or 7d, got '5'"),
    (("--results", "/no/such/dir"), "--results /no/such/dir: no such file or directory"),
    (("--results", "s3://Bad_Bucket/x"), "is not a valid S3 bucket name"),
])
def test_bad_serve_options_are_one_line_of_bad_input(
        config_path: Path, results: Path, args: tuple[str, ...], message: str) -> None:
    base: dict[str, Any] = {"--results": str(results)}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [x for pair in base.items() for x in pair]
    done = cdnpack_cli("steer", "serve", "--config", config_path, *flat)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]


def test_steer_plan_shows_each_regions_order_and_why(config_path: Path, results: Path) -> None:
    write_run(results, "eu", {"alpha": SLOW, "beta": Delivery(ttfb=0.02, errors=1)})
    done = cdnpack_cli("steer", "plan", results, "--config", config_path, "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    eu = doc["regions"][0]
    assert eu["region"] == "eu"
    assert eu["order"] == ["alpha", "beta"]
    assert eu["pathways"][1]["missed"] == ["max_error_rate"]
    assert any("missed max_error_rate" in line for line in eu["reasons"])
    assert doc["regions"][1]["basis"] == "no data"
    people = cdnpack_cli("steer", "plan", results, "--config", config_path)
    assert people.returncode == 0, people.stderr
    assert "alpha > beta" in people.stdout


def test_serving_needs_a_steering_section(tmp_path: Path, results: Path) -> None:
    config = write_config(tmp_path, CONFIG.split("steering:")[0])
    done = cdnpack_cli("steer", "serve", "--config", config, "--results", results)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"cdnpack: error: {config}: `steer serve` needs a `steering:` section"]
