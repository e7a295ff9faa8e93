"""Thumbnail tile sheets: the --thumbnails option, the ffmpeg branch that draws them, what it drew.

A thumbnail every `interval` seconds, scaled to `height`, packed `columns` x `rows` to a JPEG
sheet (ffmpeg's select, scale and tile filters): one request per sheet instead of one per
thumbnail, the layout shaka-player, Roku and DASH-IF IOP 6.2.6 expect.
"""

from __future__ import annotations

import hashlib
import math
import re
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from packager.durations import UNITS, duration_seconds
from packager.encoding.media import MediaInfo
from packager.errors import InputError, TranscodeError
from packager.lazy import lazy_module

#: ffmpeg-python builds the ffmpeg graphs; loaded when the first graph is (not for --copy).
ffmpeg = lazy_module("ffmpeg")

SHEET_PATTERN = "tile_{:05d}.jpg"
#: ffmpeg's mjpeg quantiser scale, 2 (best) to 31 (worst).
JPEG_QUALITY = 5
#: The largest sheet side accepted. JPEG allows 65,535 pixels, but a player decodes a whole
#: sheet into memory to show one cell of it, and TV devices have little image memory.
MAX_SHEET_PIXELS = 16_384
_OPTION = re.compile(
    r"^(?P<interval>[^:]+)(?::(?P<columns>\d+)x(?P<rows>\d+))?(?::(?P<height>\d+))?$"
)


@dataclass(frozen=True)
class ThumbnailSpec:
    """What `--thumbnails INTERVAL[:COLUMNSxROWS[:HEIGHT]]` asks for."""

    interval: float  # seconds between thumbnails
    columns: int = 5
    rows: int = 5
    height: int = 180  # pixels of one thumbnail; 16:9 gives 320x180, Roku's HD size

    @property
    def per_sheet(self) -> int:
        return self.columns * self.rows

    @property
    def sheet_seconds(self) -> float:
        """The media time one full sheet covers."""
        return self.interval * self.per_sheet

    @property
    def directory(self) -> str:
        """The sheets' directory in the release."""
        return f"thumbnails_{self.height}p"


def parse_thumbnails(text: str) -> ThumbnailSpec:
    """`10s`, `2.5s`, `1m`, `10s:5x5`, `10s:5x5:240` (interval, tile grid, height) as a spec;
    anything else is one clear InputError naming the option. The interval is a duration
    (packager/durations.py); a bare number is seconds, as it always was."""
    match = _OPTION.match(text.strip())
    interval = duration_seconds(match["interval"], bare_seconds=True) if match else None
    if match is None or interval is None:
        raise InputError(
            f"--thumbnails {text!r}: expected INTERVAL[:COLUMNSxROWS[:HEIGHT]], e.g. 10s or "
            f"10s:5x5:240 (INTERVAL a duration: {UNITS})"
        )
    spec = ThumbnailSpec(interval=interval)
    if match["columns"] is not None:
        spec = ThumbnailSpec(interval, int(match["columns"]), int(match["rows"]), spec.height)
    if match["height"] is not None:
        spec = ThumbnailSpec(interval, spec.columns, spec.rows, int(match["height"]))
    if not 1.0 <= spec.interval <= 600.0:
        raise InputError(f"--thumbnails {text!r}: the interval must be 1 to 600 seconds")
    if not (1 <= spec.columns <= 20 and 1 <= spec.rows <= 20):
        raise InputError(f"--thumbnails {text!r}: the grid must be 1x1 to 20x20 thumbnails")
    if not 32 <= spec.height <= 1080 or spec.height % 2:
        raise InputError(
            f"--thumbnails {text!r}: the height must be an even number of pixels, 32 to 1080 "
            "(JPEG 4:2:0 halves it)"
        )
    return spec


@dataclass(frozen=True)
class ThumbnailPlan:
    """A spec applied to one source: the thumbnail's width and where ffmpeg writes the sheets."""

    spec: ThumbnailSpec
    width: int
    directory: Path  # in the work directory; moved into the release when complete


def plan_thumbnails(spec: ThumbnailSpec, media: MediaInfo, workdir: Path) -> ThumbnailPlan:
    """The thumbnail width for the source's display aspect (anamorphic sources stretched, as
    the ladder does), even for 4:2:0; a source without video, or sheets too large for image
    decoders, is bad input."""
    if media.video is None:
        raise InputError(f"{media.path}: --thumbnails needs a video stream; the source has none")
    width = max(2, round(Fraction(spec.height) * media.video.display_aspect / 2) * 2)
    if width * spec.columns > MAX_SHEET_PIXELS or spec.height * spec.rows > MAX_SHEET_PIXELS:
        raise InputError(
            f"--thumbnails: a {spec.columns}x{spec.rows} sheet of {width}x{spec.height} "
            f"thumbnails is {width * spec.columns}x{spec.height * spec.rows} pixels; image "
            f"decoders stop at {MAX_SHEET_PIXELS}"
        )
    return ThumbnailPlan(spec, width, workdir / spec.directory)


#: 1 ms below each thumbnail's time: float time stamps must not skip the frame on the mark.
_EARLY = 0.001
#: Thumbnails one --copy decode seeks to (one input each): bounds the process's decoders.
SEEK_BATCH = 25


def thumbnail_output(stream: Any, plan: ThumbnailPlan) -> Any:
    """The branch of an ffmpeg graph that draws the sheets from a decoded video stream.

    select keeps the first frame at or after each multiple of the interval (`selected_n` counts
    the frames kept so far); the tile sheet then shows frame k at k x interval.
    """
    picked = stream.filter("select", f"gte(t,selected_n*{plan.spec.interval:g}-{_EARLY:g})")
    return sheets_output(scaled(picked, plan), plan)


def scaled(stream: Any, plan: ThumbnailPlan) -> Any:
    return stream.filter("scale", plan.width, plan.spec.height).filter("setsar", "1")


def sheets_output(thumbnails: Any, plan: ThumbnailPlan) -> Any:
    """Scaled thumbnails, in time order, tiled into the sheets. passthrough: image2 must not
    duplicate or drop the sheets to fit a frame rate.

    Thumbnail k is stamped k x interval (in ms) before tiling, whatever time it came with: the
    pictures of --copy's seeks, joined by concat, arrive 1/51200 s apart, and sheets made of
    them reached the JPEG encoder with equal time stamps at random (ffmpeg's "Invalid pts (0)
    <= last (0)", exit 234, in about one run in four)."""
    plan.directory.mkdir(parents=True, exist_ok=True)
    numbered = thumbnails.filter("settb", "1/1000").filter(
        "setpts", f"N*{round(plan.spec.interval * 1000)}")
    return ffmpeg.output(
        numbered.filter("tile", f"{plan.spec.columns}x{plan.spec.rows}"),
        str(plan.directory / SHEET_PATTERN.replace("{:05d}", "%05d")),
        **{"f": "image2", "start_number": 1, "c:v": "mjpeg", "q:v": JPEG_QUALITY,
           "fps_mode": "passthrough", "map_metadata": -1},
    )


def thumbnail_times(media: MediaInfo, spec: ThumbnailSpec) -> list[float]:
    """k x interval for every k at which the source still has a picture (the last one starts a
    frame before the end)."""
    assert media.video is not None
    last = media.duration - float(1 / media.video.frame_rate) if media.video.frame_rate else (
        media.duration)
    return [k * spec.interval for k in range(math.ceil(media.duration / spec.interval))
            if k * spec.interval <= last + _EARLY]


def seek_input(path: Path, stream_index: int, time: float) -> Any:
    """One picture of a source: ffmpeg seeks to the key frame before `time`, decodes from there
    and keeps the first picture at or after it (accurate seek, then trim to one frame)."""
    return (ffmpeg.input(str(path), ss=f"{max(0.0, time - _EARLY):.6f}")[str(stream_index)]
            .filter("trim", end_frame=1))


@dataclass(frozen=True)
class ThumbnailSheet:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ThumbnailTrack:
    """The sheets of a release, as the manifest writers and release.json describe them."""

    spec: ThumbnailSpec
    directory: str  # relative to the release root
    width: int  # of one thumbnail
    height: int
    sheets: list[ThumbnailSheet]

    @property
    def sheet_width(self) -> int:
        return self.width * self.spec.columns

    @property
    def sheet_height(self) -> int:
        return self.height * self.spec.rows


def collect_thumbnails(plan: ThumbnailPlan, release_root: Path) -> ThumbnailTrack:
    """Move the sheets ffmpeg wrote into the release tree and measure them."""
    names = sorted(p.name for p in plan.directory.glob("tile_*.jpg"))
    expected = [SHEET_PATTERN.format(n) for n in range(1, len(names) + 1)]
    if not names or names != expected:
        raise TranscodeError(f"ffmpeg wrote no thumbnail sheets in order: {names[:3]}")
    target = release_root / plan.spec.directory
    shutil.move(plan.directory, target)
    sheets = []
    for name in names:
        data = (target / name).read_bytes()
        sheets.append(ThumbnailSheet(name, len(data), hashlib.sha256(data).hexdigest()))
    return ThumbnailTrack(plan.spec, plan.spec.directory, plan.width, plan.spec.height, sheets)
