"""`cdnpack exporter`: blackbox_exporter's metric names and labels for the same phases (parsed
with prometheus_client's own parser), our video metrics, a stalled target that costs only
its own scrape, and fuzzed requests that never make it answer 5xx or echo them."""

from __future__ import annotations

import asyncio
import json
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from testbed.edges import Edges
from tests.fuzz import exchange, fuzzed, reflected, rss_kb
from tests.interrupts import assert_stopped_cleanly, interrupt, start
from tests.probes.conftest import DELAY_FAST

REPO = Path(__file__).resolve().parents[2]
#: The gauges blackbox_exporter's http prober answers (prometheus/blackbox_exporter:
#: prober/handler.go probe_success, probe_duration_seconds; prober/http.go the probe_http_*
#: and probe_failed_due_to_regex; prober/utils.go probe_dns_lookup_time_seconds,
#: probe_ip_protocol).
BLACKBOX_NAMES = {
    "probe_success", "probe_duration_seconds", "probe_http_duration_seconds",
    "probe_http_status_code", "probe_http_content_length",
    "probe_http_uncompressed_body_length", "probe_http_version", "probe_http_ssl",
    "probe_http_redirects", "probe_failed_due_to_regex", "probe_dns_lookup_time_seconds",
    "probe_ip_protocol",
}
BLACKBOX_PHASES = {"resolve", "connect", "tls", "processing", "transfer"}


def exporter_config(edges: Edges, directory: Path) -> Path:
    config = directory / "regions.yaml"
    config.write_text(f"""\
regions:
  - {{id: eu, name: Europe, weight: 1}}
cdns:
  - {{id: fast, base_url: "http://{edges.host("na-fast")}/"}}
  - {{id: stalled, base_url: "http://{edges.host("fail-stall")}/"}}
targets: [master.m3u8, manifest.mpd, {{path: release.json, kind: file}}]
probe: {{timeout: 5s, segments: 1}}
""")
    return config


@pytest.fixture(scope="module")
def exporter_process(edges: Edges, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The exporter's URL and process, for the whole module."""
    config = exporter_config(edges, tmp_path_factory.mktemp("exporter"))
    proc = subprocess.Popen([sys.executable, "-m", "cli", "exporter", "--config", str(config),
                             "--region", "eu", "--listen", "127.0.0.1:0"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"on (http://\S+):", line)
        assert match, line + (proc.stderr.read() if proc.stderr else "")
        yield match.group(1), proc
        assert proc.poll() is None, "the exporter died"
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=15)
        assert proc.returncode == 143, stderr  # SIGTERM: a clean exit, in one line
        assert stderr.splitlines() == ["cdnpack: terminated"], stderr


@pytest.fixture
def exporter(exporter_process: tuple[str, subprocess.Popen[str]]) -> str:
    return exporter_process[0]


def scrape(url: str, timeout_header: float | None = None) -> dict[str, list[tuple[
        dict[str, str], float]]]:
    headers = {} if timeout_header is None else {
        "X-Prometheus-Scrape-Timeout-Seconds": str(timeout_header)}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
        text = r.read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def value(metrics: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    (_, v), = metrics[name]
    return v


def test_probe_answers_with_blackbox_names_and_phase_labels(exporter: str) -> None:
    m = scrape(f"{exporter}/probe?cdn=fast&target=release.json")
    assert set(m) >= BLACKBOX_NAMES
    phases = {labels["phase"]: v for labels, v in m["probe_http_duration_seconds"]}
    assert set(phases) == BLACKBOX_PHASES
    assert value(m, "probe_success") == 1.0
    assert value(m, "probe_http_status_code") == 200.0
    assert value(m, "probe_http_version") == 1.1
    assert value(m, "probe_http_content_length") == value(m, "probe_http_uncompressed_body_length")
    assert value(m, "probe_http_content_length") > 0
    assert phases["processing"] >= DELAY_FAST - 0.001  # the edge's first-byte delay
    assert value(m, "probe_duration_seconds") >= phases["processing"]
    assert value(m, "probe_ip_protocol") == 4.0
    assert "cdnpack_probe_error_info" not in m


@pytest.mark.parametrize("target", ["master.m3u8", "manifest.mpd"])
def test_video_targets_add_startup_and_sustainable_bitrate(exporter: str, target: str) -> None:
    m = scrape(f"{exporter}/probe?cdn=fast&target={target}")
    assert value(m, "probe_success") == 1.0
    assert value(m, "probe_startup_duration_seconds") > 3 * DELAY_FAST  # manifest, init, segment
    assert value(m, "probe_sustainable_bitrate_bits_per_second") > 0


def test_a_stalled_target_costs_its_own_scrape_and_nothing_else(exporter: str) -> None:
    stalled: dict[str, float] = {}

    def scrape_stalled() -> None:
        started = time.perf_counter()
        m = scrape(f"{exporter}/probe?cdn=stalled&target=release.json", timeout_header=1.5)
        stalled["seconds"] = time.perf_counter() - started
        stalled["success"] = value(m, "probe_success")
        stalled["timeout"] = value(m, "probe_timeout_seconds")
        stalled["timeout_class"] = float(
            ({"class": "timeout"}, 1.0) in m["cdnpack_probe_error_info"])

    thread = threading.Thread(target=scrape_stalled)
    thread.start()
    time.sleep(0.2)  # the stalled probe is in flight ...
    answered: list[tuple[float, float]] = []
    while thread.is_alive() and len(answered) < 3:  # ... and the exporter keeps answering
        started = time.perf_counter()
        m = scrape(f"{exporter}/probe?cdn=fast&target=release.json")
        answered.append((time.perf_counter() - started, value(m, "probe_success")))
    thread.join(30)
    assert answered, "the stalled scrape ended before any other was tried"
    assert all(ok == 1.0 and seconds < 1.0 for seconds, ok in answered), answered
    assert stalled["success"] == 0.0
    assert stalled["timeout_class"] == 1.0
    assert stalled["timeout"] == pytest.approx(1.0)  # 1.5 s scrape timeout less 0.5 s offset
    assert 1.0 <= stalled["seconds"] < 1.5  # answered inside Prometheus' scrape timeout


def test_exporter_metrics_count_its_probes(exporter: str) -> None:
    scrape(f"{exporter}/probe?cdn=fast&target=release.json")
    m = scrape(f"{exporter}/metrics")
    counted = {(labels["cdn"], labels["result"]): v
               for labels, v in m["cdnpack_exporter_probes_total"]}
    assert counted[("fast", "success")] >= 1
    assert "process_cpu_seconds_total" in m


@pytest.mark.parametrize("query", ["cdn=nope&target=release.json", "cdn=fast"])
def test_a_bad_probe_request_is_400(exporter: str, query: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{exporter}/probe?{query}", timeout=10)
    assert caught.value.code == 400


def test_fuzzed_requests_get_no_5xx_and_nothing_echoed(
    exporter_process: tuple[str, subprocess.Popen[str]],
) -> None:
    """3,000 fuzzed requests (tests/fuzz.py; cdn and target among junk, a third of the values
    ones the exporter knows, so many run a real probe): never a 5xx, never a value echoed,
    and the exporter still answers a real probe after them."""
    rng = random.Random(20261204)
    known = ["fast", "release.json", "master.m3u8", "manifest.mpd", "/release.json"]
    paths = ["/probe"] * 4 + ["/probe?cdn=fast"] * 4 + [
        "/probe?cdn=fast&target=release.json", "/probe?cdn=fast&target=master.m3u8",
        "/probe?target=manifest.mpd", "/metrics", "/", "/probe/", "/%2e%2e/probe",
        "/probe%00"]
    requests = [fuzzed(rng, i, paths, ["cdn", "target"], values=known) for i in range(3_000)]
    exporter, proc = exporter_process
    pid = proc.pid
    answers = asyncio.run(exchange(exporter, requests[:500]))
    before = rss_kb(pid)
    answers += asyncio.run(exchange(exporter, requests[500:]))
    after = rss_kb(pid)
    statuses = sorted({status for status, _ in answers})
    assert all(status < 500 for status in statuses), statuses
    ran = [raw for status, raw in answers if status == 200 and b"\nprobe_success " in raw]
    assert len(ran) > 100, len(ran)  # the fuzz reached real probes, not only the 400s
    assert any(b"\nprobe_success 1.0" in raw for raw in ran)  # some of a known target
    assert 400 in statuses
    echoed = reflected(answers)
    assert not echoed, echoed[:3]
    assert after - before < 3_000, (before, after)  # kB: nothing kept per request
    assert value(scrape(f"{exporter}/probe?cdn=fast&target=release.json"),
                 "probe_success") == 1.0


@pytest.mark.parametrize(("moment", "sig"), [("serving", signal.SIGINT),
                                             ("mid-request", signal.SIGTERM)])
def test_a_signal_stops_the_exporter_in_one_line_even_mid_probe(
        edges: Edges, tmp_path: Path, moment: str, sig: signal.Signals) -> None:
    """A probe of a stalled target in flight holds the exporter at most its shutdown time: it
    closes, says why in one line and exits 128 + the signal."""
    command = start(["exporter", "--config", exporter_config(edges, tmp_path), "--region", "eu",
                     "--listen", "127.0.0.1:0", "--json"])
    command.wait_until(lambda: "}" in "".join(command.stdout), "listening")
    ready = json.loads("".join(command.stdout))
    host, port = ready["listen"].removeprefix("http://").rsplit(":", 1)
    with ExitStack() as stack:
        if moment == "mid-request":
            scrape = stack.enter_context(socket.create_connection((host, int(port)), timeout=30))
            scrape.sendall(b"GET /probe?cdn=stalled&target=release.json HTTP/1.1\r\n"
                           b"Host: exporter\r\n\r\n")
        ended = interrupt(command, sig)
    assert_stopped_cleanly(ended, sig)
