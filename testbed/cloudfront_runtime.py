"""CloudFront Functions run locally: the function's own code in node (cloudfront_runtime.mjs),
with its KeyValueStore loaded from an import-format file and, when asked, a fixed clock.

The tests and the demo's edges run the code that `rights publish` publishes, byte for byte,
never a re-implementation of it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packager.errors import ToolError
from packager.tools import spawn

RUNTIME = Path(__file__).resolve().with_name("cloudfront_runtime.mjs")
#: node 20 evaluates an ES module in a context of its own (vm.SourceTextModule) behind a flag.
NODE_FLAGS = ("--experimental-vm-modules", "--no-warnings")


def node() -> str:
    found = shutil.which("node")
    if found is None:
        raise ToolError("node is not installed: the CloudFront Function runs locally in node")
    return found


def command(function: Path, kvs: Path | None = None) -> list[str]:
    return [node(), *NODE_FLAGS, str(RUNTIME), str(function), *([str(kvs)] if kvs else [])]


@dataclass(frozen=True)
class Call:
    """One viewer request: the event CloudFront would hand the function, and the clock."""

    event: dict[str, Any]
    now: int | None = None  # milliseconds since the epoch; None: the real clock


def run_calls(function: Path, kvs: Path | None, calls: Sequence[Call]) -> list[dict[str, Any]]:
    """What the function answered to each call, in order: {"result": ...} or {"error": ...}."""
    lines = "".join(json.dumps({"id": i, "event": c.event, "now": c.now}) + "\n"
                    for i, c in enumerate(calls))
    with spawn(command(function, kvs), stdin=subprocess.PIPE, terminate=False,
               timeout=60) as proc:
        out, err = proc.communicate(lines, timeout=120)
    if proc.returncode != 0:
        raise ToolError(f"the function did not run: {err.strip()[-300:]}")
    answers = [json.loads(line) for line in out.splitlines()]
    if [a["id"] for a in answers] != list(range(len(calls))):
        raise ToolError("the function runtime lost requests")
    return answers


def viewer_request(uri: str, country: str | None = None,
                   query: dict[str, str] | None = None, method: str = "GET",
                   host: str = "d111111abcdef8.cloudfront.net") -> dict[str, Any]:
    """A viewer-request event as CloudFront hands it to a function (JavaScript runtime 2.0):
    header names lower case, each value under "value"; CloudFront-Viewer-Country when the
    viewer's country is known."""
    headers = {"host": {"value": host}}
    if country is not None:
        headers["cloudfront-viewer-country"] = {"value": country}
    return {
        "version": "1.0",
        "context": {"distributionDomainName": host, "distributionId": "EDFDVBD6EXAMPLE",
                    "eventType": "viewer-request",
                    "requestId": "4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ=="},
        "viewer": {"ip": "198.51.100.11"},
        "request": {"method": method, "uri": uri,
                    "querystring": {k: {"value": v} for k, v in (query or {}).items()},
                    "headers": headers, "cookies": {}},
    }


class FunctionProcess:
    """The runtime as one long-lived node process, for an asyncio server (the edges): each
    call is one line out and one line back, one at a time, as CloudFront runs one event per
    invocation."""

    def __init__(self, function: Path, kvs: Path | None = None) -> None:
        self.args = command(function, kvs)
        self.proc: asyncio.subprocess.Process | None = None
        self.lock = asyncio.Lock()
        self.calls = 0

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)

    async def run(self, event: dict[str, Any]) -> dict[str, Any]:
        """{"result": ...} or {"error": ...}: what the function answered for this event."""
        async with self.lock:
            proc = self.proc
            assert proc is not None
            assert proc.stdin is not None
            assert proc.stdout is not None
            self.calls += 1
            proc.stdin.write((json.dumps({"id": self.calls, "event": event}) + "\n").encode())
            await proc.stdin.drain()
            line = await proc.stdout.readline()
        if not line:
            err = await proc.stderr.read() if proc.stderr else b""
            return {"error": f"the function runtime exited: {err.decode()[-300:]}"}
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def close(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
