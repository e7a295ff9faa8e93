"""Trick play in a release: write the I-frame and image playlists, list them and the sheets."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from packager.encoding.thumbnails import ThumbnailTrack
from packager.output.release import IFrameSummary, ReleaseFile, ThumbnailSummary, describe_file
from packager.output.segmenter import CmafTrack
from packager.output.thumbnails import image_bandwidth, image_playlist, image_stream_inf
from packager.output.trickplay import (
    has_iframes,
    iframe_bitrates,
    iframe_playlist,
    iframe_stream_inf,
    iframes,
)


@dataclass(frozen=True)
class TrickPlay:
    """What the package job adds to a release for trick play."""

    files: list[ReleaseFile]
    #: EXT-X-I-FRAME-STREAM-INF and EXT-X-IMAGE-STREAM-INF lines for the multivariant playlist.
    stream_infs: list[str]
    iframes: list[IFrameSummary]
    thumbnails: list[ThumbnailSummary]
    #: Whose each stream_infs line is: the video rendition's id, or the sheets' directory.
    owners: tuple[str, ...] = ()

    def stream_infs_of(self, owners: Collection[str]) -> list[str]:
        """The lines of these renditions and sheets only (a grant's manifests)."""
        return [line for line, owner in zip(self.stream_infs, self.owners, strict=True)
                if owner in owners]


def write_trick_play(
    root: Path,
    tracks: list[CmafTrack],
    images: list[ThumbnailTrack],
    duration: float,
    hls: bool,
) -> TrickPlay:
    """With HLS, an I-frame playlist per video track (CMAF only: `tracks` is empty for MPEG-TS)
    and an image playlist per set of sheets; the sheets themselves whatever the formats."""
    files = [
        ReleaseFile(f"{image.directory}/{sheet.name}", "image", image.directory, sheet.size,
                    sheet.sha256)
        for image in images for sheet in image.sheets
    ]
    stream_infs: list[str] = []
    owners: list[str] = []
    iframe_summaries: list[IFrameSummary] = []
    image_playlists: dict[str, str] = {}
    if hls:
        for track in filter(has_iframes, tracks):
            playlist = iframe_playlist(track)
            (root / playlist.path).write_text(playlist.text)
            files.append(describe_file(root, playlist.path, "iframe-playlist", track.rendition.id))
            stream_infs.append(iframe_stream_inf(track))
            owners.append(track.rendition.id)
            rates = iframe_bitrates(track)
            iframe_summaries.append(IFrameSummary(
                rendition=track.rendition.id, playlist=playlist.path,
                iframes=len(iframes(track)), bandwidth=rates.peak,
                average_bandwidth=rates.average,
            ))
        for image in images:
            playlist = image_playlist(image, duration)
            (root / playlist.path).write_text(playlist.text)
            files.append(describe_file(root, playlist.path, "image-playlist", image.directory))
            stream_infs.append(image_stream_inf(image, duration))
            owners.append(image.directory)
            image_playlists[image.directory] = playlist.path
    summaries = [
        ThumbnailSummary(
            id=image.directory, interval=image.spec.interval, columns=image.spec.columns,
            rows=image.spec.rows, width=image.width, height=image.height,
            sheets=len(image.sheets), bandwidth=image_bandwidth(image, duration),
            playlist=image_playlists.get(image.directory, ""),
        )
        for image in images
    ]
    return TrickPlay(files, stream_infs, iframe_summaries, summaries, tuple(owners))

