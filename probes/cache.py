"""CDN cache verdicts: CloudFront, Cloudflare, Fastly, Akamai and RFC 9211 headers as one word."""

from __future__ import annotations

from collections.abc import Mapping

#: Response headers that reveal a cache verdict, kept verbatim in every record.
CACHE_HEADERS = (
    "x-cache", "cf-cache-status", "cache-status", "x-cache-status", "x-proxy-cache",
    "cdn-cache", "x-served-by", "x-cache-hits", "age", "via",
)


def cache_verdict(headers: Mapping[str, str]) -> str | None:
    """Normalise the CDN cache headers to one word; None when the response carries none.

    Fastly/Varnish chain X-Cache values ("MISS, HIT"): the last is the edge nearest the client.
    RFC 9211 Cache-Status uses `hit` / `fwd=miss|stale|...` parameters.
    """
    cf = headers.get("cf-cache-status")
    if cf:
        return _word(cf)
    status = headers.get("cache-status")
    if status:
        last = status.split(",")[-1].lower()
        if "; hit" in last or ";hit" in last:
            return "hit"
        if "fwd=stale" in last:
            return "stale"
        if "fwd=" in last:
            return "miss"
    for name in ("x-cache", "x-cache-status", "x-proxy-cache", "cdn-cache"):
        value = headers.get(name)
        if value:
            return _word(value.split(",")[-1])
    age = headers.get("age")
    if age is not None:
        return "hit" if age.strip().isdigit() and int(age) > 0 else "unknown"
    return None


def _word(value: str) -> str:
    v = value.strip().lower()
    for word in ("revalidated", "expired", "stale", "bypass", "dynamic", "miss", "hit"):
        if word in v:
            return word
    return "unknown"
