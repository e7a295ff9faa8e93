"""Instants of a rights window: RFC 3339 date-times, held in UTC to the millisecond.

A window's edges are compared with the edge's clock (`Date.now()`, milliseconds since the
epoch), so an instant finer than a millisecond could not be told apart there: it is refused
rather than rounded. A time without an offset names no instant (whose midnight?): refused too.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

#: RFC 3339 §5.6 date-time (a space for the "T" is allowed, §5.6 NOTE).
_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
EXAMPLE = "2025-03-01T00:00:00Z"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class InstantError(ValueError):
    """Not an RFC 3339 date-time with an offset, or finer than a millisecond."""


def parse_instant(value: object) -> datetime:
    """An RFC 3339 date-time (a string, or the datetime YAML made of an unquoted one) in UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        raise InstantError(f"{value} has no time of day and offset (like {EXAMPLE})")
    elif isinstance(value, str) and _DATE_TIME.match(value.strip()):
        text = value.strip().replace("z", "Z").replace("t", "T")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise InstantError(f"{value!r} is not a valid date-time ({exc})") from None
    else:
        raise InstantError(f"{value!r} is not an RFC 3339 date-time (like {EXAMPLE})")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InstantError(f"{value} has no offset: add Z for UTC (like {EXAMPLE})")
    if moment.microsecond % 1000:
        raise InstantError(f"{value} is finer than a millisecond")
    return moment.astimezone(UTC)


def format_instant(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, milliseconds only when there are some."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond // 1000:03d}"
    return text + "Z"


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since 1970-01-01T00:00:00Z, as JavaScript's Date.now() counts them."""
    delta = moment.astimezone(UTC) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000

