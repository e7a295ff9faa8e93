"""The one private aiohttp seam the probe relies on, pinned: a new aiohttp that moves it fails
here, loudly and by name, instead of silently losing the TCP/TLS phase split.

probes/http.py `_PhaseConnector` overrides `TCPConnector._wrap_create_connection`, the only place
where the socket exists before the TLS handshake (aiohttp's TraceConfig reports connect and
handshake as one span). It mirrors aiohttp's body and reads the connector attributes below.
"""

from __future__ import annotations

import asyncio
import inspect

import aiohttp

from probes.http import _PhaseConnector
from probes.loop import StampedLoop, StampedSelector, arrival_clock, new_loop

SEAM = "aiohttp.TCPConnector._wrap_create_connection"


def test_the_overridden_method_has_the_signature_we_mirror() -> None:
    theirs = inspect.signature(aiohttp.TCPConnector._wrap_create_connection)
    ours = inspect.signature(_PhaseConnector._wrap_create_connection)
    assert list(theirs.parameters) == list(ours.parameters), (
        f"{SEAM} changed in aiohttp {aiohttp.__version__}: re-read connector.py and update "
        "probes/http.py _PhaseConnector")


def test_the_body_we_mirror_still_connects_the_same_way() -> None:
    source = inspect.getsource(aiohttp.TCPConnector._wrap_create_connection)
    for step in ("aiohappyeyeballs.start_connection(", "self._loop.create_connection(",
                 "sock=sock", "cert_errors", "ssl_errors"):
        assert step in source, f"{SEAM} no longer does {step!r} (aiohttp {aiohttp.__version__})"


def test_the_connector_attributes_we_read_exist() -> None:
    async def attributes() -> None:
        connector = _PhaseConnector()
        try:
            for name in ("_loop", "_local_addr_infos", "_happy_eyeballs_delay", "_interleave",
                         "_socket_factory", "_ssl_shutdown_timeout", "_factory"):
                assert hasattr(connector, name), f"aiohttp.TCPConnector lost {name}"
        finally:
            await connector.close()

    asyncio.run(attributes())


def test_the_probe_loop_stamps_arrivals_without_private_asyncio() -> None:
    loop = new_loop()
    try:
        assert isinstance(loop, StampedLoop)
        assert isinstance(loop.stamped_selector, StampedSelector)
        loop.run_until_complete(asyncio.sleep(0.001))
        clock = arrival_clock(loop)
        assert clock() == loop.stamped_selector.woke_ns
    finally:
        loop.close()


def test_the_resend_switch_the_fetcher_turns_off_still_exists() -> None:
    """probes/http.py sets ClientSession._retry_connection = False so a reset is a record, not
    a silent second request (issue 17, "every request is a record"). aiohttp has no public
    option for it; if the attribute goes, the resend is back and error rates shrink unseen."""
    source = inspect.getsource(aiohttp.ClientSession._request)
    assert "self._retry_connection and method in IDEMPOTENT_METHODS" in source, (
        f"aiohttp {aiohttp.__version__} resends differently: re-read client.py and update "
        "probes/http.py Fetcher")

    async def flag() -> None:
        session = aiohttp.ClientSession()
        try:
            assert session._retry_connection is True  # the default the Fetcher overrides
        finally:
            await session.close()

    asyncio.run(flag())
