"""A grant as release.json lists it (GrantSummary), and back: `rights check`, `rights report`
and `rights publish` read a packaged release's rights from there, resolved as packaged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from packager.errors import InputError
from packager.output.release import GrantSummary, Release
from packager.rights.instants import InstantError, format_instant, parse_instant
from packager.rights.model import Grant, Rights


def summarize(grant: Grant, renditions: Sequence[str], audio: Sequence[str],
              subtitles: Sequence[str], manifests: Mapping[str, str]) -> GrantSummary:
    return GrantSummary(
        id=grant.id, territories=list(grant.territories), start=format_instant(grant.start),
        end=format_instant(grant.end) if grant.end else None, max_height=grant.max_height,
        audio=list(audio), subtitles=list(subtitles), renditions=list(renditions),
        manifests=dict(manifests))


def release_rights(release: Release, where: str) -> Rights:
    """The rights a release was packaged with (no grants: it has none)."""
    grants = []
    for i, g in enumerate(release.rights):
        try:
            start = parse_instant(g.start)
            end = parse_instant(g.end) if g.end is not None else None
        except InstantError as exc:
            raise InputError(f"{where}: rights[{i}]: {exc}") from None
        grants.append(Grant(g.id, tuple(g.territories), start, end, g.max_height,
                            tuple(g.audio), tuple(g.subtitles)))
    return Rights(tuple(grants), where)
