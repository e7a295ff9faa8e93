"""What a grant lets a viewer fetch of a release: the renditions its manifests list.

Video up to the grant's max_height; audio and text in its licensed languages (all roles of a
language: a licensed English includes its description and captions); thumbnails no taller than
max_height. One rule, used to check a title's rights before anything is encoded and to write
each grant's manifests; release.json records what it allowed, which is what the edge enforces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from packager.errors import InputError
from packager.rights.model import Grant, Rights


class Track(Protocol):
    """A rendition as the ladder plans it or release.json summarises it."""

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> str: ...  # video, audio, text

    @property
    def height(self) -> int: ...

    @property
    def language(self) -> str: ...


def allows(grant: Grant, track: Track) -> bool:
    if track.kind == "video":
        return grant.max_height is None or track.height <= grant.max_height
    if track.kind == "audio":
        return grant.audio is None or track.language in grant.audio
    if track.kind == "text":
        return grant.subtitles is None or track.language in grant.subtitles
    return grant.max_height is None or track.height <= grant.max_height  # thumbnails


T = TypeVar("T", bound=Track)


def allowed(grant: Grant, tracks: Sequence[T]) -> list[T]:
    return [t for t in tracks if allows(grant, t)]


def check_rights(rights: Rights, tracks: Sequence[Track]) -> None:
    """Each grant against what the release will hold, before any of it is made: a max_height
    under every video rung, or a language the title does not have, is a mistake in the rights
    (or the wrong title), named by its file, line and field."""
    heights = sorted({t.height for t in tracks if t.kind == "video"})
    languages = {kind: sorted({t.language for t in tracks if t.kind == kind})
                 for kind in ("audio", "text")}
    for grant in rights.grants:
        if grant.max_height is not None and heights and grant.max_height < heights[0]:
            raise InputError(f"{grant.where('max_height')}: {grant.max_height} is below every "
                             f"video rendition (the lowest is {heights[0]}p)")
        for field_name, kind, tags in (("audio", "audio", grant.audio),
                                       ("subtitles", "text", grant.subtitles)):
            for tag in tags or ():
                if tag not in languages[kind]:
                    has = ", ".join(languages[kind]) or "none"
                    raise InputError(f"{grant.where(field_name)}: the title has no {tag} "
                                     f"{kind} (it has: {has})")
