"""VMAF of delivered video renditions: each CMAF track as a player receives it (its init
segment and media segments, joined), an encrypted one decrypted by ffmpeg with its key (fed
through stdin: never on a command line or a disk), scored against the source."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packager.quality.encode import Encode, Packets, video_packets
from packager.quality.vmaf import Viewing, VmafScore, measure


@dataclass(frozen=True)
class DeliveredTrack:
    rendition: str  # its id in the release
    files: tuple[Path, ...]  # init segment first, then the media segments in order
    key: bytes | None = field(default=None, repr=False)

    @property
    def encode(self) -> Encode:
        return Encode(self.files, self.key)


def track_packets(track: DeliveredTrack) -> Packets:
    return video_packets(track.encode)


def measure_delivered(source: Path, tracks: Sequence[DeliveredTrack],
                      viewing: Viewing) -> dict[str, VmafScore]:
    """Each track's score (one ffmpeg per track, every core for libvmaf), by rendition id."""
    scores = {}
    for track in tracks:
        frames = track_packets(track).frames
        (score,) = measure(source, [track.encode], [frames], viewing)
        scores[track.rendition] = score
    return scores
