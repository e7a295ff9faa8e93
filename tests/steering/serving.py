"""`cdnpack steer serve` as users run it: the real CLI in a subprocess on a free port."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[str]
    stderr: str = ""  # the server's log, once it has stopped

    def get(self, path: str, headers: Mapping[str, str] | None = None
            ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.url + path, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def document(self, path: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        status, _, body = self.get(path, headers)
        assert status == 200, (status, body)
        doc: dict[str, Any] = json.loads(body)
        return doc

    def priority(self, path: str, headers: Mapping[str, str] | None = None) -> list[str]:
        return list(self.document(path, headers)["PATHWAY-PRIORITY"])

    def wait_for(self, check: Callable[[], bool], timeout: float = 15.0) -> float:
        """Seconds until `check()` held; fails the test if it never does."""
        started = time.monotonic()
        while not check():
            assert time.monotonic() - started < timeout, "condition never held"
            time.sleep(0.05)
        return time.monotonic() - started


@contextmanager
def steer_serve(config: Path, *results: str, refresh: str = "200ms",
                extra: tuple[str, ...] = (), env: Mapping[str, str] | None = None,
                listen: str = "127.0.0.1:0") -> Iterator[Served]:
    """Start the server, yield it once it listens; on the way out Ctrl-C it and check that it
    stopped cleanly (a `stopped` line, then exit 130 saying so in one line, no traceback). Its
    log is not wrapped (rich reads COLUMNS), so a test can look for a phrase in it."""
    args = [sys.executable, "-m", "cli", "steer", "serve", "--config", str(config),
            "--listen", listen, "--refresh", refresh, "--json", *extra]
    for source in results:
        args += ["--results", source]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **(env or {}), "COLUMNS": "1000"})
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else ""
        if not line:
            proc.kill()
            raise AssertionError(f"steer serve did not start: {proc.communicate()[1][-2000:]}")
        event = json.loads(line)
        assert event["event"] == "listening"
        served = Served(event["url"], proc)
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    served.stderr = err
    assert proc.returncode == 130, err
    assert err.splitlines()[-1] == "cdnpack: interrupted", err
    assert json.loads(out.strip().splitlines()[-1])["event"] == "stopped"
    assert "Traceback" not in err, err
