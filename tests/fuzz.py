"""Fuzzed HTTP requests for our servers (steering, exporter): raw bytes on the wire, sent on
keep-alive connections, every value carrying a marker that no response may echo.

A seeded generator gives the same requests every run (bounded time). It mixes the parameters
a server expects with junk: unknown and huge values, broken percent escapes, raw non-ASCII
bytes, quotes and markup, NaN and infinities, and headers with control characters, odd
names and long values.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

MARKER = "rfl3ct"
JUNK = ["alpha", "beta", "eu", "1", "0", "-1", "1e308", "-1e308", "nan", "inf", "-inf",
        "9" * 400, '"alpha,beta"', "alpha,,beta", ",", '"', "'", "<script>alert(1)</script>",
        "%ZZ", "%", "%u0041", "%00", "%0d%0aSet-Cookie:%20x=1", "\u00e9t\u00e9", "\U0001f600",
        "a" * 3000, "beta.eu", "BETA", " alpha ", "1.5e6", "0x10", "__proto__", "{}", "[]",
        "../../etc/passwd", "http://169.254.169.254/", "//example.com/x", "@example.com"]
METHODS = ["GET"] * 12 + ["HEAD", "POST", "OPTIONS", "PUT", "DELETE", "G\u00c9T", "BREW"]


def fuzzed(rng: random.Random, i: int, paths: Sequence[str], keys: Sequence[str],
           headers: Mapping[str, Sequence[str]] | None = None,
           values: Sequence[str] = ()) -> bytes:
    """One request, as raw bytes on the wire: a path of `paths` (with or without a query),
    query keys mostly of `keys`
    with junk values (or one of `values`, the marker appended), each header of `headers` on
    most requests with one of its values (sometimes marked), and a few others."""
    def junk() -> str:
        if values and rng.random() < 0.3:
            return rng.choice(values)  # a value the server knows: the request goes deeper
        value = rng.choice(JUNK)
        value = value + MARKER + str(i) if rng.random() < 0.7 else MARKER + value
        # Clients percent-encode; some do not, and some encode what they should not.
        return quote(value, safe=rng.choice(["", ",\"", "%,\"<>"])) if rng.random() < 0.8 \
            else value
    params = []
    for _ in range(rng.randrange(0, 7)):
        key = rng.choice(keys) if rng.random() < 0.8 else junk()
        sep = rng.choice(["=", "=", "=", "", "=="])
        params.append(f"{key}{sep}{junk()}")
    query = rng.choice(["&", "&", ";", "&&"]).join(params)
    path = rng.choice(paths)  # may hold a query of its own, which the fuzz extends
    target = path + (("&" if "?" in path else "?") + query if query or rng.random() < 0.5
                     else "")
    lines = [f"Host: 127.0.0.1{MARKER}"]
    for name, choices in (headers or {}).items():
        if rng.random() < 0.8:
            value = rng.choice(choices) + (MARKER if rng.random() < 0.3 else "")
            lines.append(f"{rng.choice([name, name.lower()])}: {value}")
    for _ in range(rng.randrange(0, 3)):
        name = rng.choice(["X-Forwarded-For", "Referer", "User-Agent", "Accept",
                           f"X-{MARKER}", "Origin", "Cookie"])
        lines.append(f"{name}: {junk()}")
    if rng.random() < 0.05:  # a header line that is not one
        lines.append(f"{MARKER} no colon here")
    method = rng.choice(METHODS)
    head = f"{method} {target} HTTP/1.1\r\n" + "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("utf-8", "surrogatepass")


async def exchange(url: str, requests: list[bytes], timeout: float = 20.0
                   ) -> list[tuple[int, bytes]]:
    """Send each request on a keep-alive connection (a new one after the server closes);
    returns (status, whole response) per request. A request left unanswered for `timeout`
    seconds fails the test, naming it."""
    try:
        return await _exchange(url, requests, timeout)
    except TimeoutError:
        raise AssertionError(f"no answer in {timeout} s") from None


async def _exchange(url: str, requests: list[bytes], timeout: float
                    ) -> list[tuple[int, bytes]]:
    host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    out: list[tuple[int, bytes]] = []
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    for raw in requests:
        if writer is None:
            reader, writer = await asyncio.open_connection(host, int(port))
        assert reader is not None
        writer.write(raw)
        await writer.drain()
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        except TimeoutError:
            raise AssertionError(f"no answer in {timeout} s to {raw[:300]!r}") from None
        status = int(head.split(b" ", 2)[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in
                  (line.partition(b":") for line in head.split(b"\r\n")[1:] if line)}
        length = int(fields.get(b"content-length", b"0"))
        body = b"" if raw.startswith(b"HEAD ") else await asyncio.wait_for(
            reader.readexactly(length), timeout)
        out.append((status, head + body))
        if fields.get(b"connection", b"").lower() == b"close" or status >= 400:
            writer.close()
            await writer.wait_closed()
            writer = None
    if writer is not None:
        writer.close()
        await writer.wait_closed()
    return out


def reflected(answers: list[tuple[int, bytes]]) -> list[bytes]:
    """The responses that echo a marked value back (header injection, reflected markup)."""
    return [raw for _, raw in answers if MARKER.encode() in raw.lower()]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")
