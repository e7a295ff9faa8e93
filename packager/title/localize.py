"""Checking a title's side files against the source before anything is encoded, and the
release's text renditions: what the `package` job needs to know about its languages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packager.encoding.ladder import Rendition, track_rendition
from packager.encoding.media import MediaInfo, probe
from packager.errors import InputError
from packager.title.model import SideFile, Title
from packager.title.tracks import TitleTrack, plan_tracks

if TYPE_CHECKING:
    from packager.text.cues import TextTrack


@dataclass(frozen=True)
class Localized:
    """Every audio and text track of the release, and the side text files already read."""

    tracks: list[TitleTrack]
    texts: dict[str, TextTrack]  # by track id


def localize(title: Title, media: MediaInfo, segment_duration: float) -> Localized:
    """Probe each side audio file, read each side text file: a missing, empty, silent,
    mis-timed or undecodable one is an InputError naming it, raised before any work."""
    side_media: dict[Path, MediaInfo] = {}
    for side in title.side_files:
        if side.kind == "audio":
            info = probe(side.path)
            if not info.audio:
                raise InputError(f"{side.path}: has no audio stream (from {side.origin})")
            check_duration(side, info, media, segment_duration)
            side_media[side.path] = info
    tracks = plan_tracks(title, media, side_media)
    if not any(t.kind == "text" and t.side for t in tracks):
        return Localized(tracks, {})
    from packager.text.read import read_text_file  # text modules for titles with text only
    texts = {t.id: read_text_file(t.file) for t in tracks if t.kind == "text" and t.side}
    return Localized(tracks, texts)


def check_duration(side: SideFile, info: MediaInfo, media: MediaInfo,
                   segment_duration: float) -> None:
    """A dub or description is cut on the video's segment starts: one that is longer or
    shorter than the video by more than a segment is another cut of the film."""
    if abs(info.duration - media.duration) > segment_duration:
        raise InputError(
            f"{side.path}: lasts {info.duration:.2f} s but the video {media.path.name} "
            f"{media.duration:.2f} s, more than one segment ({segment_duration:g} s) apart "
            f"(from {side.origin})")


def text_renditions(tracks: list[TitleTrack]) -> list[Rendition]:
    """One rendition per text track: WebVTT in CMAF (wvtt) and as HLS WebVTT segments."""
    return [track_rendition(t, id=t.id, codec="wvtt", bitrate=0)
            for t in tracks if t.kind == "text"]
