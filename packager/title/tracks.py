"""From a Title and the probed files to the release's audio and text tracks: language, role,
default, and the file and stream each is read from.

The source's first audio stream is its own language (role main; `--language` corrects its tag);
its other audio streams are dubs (another language), descriptions (disposition
visual_impaired) or alternates (same language); its text subtitle streams are subtitles,
forced subtitles (disposition forced) or captions (hearing_impaired). Side files add dubs,
descriptions and text tracks. Each (kind, language, role) appears once: a side file that
repeats one is refused; a source stream that repeats one is left out with a warning.

Defaults follow Shaka Packager's `--default_language` (the oracle of the tests): the default
audio is the first track in the default language (else the source's own); a text track is
DEFAULT only when `--default-language` is given: in that language, its forced narratives
when it has them (what a viewer listening in that language needs on screen), else its
subtitles, else its captions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from packager.encoding.media import AudioStream, MediaInfo, SubtitleStream
from packager.errors import InputError
from packager.title.languages import UNDETERMINED, own_name
from packager.title.model import (
    ALTERNATE,
    CAPTION,
    DESCRIPTION,
    DUB,
    FORCED_SUBTITLE,
    MAIN,
    SUBTITLE,
    Title,
)

log = logging.getLogger(__name__)

#: What a role adds to the language's own name in a player's menu (HLS NAME must be unique
#: in its group; a viewer tells the English description from the English original by it).
ROLE_MARKS = {DESCRIPTION: "AD", ALTERNATE: "alt", FORCED_SUBTITLE: "forced", CAPTION: "SDH"}
#: Which audio role is preferred as the default among tracks of the default language.
_DEFAULT_AUDIO_ORDER = (MAIN, DUB, ALTERNATE)
_DEFAULT_TEXT_ORDER = (FORCED_SUBTITLE, SUBTITLE, CAPTION)


@dataclass(frozen=True)
class TitleTrack:
    """One audio or text track of the release, before it is encoded or converted."""

    kind: str  # "audio" or "text"
    language: str
    role: str
    file: Path  # the source, or the side file the track comes from
    #: Audio: the stream of `file` (a side file's first audio stream).
    audio: AudioStream | None = None
    #: Text embedded in the source: its subtitle stream (None: `file` is a text file).
    subtitle: SubtitleStream | None = None
    default: bool = False
    side: bool = False  # from a side file (its own duration is checked against the video)

    @property
    def forced(self) -> bool:
        return self.role == FORCED_SUBTITLE

    @property
    def name(self) -> str:
        """The menu name: the language's own name, and the role's mark where it has one."""
        mark = ROLE_MARKS.get(self.role)
        return f"{own_name(self.language)} ({mark})" if mark else own_name(self.language)

    @property
    def id(self) -> str:
        """The track's directory name: kind, language, role where it is not the usual one."""
        usual = MAIN if self.kind == "audio" else SUBTITLE
        parts = [self.kind] + ([self.language] if self.language != UNDETERMINED else [])
        parts += [self.role] if self.role != usual else []
        return "_".join(parts)


def plan_tracks(title: Title, media: MediaInfo,
                side_media: Mapping[Path, MediaInfo] | None = None) -> list[TitleTrack]:
    """Every audio and text track of the release, in menu order: the source's streams, then
    the side files in the order given. `side_media` holds the probe of each side audio file."""
    tracks: list[TitleTrack] = []
    seen: set[tuple[str, str, str]] = set()

    def add(track: TitleTrack, origin: str) -> None:
        key = (track.kind, track.language, track.role)
        if key in seen:
            if track.side:
                raise InputError(f"{origin}: {track.language} {track.role} {track.kind} is "
                                 f"already in the release (a stream of {media.path})")
            log.warning("%s: leaving out stream %s, a second %s %s %s track", media.path,
                        origin, track.language, track.role, track.kind)
            return
        seen.add(key)
        tracks.append(track)

    main_language = UNDETERMINED
    for i, stream in enumerate(media.audio):
        language = stream.language
        if i == 0:
            language = title.language or language
            main_language = language
        add(TitleTrack("audio", language, _audio_role(i, stream, language, main_language),
                       media.path, audio=stream), f"#{stream.index}")
    for sub in media.subtitles:
        role = FORCED_SUBTITLE if sub.forced else CAPTION if sub.hearing_impaired else SUBTITLE
        add(TitleTrack("text", sub.language, role, media.path, subtitle=sub), f"#{sub.index}")
    for side in title.side_files:
        audio = None
        if side.kind == "audio":
            info = (side_media or {}).get(side.path)
            if info is None or not info.audio:
                raise InputError(f"{side.path}: has no audio stream (from {side.origin})")
            audio = info.audio[0]
        add(TitleTrack(side.kind, side.language, side.role, side.path, audio=audio, side=True),
            side.origin)
    return _with_defaults(tracks, title.default_language or main_language,
                          title.default_language is not None)


def _audio_role(i: int, stream: AudioStream, language: str, main_language: str) -> str:
    if stream.visual_impaired:
        return DESCRIPTION
    if i == 0:
        return MAIN
    return ALTERNATE if language == main_language else DUB


def _with_defaults(tracks: list[TitleTrack], language: str, text_too: bool) -> list[TitleTrack]:
    audio = [t for t in tracks if t.kind == "audio"]
    chosen: set[int] = set()
    candidates = [t for t in audio if t.language == language and t.role in _DEFAULT_AUDIO_ORDER]
    if candidates:
        best = min(candidates, key=lambda t: _DEFAULT_AUDIO_ORDER.index(t.role))
        chosen.add(id(best))
    elif audio:
        chosen.add(id(audio[0]))
    if text_too:
        text = [t for t in tracks if t.kind == "text" and t.language == language]
        if text:
            chosen.add(id(min(text, key=lambda t: _DEFAULT_TEXT_ORDER.index(t.role))))
    return [replace(t, default=True) if id(t) in chosen else t for t in tracks]
