"""Each grant's own multivariant playlist and MPD: the writers of every release (hls.py,
dash.py, hls_ts.py) given only the renditions the grant allows (packager/rights/allowance.py).

They sit beside the unrestricted manifests (`master.m3u8` -> `master.grant-<id>.m3u8`), so
every relative URI in them resolves as the unrestricted one's do, and the edge can route a
request for the release's manifest to the grant's by rewriting its last path segment alone.
The tracks are the same objects: same segments, same keys and PSSH boxes, same steering
(packager/output/steering.py rewrites every multivariant playlist and MPD of the release).

DEFAULT (RFC 8216 §4.3.4.1.1; DASH's first AdaptationSet) must name a rendition the grant
carries: when the title's default audio is not licensed, the first licensed audio in menu order
becomes the default, and a default subtitle follows the default audio's language.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from packager.encoding.thumbnails import ThumbnailTrack
from packager.output import dash, hls, hls_ts
from packager.output.release import GrantSummary, ReleaseFile, describe_file
from packager.output.segmenter import CmafTrack
from packager.output.trickplay_release import TrickPlay
from packager.rights.allowance import allows
from packager.rights.model import Grant, Rights
from packager.rights.summary import summarize

#: Audio roles a default may be chosen from, in order, and text roles (packager/title/tracks).
_DEFAULT_AUDIO_ROLES = ("main", "dub", "alternate", "")
_DEFAULT_TEXT_ROLES = ("forced-subtitle", "subtitle", "caption", "")


@dataclass(frozen=True)
class GrantManifests:
    files: list[ReleaseFile]
    grants: list[GrantSummary]


def grant_manifest(path: str, grant_id: str) -> str:
    """`master.m3u8` -> `master.grant-jp.m3u8` (same directory: relative URIs still hold)."""
    p = PurePosixPath(path)
    return str(p.with_name(f"{p.stem}.grant-{grant_id}{p.suffix}"))


def write_grant_manifests(build: Path, rights: Rights, tracks: Sequence[CmafTrack],
                          trick: TrickPlay, images: Sequence[ThumbnailTrack],
                          formats: Sequence[str], segment_duration: float) -> GrantManifests:
    """Per grant, its multivariant playlist (with HLS) and MPD (with DASH) of CMAF tracks."""
    files: list[ReleaseFile] = []
    grants: list[GrantSummary] = []
    for grant in rights.grants:
        kept = with_defaults([t for t in tracks if allows(grant, t.rendition)], tracks)
        sheets = [i for i in images if _allows_sheets(grant, i)]
        owners = {t.rendition.id for t in kept} | {i.directory for i in sheets}
        manifests: dict[str, str] = {}
        if "hls" in formats:
            playlist = hls.multivariant_playlist(kept, trick.stream_infs_of(owners))
            manifests["hls"] = _write(build, grant_manifest(playlist.path, grant.id),
                                      playlist.text)
        if "dash" in formats:
            manifests["dash"] = _write(build, grant_manifest(dash.MPD_NAME, grant.id),
                                       dash.mpd(list(kept), segment_duration, sheets))
        files += [describe_file(build, path, "multivariant" if kind == "hls" else "mpd", None)
                  for kind, path in manifests.items()]
        grants.append(summarize(
            grant, [t.rendition.id for t in kept] + [i.directory for i in sheets],
            _languages(kept, "audio"), _languages(kept, "text"), manifests))
    return GrantManifests(files, grants)


def write_ts_grant_manifests(build: Path, rights: Rights,
                             outputs: Sequence[hls_ts.TsRendition], trick: TrickPlay,
                             images: Sequence[ThumbnailTrack],
                             audio_language: str | None) -> GrantManifests:
    """Per grant, the multivariant playlist of the MPEG-TS renditions it allows (each carries
    the release's one audio language, which check_rights held against the grant)."""
    files: list[ReleaseFile] = []
    grants: list[GrantSummary] = []
    for grant in rights.grants:
        kept = [ts for ts in outputs if allows(grant, ts.rendition)]
        sheets = [i for i in images if _allows_sheets(grant, i)]
        playlist = hls_ts.multivariant_playlist(
            kept, trick.stream_infs_of({i.directory for i in sheets}))
        path = _write(build, grant_manifest(playlist.path, grant.id), playlist.text)
        files.append(describe_file(build, path, "multivariant", None))
        grants.append(summarize(
            grant, [ts.rendition.id for ts in kept] + [i.directory for i in sheets],
            [audio_language] if audio_language else [], [], {"hls": path}))
    return GrantManifests(files, grants)


def with_defaults(kept: list[CmafTrack], everything: Sequence[CmafTrack]) -> list[CmafTrack]:
    """The grant's tracks with a valid DEFAULT (module docstring)."""
    audios = [t for t in kept if t.rendition.kind == "audio"]
    if not audios or any(a.rendition.default for a in audios):
        return kept
    pick = min(audios, key=lambda a: _rank(a, _DEFAULT_AUDIO_ROLES))
    language = pick.rendition.language
    texts = [t for t in kept if t.rendition.kind == "text"]
    had_text_default = any(t.rendition.default for t in everything if t.rendition.kind == "text")
    candidates = [t for t in texts if t.rendition.language == language]
    text_pick = (min(candidates, key=lambda t: _rank(t, _DEFAULT_TEXT_ROLES))
                 if had_text_default and candidates else None)
    out = []
    for track in kept:
        default = track is pick or track is text_pick
        out.append(track if default == track.rendition.default
                   else replace(track, rendition=replace(track.rendition, default=default)))
    return out


def _rank(track: CmafTrack, roles: tuple[str, ...]) -> int:
    role = track.rendition.role
    return roles.index(role) if role in roles else len(roles)


def _allows_sheets(grant: Grant, image: ThumbnailTrack) -> bool:
    return grant.max_height is None or image.height <= grant.max_height


def _languages(tracks: Sequence[CmafTrack], kind: str) -> list[str]:
    return list(dict.fromkeys(t.rendition.language for t in tracks if t.rendition.kind == kind))


def _write(build: Path, path: str, text: str) -> str:
    (build / path).write_text(text)
    return path
