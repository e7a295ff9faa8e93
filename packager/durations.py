"""Durations as people write them (`250ms`, `30s`, `5m`, `1h`, `7d`, `1h30m`): the one parser
of every duration in a config file or on a command line.

The units and the compound form are Go's `time.ParseDuration` and Prometheus's (`1h30m`,
largest unit first, each unit once), with days added as Prometheus has them (24 h). A bare
number is not a duration where the file or option never documented its unit: k6 reads it as
milliseconds and blackbox_exporter as seconds, so the reader would be guessing. Options whose
help has always said SECONDS (`--segment-duration 4`, `--manifest-max-age 30`) keep reading a
bare number as seconds (`bare_seconds`).
"""

from __future__ import annotations

import math
import re

from packager.errors import InputError

#: Seconds per unit, largest first: the order a compound duration must follow.
UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
UNITS = ", ".join(reversed(UNIT_SECONDS))  # "ms, s, m, h, d"
_PART = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h|d)")
_BARE = re.compile(r"[0-9]*\.?[0-9]+")


def duration_seconds(text: str, bare_seconds: bool = False) -> float | None:
    """Seconds of `text` (`250ms`, `2s`, `1.5h`, `1h30m`, `5 m`); None when it is not a
    duration. With `bare_seconds`, a plain number is seconds."""
    text = text.strip()
    if bare_seconds and _BARE.fullmatch(text):
        return float(text)
    total, end, last = 0.0, 0, -1
    order = list(UNIT_SECONDS)
    for match in _PART.finditer(text):
        rank = order.index(match.group(2))
        if match.start() != end or rank <= last:  # a gap, or units out of order / repeated
            return None
        total += float(match.group(1)) * UNIT_SECONDS[match.group(2)]
        end, last = match.end(), rank
    return total if end and end == len(text) and math.isfinite(total) else None


def parse_duration(text: object, what: str, *, bare_seconds: bool = False, minimum: float = 0.0,
                   allow_minimum: bool = False, maximum: float = math.inf,
                   whole: bool = False) -> float:
    """Seconds of a duration given for `what` (an option or a config field), or one InputError
    line saying what a duration looks like and what was given instead."""
    seconds = duration_seconds(text, bare_seconds) if isinstance(text, str) else None
    if seconds is None:
        shape = "a number of seconds or a duration" if bare_seconds else "a duration"
        raise InputError(f"{what}: must be {shape} with a unit ({UNITS}) like 250ms, 30s, 5m, "
                         f"1h or 7d, got {text!r}")
    if seconds < minimum or (seconds == minimum and not allow_minimum):
        bound = ">=" if allow_minimum else ">"
        raise InputError(f"{what}: must be {bound} {_say(minimum)}, got {text!r}")
    if seconds > maximum:
        raise InputError(f"{what}: must be at most {_say(maximum)}, got {text!r}")
    if whole and seconds != int(seconds):
        raise InputError(f"{what}: must be whole seconds, got {text!r} ({seconds:g} s)")
    return seconds


def _say(seconds: float) -> str:
    """A bound as people read it: `0`, `10m`, `1d`."""
    if seconds == 0:
        return "0"
    for unit, size in UNIT_SECONDS.items():
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
