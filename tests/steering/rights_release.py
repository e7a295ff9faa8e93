"""A release with rights and no media to speak of: renditions of every kind in directories
of small files (each naming itself), its grants' manifests beside its own, release.json
written as the packager writes it. What the edge tests and `rights publish`'s need, in
milliseconds."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from packager.output.grants import grant_manifest
from packager.output.release import (
    GrantSummary,
    Release,
    RenditionSummary,
    describe_file,
    finish_release,
)
from packager.rights.allowance import allowed
from packager.rights.file import load_rights
from packager.rights.instants import format_instant
from packager.rights.model import Rights
from packager.rights.summary import summarize

RIGHTS = """\
rights:
  - id: jp-hd
    territories: [JP, KR]
    start: 2025-03-01T00:00:00Z
    end: 2026-03-01T00:00:00Z
    max_height: 720
    audio: [ja, en]
    subtitles: [ja]
  - id: latam-sd
    territories: [latam]
    start: 2025-06-01T12:30:00.500Z
    max_height: 480
    audio: [es-419]
    subtitles: []
  - id: jp-late
    territories: [JP]
    start: 2026-03-01T00:00:00Z
    end: 2027-01-01T00:00:00Z
"""
REGIONS = {"latam": ("BR", "MX")}


def rendition(rid: str, kind: str, height: int = 0, language: str = "und") -> RenditionSummary:
    return RenditionSummary(rid, kind, "c", 1, 1, 0, height, "", 0, 0, 2, 4.0, language)


RENDITIONS = [
    rendition("video_1080p", "video", 1080), rendition("video_720p", "video", 720),
    rendition("video_480p", "video", 480), rendition("audio_en", "audio", language="en"),
    rendition("audio_ja_dub", "audio", language="ja"),
    rendition("audio_es-419_dub", "audio", language="es-419"),
    rendition("text_ja", "text", language="ja"), rendition("text_en", "text", language="en"),
    rendition("thumbnails_180p", "image", 180),
]
MEDIA = {"video": (("init.mp4", "init"), ("playlist.m3u8", "media-playlist"),
                   ("seg_00001.m4s", "segment"), ("iframes.m3u8", "iframe-playlist")),
         "audio": (("init.mp4", "init"), ("playlist.m3u8", "media-playlist"),
                   ("seg_00002.m4s", "segment")),
         "text": (("init.mp4", "init"), ("playlist.m3u8", "media-playlist"),
                  ("seg_00001.vtt", "segment"), ("seg_00001.m4s", "segment")),
         "image": (("images.m3u8", "image-playlist"), ("tile_00001.jpg", "image"))}


def current_rights(now: datetime) -> str:
    """Grants around `now`: one in force (BR, MX: up to 480p, Spanish), one long closed
    (JP), one not open yet (KR): what the edge answers does not depend on the day it runs."""
    def at(days: float) -> str:
        return format_instant(now + timedelta(days=days))
    return (f"rights:\n  - id: latam-sd\n    territories: [latam]\n    start: {at(-1)}\n"
            f"    max_height: 480\n    audio: [es-419]\n    subtitles: []\n"
            f"  - id: jp-old\n    territories: [JP]\n    start: {at(-400)}\n"
            f"    end: {at(-300)}\n"
            f"  - id: kr-next\n    territories: [KR]\n    start: {at(30)}\n")


def read_rights(directory: Path, text: str = RIGHTS) -> Rights:
    path = directory / "rights.yaml"
    path.write_text(text)
    return load_rights(path, REGIONS)


def release_files(rights: Rights
                  ) -> tuple[list[tuple[str, str, str | None]], list[GrantSummary]]:
    """(path, role, rendition) of every file, and the grants as release.json lists them."""
    files: list[tuple[str, str, str | None]] = [
        (f"{r.id}/{name}", role, r.id) for r in RENDITIONS for name, role in MEDIA[r.kind]]
    files += [("master.m3u8", "multivariant", None), ("manifest.mpd", "mpd", None)]
    grants: list[GrantSummary] = []
    for g in rights.grants:
        kept = allowed(g, RENDITIONS)
        manifests = {"hls": grant_manifest("master.m3u8", g.id),
                     "dash": grant_manifest("manifest.mpd", g.id)}
        files += [(manifests["hls"], "multivariant", None), (manifests["dash"], "mpd", None)]
        grants.append(summarize(g, [r.id for r in kept],
                                [r.language for r in kept if r.kind == "audio"],
                                [r.language for r in kept if r.kind == "text"], manifests))
    return files, grants


def write_release(root: Path, rights: Rights) -> Release:
    """On disk (`rights publish` checks the origin; the edges serve it)."""
    files, grants = release_files(rights)
    described = []
    for path, role, rid in files:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(f"{path}\n")
        described.append(describe_file(root, path, role, rid))
    return finish_release(root, source="s.mp4", duration=4.0, segment_duration=2.0,
                          formats=["hls", "dash"], renditions=RENDITIONS, files=described,
                          rights=grants)
