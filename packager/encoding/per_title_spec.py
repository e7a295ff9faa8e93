"""A per-title ladder as the user asks for it: the `per_title:` section of a ladder file
(`--ladder per-title`: the defaults)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from packager.encoding.rate_control import ENCODERS, parse_bitrate
from packager.yamlfile import LineMapping, Reader

DEFAULT_TARGETS = (95.0, 93.0, 88.0, 80.0, 70.0)


@dataclass(frozen=True)
class PerTitleSpec:
    """The `per_title:` section of a ladder file (defaults: `--ladder per-title`)."""

    codecs: tuple[str, ...] = ("h264",)
    targets: tuple[float, ...] = DEFAULT_TARGETS  # VMAF, best first
    resolutions: tuple[int, ...] = ()  # candidate heights; empty: DEFAULT_RESOLUTIONS
    min_bitrate: int = 100_000
    max_bitrate: int = 8_000_000
    max_rungs: int = 6
    #: The low-bandwidth floor for 2G/3G-class links: the bottom rung's video bitrate is at
    #: most this (a rung is added when the targets leave none that cheap); 0: none.
    floor_bitrate: int = 200_000


def check_targets(targets: Sequence[float]) -> str | None:
    """What is wrong with a list of VMAF targets, or None."""
    if not targets:
        return "must list at least one VMAF target"
    if any(not 0 <= t <= 100 for t in targets):
        return f"VMAF targets must be within 0-100, got {list(targets)}"
    if any(b >= a for a, b in itertools.pairwise(targets)):
        return f"VMAF targets must be strictly descending, got {list(targets)}"
    return None


def parse_per_title(r: Reader, m: LineMapping) -> PerTitleSpec:
    """The `per_title:` section: codecs, VMAF targets, candidate heights, bitrate limits,
    rung count and the low-bandwidth floor (0 for none)."""
    name = "per_title"
    r.unknown(m, name, {"codecs", "targets", "resolutions", "min_bitrate", "max_bitrate",
                        "max_rungs", "floor_bitrate"})
    defaults = PerTitleSpec()
    codecs = _scalars(r, m, "codecs", name, str, defaults.codecs)
    for codec in codecs:
        if codec not in ENCODERS:
            raise r.fail(m, "codecs", f"{name}.codecs",
                         f"unknown codec {codec!r} (use {', '.join(ENCODERS)})")
    targets = tuple(float(t) for t in _scalars(r, m, "targets", name, float, defaults.targets))
    if (problem := check_targets(targets)) is not None:
        raise r.fail(m, "targets", f"{name}.targets", problem)
    heights = _scalars(r, m, "resolutions", name, int, ())
    if any(not 64 <= h <= 4320 for h in heights):
        raise r.fail(m, "resolutions", f"{name}.resolutions",
                     f"heights must be within 64-4320, got {list(heights)}")
    limits = {}
    for key in ("min_bitrate", "max_bitrate", "floor_bitrate"):
        value = m.get(key, getattr(defaults, key))
        try:
            limits[key] = 0 if key == "floor_bitrate" and value in (0, "0") else \
                parse_bitrate(value)
        except ValueError as exc:
            raise r.fail(m, key, f"{name}.{key}", str(exc)) from None
    if limits["min_bitrate"] > limits["max_bitrate"]:
        raise r.fail(m, "min_bitrate", f"{name}.min_bitrate", "is above max_bitrate")
    if limits["floor_bitrate"] and not (
            limits["min_bitrate"] <= limits["floor_bitrate"] <= limits["max_bitrate"]):
        raise r.fail(m, "floor_bitrate", f"{name}.floor_bitrate",
                     "must be within min_bitrate..max_bitrate (or 0: no floor rung)")
    return PerTitleSpec(
        codecs=tuple(dict.fromkeys(codecs)), targets=targets, resolutions=tuple(heights),
        max_rungs=int(r.number(m, "max_rungs", name, defaults.max_rungs, 1, 20, integer=True)),
        **limits)


def _scalars(r: Reader, m: LineMapping, key: str, name: str, kind: type,
             default: tuple[Any, ...]) -> tuple[Any, ...]:
    """A list of strings or numbers (a bare scalar is a list of one)."""
    if key not in m:
        return default
    value = m[key]
    items = value if isinstance(value, list) else [value]
    wanted = (int | float) if kind is float else kind
    if not items or any(isinstance(v, bool) or not isinstance(v, wanted) for v in items):
        what = {str: "names", int: "integers", float: "numbers"}[kind]
        raise r.fail(m, key, f"{name}.{key}", f"must be a non-empty list of {what}, got {value!r}")
    return tuple(items)
