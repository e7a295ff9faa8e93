"""Times and address ranges as people type them on a command line, for signing policies."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime

from packager.errors import InputError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(text: str, now: int) -> int:
    """Epoch seconds from '1767225600', '+12h' (relative to now) or an ISO-8601 time
    (UTC when no offset is given)."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    relative = re.fullmatch(r"\+(\d+)([smhd]?)", text)
    if relative:
        return now + int(relative.group(1)) * _UNITS[relative.group(2) or "s"]
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
