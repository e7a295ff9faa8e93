"""Cutting a text track on the release's segment starts: WebVTT segments for HLS and CMAF text
(fMP4 wvtt) segments for DASH, the same spans of the same timeline.

A cue shown across a boundary is in both segments, with its own times (RFC 8216 §3.5 for
WebVTT; for wvtt the samples of each segment stop at its edges, ISO/IEC 14496-30 §7.4). Cues
that start after the end of the video are dropped (with a warning); cues running past it
are cut there. Overlapping cues are kept: players show both.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from packager.encoding.ladder import Rendition
from packager.mp4 import wvtt
from packager.mp4.isobmff import Fragment, media_segment_boxes, parse_track_info
from packager.output.segmenter import INIT_NAME, SEGMENT_PATTERN, CmafTrack, Segment
from packager.text.cues import TextTrack
from packager.text.webvtt import SIGNATURE, cues_between, write_webvtt

log = logging.getLogger(__name__)

WEBVTT_PATTERN = "seg_{:05d}.vtt"


def within(track: TextTrack, end: int, origin: Path) -> TextTrack:
    """The track's cues up to `end` (ms): later ones dropped with a warning, one running past
    it cut there."""
    kept = [replace(c, end=min(c.end, end)) for c in track.cues if c.start < end]
    dropped = len(track.cues) - len(kept)
    if dropped:
        log.warning("%s: %d cue(s) start after the video ends (%s s): dropped", origin, dropped,
                    f"{end / 1000:.3f}")
    return replace(track, cues=tuple(kept))


def write_text_track(rendition: Rendition, text: TextTrack, release_root: Path,
                     starts: Sequence[int], end: int, webvtt: bool = True) -> CmafTrack:
    """Write init.mp4, seg_NNNNN.m4s (wvtt) and, for HLS (`webvtt`), seg_NNNNN.vtt for the
    segments that start at `starts` (ms, the first 0) and end at `end` (ms)."""
    directory = release_root / rendition.id
    directory.mkdir(parents=True)
    config = "\n\n".join([SIGNATURE, *text.header])
    init = wvtt.init_segment(rendition.language, config, rendition.id)
    (directory / INIT_NAME).write_bytes(init)
    info = parse_track_info(init[int.from_bytes(init[:4], "big"):])
    segments: list[Segment] = []
    documents: list[Segment] = []
    for number, (start, stop) in enumerate(zip(starts, [*starts[1:], end], strict=True), 1):
        shown = cues_between(text.cues, start, stop)
        boxes = [(max(c.start, start), min(c.end, stop),
                  wvtt.vtt_cue(c.text, c.settings, c.identifier)) for c in shown]
        samples, data = wvtt.spans(boxes, start, stop)
        head, body = media_segment_boxes(number, info.track_id, Fragment(start, samples, data))
        segments.append(_write(directory, SEGMENT_PATTERN, number, start, stop, head + body))
        if webvtt:
            document = write_webvtt(shown, text.header, timestamp_map=True).encode("utf-8")
            documents.append(_write(directory, WEBVTT_PATTERN, number, start, stop, document))
    return CmafTrack(
        rendition=rendition,
        directory=rendition.id,
        info=info,
        init_size=len(init),
        init_sha256=hashlib.sha256(init).hexdigest(),
        segments=segments,
        webvtt=tuple(documents),
    )


def _write(directory: Path, pattern: str, number: int, start: int, stop: int,
           data: bytes) -> Segment:
    name = pattern.format(number)
    (directory / name).write_bytes(data)
    return Segment(number=number, name=name, start=start, presentation_start=start,
                   duration=stop - start, size=len(data),
                   sha256=hashlib.sha256(data).hexdigest(), starts_with_sync=True)
