"""Times and address ranges as people type them on a command line, for signing policies."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

from packager.durations import UNITS, duration_seconds
from packager.errors import InputError


def parse_time(text: str, now: int) -> int:
    """Epoch seconds from '1767225600', '+12h', '+1d12h' or '+3600' (relative to now: a
    duration of packager/durations.py, whole seconds, a bare number seconds) or an ISO-8601
    time (UTC when no offset is given)."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if text.startswith("+"):
        seconds = duration_seconds(text[1:], bare_seconds=True)
        if seconds is not None and seconds == int(seconds):
            return now + int(seconds)
        raise InputError(f"{text!r} is not a time: +DURATION takes whole seconds in {UNITS} "
                         "(+90m, +12h, +7d)")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(
            f"{text!r} is not a time: use epoch seconds, +DURATION (+90m, +12h) or ISO-8601"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def parse_cidr(text: str) -> str:
    """A viewer address range as CloudFront wants it: IPv4 or IPv6 CIDR, host bits clear."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as exc:
        raise InputError(f"{text!r} is not an IP address range (CIDR like 192.0.2.0/24)") from exc
    return str(network)
