"""Signalling thumbnail tile sheets: the HLS image playlist and its EXT-X-IMAGE-STREAM-INF, and
the DASH image AdaptationSet.

HLS has no image track in RFC 8216; players (shaka-player, Roku, Apple's tvOS) read the
"HLS Image Media Playlist" extension written by Disney and Warner Media for Roku:
EXT-X-IMAGE-STREAM-INF in the multivariant playlist, EXT-X-IMAGES-ONLY and one EXT-X-TILES per
sheet in the image playlist. DASH: DASH-IF IOP v4.3 §6.2.6 (contentType image, the
`http://dashif.org/thumbnail_tile` EssentialProperty with the grid, one image per segment).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from packager.encoding.thumbnails import SHEET_PATTERN, ThumbnailTrack
from packager.output.hls import Playlist

IMAGE_PLAYLIST = "images.m3u8"
THUMBNAIL_TILE_SCHEME = "http://dashif.org/thumbnail_tile"
#: The MIME subtype players test for (shaka-player, Roku): `jpeg`, as in image/jpeg.
IMAGE_CODEC = "jpeg"
#: The image set's SegmentTemplate timescale: milliseconds, exact for any interval whose
#: fraction has at most three decimals (the --thumbnails option's).
TIMESCALE = 1000


def sheet_durations(track: ThumbnailTrack, duration: float) -> list[float]:
    """Seconds of the presentation each sheet covers: a full sheet's worth, the last one up to
    the end of the presentation (its trailing grid cells stay black)."""
    full = track.spec.sheet_seconds
    return [max(0.0, min(full, duration - i * full)) for i in range(len(track.sheets))]


def image_playlist(track: ThumbnailTrack, duration: float) -> Playlist:
    """One EXTINF per sheet (the time it covers) with its EXT-X-TILES: RESOLUTION of one
    thumbnail, LAYOUT of the grid, DURATION of one thumbnail (the interval). Version 7: the
    extension's own requirement for EXT-X-IMAGES-ONLY."""
    durations = sheet_durations(track, duration)
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{math.ceil(max(durations, default=1.0))}",
        "#EXT-X-MEDIA-SEQUENCE:1",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-IMAGES-ONLY",
    ]
    tiles = (f"#EXT-X-TILES:RESOLUTION={track.width}x{track.height},"
             f"LAYOUT={track.spec.columns}x{track.spec.rows},DURATION={track.spec.interval:.3f}")
    for sheet, seconds in zip(track.sheets, durations, strict=True):
        lines += [f"#EXTINF:{seconds:.3f},", tiles, sheet.name]
    lines.append("#EXT-X-ENDLIST")
    return Playlist(f"{track.directory}/{IMAGE_PLAYLIST}", "\n".join(lines) + "\n")


def image_bandwidth(track: ThumbnailTrack, duration: float) -> int:
    """Peak bits per second of the sheets over the time each covers (as BANDWIDTH is for media
    segments, RFC 8216 §4.3.4.2): what a player fetching sheets as it plays reads."""
    durations = sheet_durations(track, duration)
    return round(max((s.size * 8 / d for s, d in zip(track.sheets, durations, strict=True)
                      if d > 0), default=0.0))


def image_stream_inf(track: ThumbnailTrack, duration: float) -> str:
    """EXT-X-IMAGE-STREAM-INF: RESOLUTION is one thumbnail's (shaka-player multiplies it by the
    grid of EXT-X-TILES), CODECS the image format."""
    attrs = [
        f"BANDWIDTH={image_bandwidth(track, duration)}",
        f"RESOLUTION={track.width}x{track.height}",
        f'CODECS="{IMAGE_CODEC}"',
        f'URI="{track.directory}/{IMAGE_PLAYLIST}"',
    ]
    return "#EXT-X-IMAGE-STREAM-INF:" + ",".join(attrs)


def image_adaptation_set(period: ET.Element, track: ThumbnailTrack, duration: float) -> None:
    """DASH-IF IOP §6.2.6: an AdaptationSet of contentType image, a Representation as large as
    a whole sheet with the grid in its thumbnail_tile EssentialProperty, one sheet per segment.

    The SegmentTimeline gives every sheet a full sheet's duration, the last one too (ISO/IEC
    23009-1 lets a segment run past the Period end; players clamp it): shaka-player divides a
    segment's duration by the grid to find a thumbnail's time, so a shortened last segment
    would put its thumbnails at the wrong times. The timeline lists exactly the sheets that
    exist, which a SegmentTemplate@duration, counted from the Period, could not promise.
    """
    ids = [int(a.get("id", "")) for a in period.findall("AdaptationSet")
           if a.get("id", "").isdigit()]
    adaptation = ET.SubElement(period, "AdaptationSet", {
        "id": str(max(ids, default=-1) + 1),
        "contentType": "image",
        "mimeType": "image/jpeg",
    })
    rep = ET.SubElement(adaptation, "Representation", {
        "id": track.directory,
        "bandwidth": str(image_bandwidth(track, duration)),
        "width": str(track.sheet_width),
        "height": str(track.sheet_height),
        "codecs": IMAGE_CODEC,
    })
    ET.SubElement(rep, "EssentialProperty", {
        "schemeIdUri": THUMBNAIL_TILE_SCHEME,
        "value": f"{track.spec.columns}x{track.spec.rows}",
    })
    template = ET.SubElement(rep, "SegmentTemplate", {
        "timescale": str(TIMESCALE),
        "media": f"{track.directory}/{SHEET_PATTERN.replace('{:05d}', '$Number%05d$')}",
        "startNumber": "1",
    })
    timeline = ET.SubElement(template, "SegmentTimeline")
    attrs = {"t": "0", "d": str(round(track.spec.sheet_seconds * TIMESCALE))}
    if len(track.sheets) > 1:
        attrs["r"] = str(len(track.sheets) - 1)
    ET.SubElement(timeline, "S", attrs)
