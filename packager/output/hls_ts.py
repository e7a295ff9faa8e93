"""HLS AES-128 for legacy devices: MPEG-TS segments with the audio muxed into each video
rendition, every segment encrypted whole (AES-128-CBC, PKCS#7), and the playlists saying how.

RFC 8216 §4.3.2.4 (METHOD=AES-128, IV attribute), §5.2 (IV when absent: the media sequence
number; we always write it explicitly, one IV per segment so no two segments share one).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packager.encoding.ladder import Rendition
from packager.encoding.transcode import build_ts_segment_command
from packager.encryption.aes128 import encrypt_segment
from packager.encryption.iv import ts_segment_iv
from packager.encryption.spec import EncryptionSpec
from packager.errors import BitstreamError, TranscodeError
from packager.mp4.isobmff import TrackInfo, parse_track_info, read_exact, read_top_level
from packager.output.hls import MEDIA_PLAYLIST, MULTIVARIANT_PLAYLIST, Playlist, vod_head
from packager.tools import run_tool

#: IV attribute needs version 2, floating-point EXTINF version 3 (RFC 8216 §7).
TS_VERSION = 3


@dataclass(frozen=True)
class TsSegment:
    number: int
    name: str
    duration: float  # seconds, from the segment muxer's measured start/end
    size: int  # bytes on disk, encrypted
    iv: bytes
    sha256: str  # of the encrypted bytes, taken while in memory (release.json needs it)


@dataclass(frozen=True)
class TsRendition:
    rendition: Rendition
    directory: str
    codecs: list[str]  # RFC 6381, video first
    width: int
    height: int
    segments: list[TsSegment]
    key_uri: str

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)

    @property
    def peak_bandwidth(self) -> int:
        return round(max((s.size * 8 / s.duration for s in self.segments if s.duration > 0),
                         default=0.0))

    @property
    def average_bandwidth(self) -> int:
        total = self.duration
        return round(sum(s.size for s in self.segments) * 8 / total) if total else 0


def read_track_info(path: Path) -> TrackInfo:
    """TrackInfo of a fragmented MP4 written by the encoder (ftyp + moov read, nothing else)."""
    with path.open("rb") as f:
        for kind, size, head in read_top_level(f):
            body = read_exact(f, size - len(head))
            if kind == b"moov":
                return parse_track_info(head + body)
    raise BitstreamError(f"{path.name}: no moov box")


def write_ts_rendition(
    rendition: Rendition,
    video: Path | None,
    audio: Path | None,
    release_root: Path,
    segment_times: list[float],
    spec: EncryptionSpec,
    rendition_index: int,
    workdir: Path,
) -> TsRendition:
    """Cut, encrypt and measure one TS rendition; one segment in memory at a time. Each
    segment's IV comes from the release's IV schedule (packager/encryption/iv.py)."""
    directory = release_root / rendition.id
    directory.mkdir(parents=True, exist_ok=False)
    listing = workdir / f"{rendition.id}.csv"
    infos = [read_track_info(p) for p in (video, audio) if p is not None]
    try:
        result = run_tool(
            build_ts_segment_command(video, audio, directory, segment_times, listing)
        )
        if result.returncode != 0:
            raise TranscodeError(
                f"ffmpeg could not write MPEG-TS segments: {'; '.join(result.stderr_tail[-2:])}"
            )
        with listing.open(newline="") as f:
            rows = [row for row in csv.reader(f) if row]
    finally:
        listing.unlink(missing_ok=True)
    assert spec.key_uri is not None
    segments = []
    for number, (name, start, end) in enumerate(rows, 1):
        path = directory / name
        iv = ts_segment_iv(spec, rendition_index, number)
        encrypted = encrypt_segment(spec.key, iv, path.read_bytes())
        path.write_bytes(encrypted)
        segments.append(TsSegment(number, name, float(end) - float(start), len(encrypted), iv,
                                   hashlib.sha256(encrypted).hexdigest()))
    if not segments:
        raise BitstreamError(f"{rendition.id}: no MPEG-TS segments written")
    video_info = next((i for i in infos if i.handler == "vide"), None)
    return TsRendition(
        rendition=rendition,
        directory=rendition.id,
        codecs=[i.codec for i in infos],
        width=video_info.width if video_info else 0,
        height=video_info.height if video_info else 0,
        segments=segments,
        key_uri=spec.key_uri,
    )


def media_playlist(ts: TsRendition) -> Playlist:
    # Each segment starts on a key frame with its own PAT/PMT (RFC 8216 §4.3.5.1), as in the
    # fMP4 playlists: players may switch variants at any segment.
    lines = vod_head([s.duration for s in ts.segments], "#EXT-X-INDEPENDENT-SEGMENTS",
                     version=TS_VERSION)
    for segment in ts.segments:
        lines.append(f'#EXT-X-KEY:METHOD=AES-128,URI="{ts.key_uri}",IV=0x{segment.iv.hex()}')
        lines.append(f"#EXTINF:{segment.duration:.5f},")
        lines.append(segment.name)
    lines.append("#EXT-X-ENDLIST")
    return Playlist(f"{ts.directory}/{MEDIA_PLAYLIST}", "\n".join(lines) + "\n")


def multivariant_playlist(
    renditions: list[TsRendition], extra_streams: Sequence[str] = ()
) -> Playlist:
    """One variant per rendition, lowest first; BANDWIDTH is the measured peak (§4.3.4.2);
    `extra_streams` (an EXT-X-IMAGE-STREAM-INF line) follow the variants."""
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{TS_VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for ts in sorted(renditions, key=lambda r: r.peak_bandwidth):
        attrs = [
            f"BANDWIDTH={ts.peak_bandwidth}",
            f"AVERAGE-BANDWIDTH={ts.average_bandwidth}",
            f'CODECS="{",".join(ts.codecs)}"',
        ]
        if ts.width:
            attrs.append(f"RESOLUTION={ts.width}x{ts.height}")
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attrs))
        lines.append(f"{ts.directory}/{MEDIA_PLAYLIST}")
    lines += extra_streams
    return Playlist(MULTIVARIANT_PLAYLIST, "\n".join(lines) + "\n")
