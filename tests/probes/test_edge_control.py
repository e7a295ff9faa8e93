"""Emulated edges under runtime control: a running edge starts failing (503, then resets) and
recovers, and a recording edge tells which paths it was asked for, when."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from testbed.edges import EdgeSpec, edge_process


def fetch(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            answer.read()
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_a_running_edge_fails_on_command_and_recovers(tmp_path: Path) -> None:
    (tmp_path / "seg.m4s").write_bytes(b"x" * 50_000)
    specs = [EdgeSpec("a", root=str(tmp_path), cache="none", record=True)]
    with edge_process(specs, tmp_path) as edges:
        assert edges.control is not None
        url = edges.url("a", "/seg.m4s")
        assert fetch(url) == 200
        edges.control.set("a", failure="503")
        assert fetch(url) == 503
        edges.control.set("a", failure="reset")
        with pytest.raises(ConnectionResetError):  # RST mid-body
            fetch(url)
        edges.control.set("a", failure=None, delay=0.2)
        started = time.monotonic()
        assert fetch(url) == 200
        assert time.monotonic() - started >= 0.2


def test_a_recording_edge_lists_its_requests_in_monotonic_time(tmp_path: Path) -> None:
    specs = [EdgeSpec("a", cache="none", record=True), EdgeSpec("b", cache="none")]
    with edge_process(specs, tmp_path) as edges:
        assert edges.control is not None
        before = time.monotonic()
        fetch(edges.url("a", "/bytes/10"))
        fetch(edges.url("a", "/bytes/20?x=1"))
        log, index = edges.control.requests("a")
        assert [p for _, p in log] == ["/bytes/10", "/bytes/20"]
        assert before <= log[0][0] <= log[1][0] <= time.monotonic()
        fetch(edges.url("a", "/bytes/30"))
        more, _ = edges.control.requests("a", since=index)
        assert [p for _, p in more] == ["/bytes/30"]
        with pytest.raises(ValueError, match="does not record"):
            edges.control.requests("b")
        with pytest.raises(ValueError, match="failure must be one of"):
            edges.control.set("a", failure="explode")
