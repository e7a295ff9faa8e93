"""Our HTTP servers' common ground (the exporter, the steering server): where they listen, and
error pages that never echo the request.

aiohttp answers a malformed request (a header line without a colon, a bad request line) with
the parser's message, which quotes the offending bytes: a server of ours would reflect what a
client sent. `QuietServer` is aiohttp's low-level server with that page replaced by a fixed
text that depends on the status only.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from packager.errors import InputError

log = logging.getLogger(__name__)

TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Listen:
    host: str
    port: int  # 0: any free port


def parse_listen(text: str, example: str) -> Listen:
    """`--listen HOST:PORT` ([::1]:PORT for IPv6); a mistake is one line naming `example`."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InputError(f"--listen {text!r}: expected HOST:PORT, like {example}")
    return Listen(host.strip("[]"), int(port))


def fixed(status: int, headers: dict[str, str] | None = None) -> web.Response:
    """A plain answer whose text depends on the status only."""
    return web.Response(status=status, text=f"{status} {HTTPStatus(status).phrase}\n",
                        headers={"Content-Type": TEXT, **(headers or {})})


class _FixedErrors(RequestHandler):
    """aiohttp's protocol handler with error pages that never echo the request."""

    def __init__(self, headers: dict[str, str], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.headers = headers

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        log.debug("protocol error %d from %s: %s", status, request.remote, exc)
        response = fixed(status, self.headers)
        response.force_close()
        return response


class QuietServer(Server):
    """aiohttp's low-level Server (one handler for every request) with fixed error pages,
    which carry `error_headers` as the server's other answers do."""

    def __init__(self, handler: Any, *, error_headers: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.error_headers = dict(error_headers or {})

    def __call__(self) -> RequestHandler:
        return _FixedErrors(self.error_headers, self, loop=self._loop, **self._kwargs)


async def start_quiet(handler: Any, host: str, port: int, error_headers: dict[str, str], *,
                      backlog: int, shutdown_timeout: float) -> tuple[web.ServerRunner, str]:
    """A QuietServer listening on host:port, its runner (`cleanup()` stops it) and its URL. An
    address that cannot be listened on (in use, not ours) is one line of bad input."""
    server = QuietServer(handler, error_headers=error_headers, access_log=None,
                         keepalive_timeout=75.0)
    runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=backlog, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise InputError(f"cannot listen on {host}:{port} ({reason.lower()})") from None
    bound, bound_port = runner.addresses[0][:2]
    url = f"http://{bound}:{bound_port}" if ":" not in bound else f"http://[{bound}]:{bound_port}"
    return runner, url
