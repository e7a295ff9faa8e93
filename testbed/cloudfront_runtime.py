"""CloudFront Functions run locally: the function's own code in node (cloudfront_runtime.mjs),
with its KeyValueStore loaded from an import-format file and, when asked, a fixed clock.

The tests and the demo's edges run the code that `rights publish` publishes, byte for byte,
never a re-implementation of it.
"""

from __future__ import annotations

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
