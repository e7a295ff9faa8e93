"""A per-title ladder as the user asks for it: the `per_title:` section of a ladder file
(`--ladder per-title`: the defaults)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_TARGETS = (95.0, 93.0, 88.0, 80.0, 70.0)


@dataclass(frozen=True)
class PerTitleSpec:
    """The `per_title:` section of a ladder file (defaults: `--ladder per-title`)."""

    #: Empty: the ladder's codecs (`--codec`, `codecs:`; h264).
    codecs: tuple[str, ...] = ()
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
