"""HLS I-frame playlists (trick play) from the sync samples the segmenter already wrote.

No extra encode and no extra file: each entry is an EXT-X-BYTERANGE into a media segment that
covers the moof and the segment's leading sync sample (segmenter.SyncRange), which a player
decodes on its own for fast forward, rewind and scrubbing previews (RFC 8216 §4.3.3.6).
"""

from __future__ import annotations

from dataclasses import dataclass

from packager.drm.signalling import track_key_attributes
from packager.output.bitrate import Bitrates
from packager.output.hls import Playlist, vod_head
from packager.output.segmenter import INIT_NAME, CmafTrack

IFRAME_PLAYLIST = "iframes.m3u8"


@dataclass(frozen=True)
class IFrame:
    """One entry of an I-frame playlist."""

    segment: str  # the segment file the range is in
    offset: int
    length: int
    seconds: float  # until the next I-frame, or the end of the track (RFC 8216 §4.3.3.6)


def iframes(track: CmafTrack) -> list[IFrame]:
    """The track's I-frames in presentation order, each lasting until the next one."""
    ranged = [(s, s.sync_range) for s in track.segments if s.sync_range is not None]
    last = track.segments[-1] if track.segments else None
    end = last.presentation_start + last.duration if last is not None else 0
    timescale = track.info.timescale
    entries = []
    for i, (segment, sync) in enumerate(ranged):
        following = ranged[i + 1][1].presentation_time if i + 1 < len(ranged) else end
        entries.append(IFrame(segment.name, sync.offset, sync.length,
                              (following - sync.presentation_time) / timescale))
    return entries


def has_iframes(track: CmafTrack) -> bool:
    return track.info.handler == "vide" and any(s.sync_range for s in track.segments)


def iframe_playlist(track: CmafTrack) -> Playlist:
    """EXT-X-I-FRAMES-ONLY with the media playlist's EXT-X-MAP and, for an encrypted track,
    the same EXT-X-KEY lines: the ranges hold the encrypted samples and their senc."""
    entries = iframes(track)
    # §7: EXT-X-MAP in an I-frames-only playlist needs version 5; the media playlists' 6.
    lines = vod_head([e.seconds for e in entries], "#EXT-X-I-FRAMES-ONLY",
                     f'#EXT-X-MAP:URI="{INIT_NAME}"')
    if track.protection is not None:
        lines += [f"#EXT-X-KEY:{a}" for a in track_key_attributes(track.protection)]
    for entry in entries:
        lines += [f"#EXTINF:{entry.seconds:.5f},",
                  f"#EXT-X-BYTERANGE:{entry.length}@{entry.offset}", entry.segment]
    lines.append("#EXT-X-ENDLIST")
    return Playlist(f"{track.directory}/{IFRAME_PLAYLIST}", "\n".join(lines) + "\n")


def iframe_bitrates(track: CmafTrack) -> Bitrates:
    """Peak: the highest I-frame range's bits over its EXTINF, the rate at which a player
    fetching one I-frame per EXTINF reads (§4.3.4.2's peak segment bit rate, with an I-frame as
    the segment); average: all ranges over the whole duration."""
    entries = iframes(track)
    peak = max((e.length * 8 / e.seconds for e in entries if e.seconds > 0), default=0.0)
    seconds = sum(e.seconds for e in entries)
    average = sum(e.length for e in entries) * 8 / seconds if seconds > 0 else 0.0
    return Bitrates(peak=round(peak), average=round(average))


def iframe_stream_inf(track: CmafTrack) -> str:
    """The multivariant playlist's EXT-X-I-FRAME-STREAM-INF (§4.3.4.3) for one video track."""
    rates = iframe_bitrates(track)
    attrs = [
        f"BANDWIDTH={rates.peak}",
        f"AVERAGE-BANDWIDTH={rates.average}",
        f'CODECS="{track.info.codec}"',
        f"RESOLUTION={track.info.width}x{track.info.height}",
        f'URI="{track.directory}/{IFRAME_PLAYLIST}"',
    ]
    return "#EXT-X-I-FRAME-STREAM-INF:" + ",".join(attrs)
