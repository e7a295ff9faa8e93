"""moto_server for the local world, routing the rest-json paths that botocore now uses for
services moto still maps only at `/` (Athena since botocore 1.44).

botocore 1.44 moved Athena's API model to the rest-json protocol (`POST /query-executions`,
`GET /query-executions/{id}/results`). moto 5.2.6 already parses requests with botocore's model
(its service router matches method and path against it), but its URL map for Athena still has the
single JSON 1.1 endpoint `/`, so every rest-json call met Flask's 404 before reaching moto's
Athena. Real Athena answers both, so the product is right and the stand-in's URL map is behind:
this module adds one catch-all route per such service and then runs moto's own server.
Run as `python -m testbed.moto_server -H HOST -p PORT` (moto's own options); with
`--exit-with-stdin` it also exits when its stdin closes: the demo and the tests start it in a
process group of its own (packager/tools.spawn), so a parent killed outright (SIGKILL) would
otherwise leave it serving forever.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading

#: Services whose moto URL map lacks their rest-json paths: (urls module, response class).
REST_JSON_ROUTES = {"athena": ("moto.athena.urls", "moto.athena.responses.AthenaResponse")}
#: Every path of the service's endpoint; moto's router finds the operation from the model.
CATCH_ALL = "{0}/.*$"  # moto turns exactly "/.*" into Flask's "/<path:route>"


def add_rest_json_routes() -> None:
    """Register the catch-all before moto builds its per-service Flask apps (lazily, on the
    first request to each service)."""
    for urls_module, response in REST_JSON_ROUTES.values():
        urls = importlib.import_module(urls_module)
        module, _, name = response.rpartition(".")
        handler = getattr(importlib.import_module(module), name).dispatch
        urls.url_paths.setdefault(CATCH_ALL, handler)


EXIT_WITH_STDIN = "--exit-with-stdin"


def exit_when_stdin_closes() -> None:
    """Our parent holds our stdin open for as long as it lives."""
    def watch() -> None:
        while sys.stdin.buffer.read(65536):
            pass
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def main(argv: list[str]) -> None:
    from moto import server  # noqa: PLC0415 (imported after nothing else: moto is heavy)

    if EXIT_WITH_STDIN in argv:
        argv = [a for a in argv if a != EXIT_WITH_STDIN]
        exit_when_stdin_closes()
    add_rest_json_routes()
    server.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
