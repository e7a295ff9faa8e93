"""The Title model: a release's languages, roles and side files, as one frozen value.

`--title FILE.yaml` and the side-file options (`--audio LANG=FILE`, `--described-audio`,
`--subtitles`, `--forced-subtitles`, `--captions`, `--language`, `--default-language`) both
resolve into a Title (packager/title/file.py); the pipeline takes it in PackageRequest and
turns it, with what the source itself carries, into tracks (packager/title/tracks.py).

Roles are the DASH Role scheme's values (urn:mpeg:dash:role:2011, ISO/IEC 23009-1 §5.8.5.5):
the same words in release.json, in the MPD, and as the HLS attributes they imply.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Audio roles.
MAIN = "main"  # the source's own (original) language
DUB = "dub"  # another language, dubbed
ALTERNATE = "alternate"  # another audio stream of the source in its main language
DESCRIPTION = "description"  # audio description for the blind
# Text roles.
SUBTITLE = "subtitle"
FORCED_SUBTITLE = "forced-subtitle"  # forced narratives: signs, foreign dialogue
CAPTION = "caption"  # SDH / closed captions: dialogue, music and sound

#: The side-file options, their title-file fields, and (kind, role) of what they add.
SIDE_OPTIONS: dict[str, tuple[str, str, str]] = {
    "--audio": ("audio", "audio", DUB),
    "--described-audio": ("described_audio", "audio", DESCRIPTION),
    "--subtitles": ("subtitles", "text", SUBTITLE),
    "--forced-subtitles": ("forced_subtitles", "text", FORCED_SUBTITLE),
    "--captions": ("captions", "text", CAPTION),
}


@dataclass(frozen=True)
class SideFile:
    """One extra track from a file beside the source: a dub, a description, a text track."""

    kind: str  # "audio" or "text"
    language: str  # normalised BCP 47 tag
    role: str  # an audio role (MAIN ... DESCRIPTION) or a text role (SUBTITLE ... CAPTION)
    path: Path
    #: Where the user said it, for errors: "--audio es-419=dub.mp4" or "title.yaml:7".
    origin: str


@dataclass(frozen=True)
class Title:
    """What a release carries beyond the source's own streams, and its language choices."""

    side_files: tuple[SideFile, ...] = ()
    #: The source's own audio language when its container tag is missing or wrong.
    language: str | None = None
    #: The language whose audio (and subtitles) players select by default.
    default_language: str | None = None
