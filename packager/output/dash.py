"""The DASH MPD (ISO/IEC 23009-1, DASH-IF IOP) with a SegmentTimeline of measured durations."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from fractions import Fraction

from packager.drm.signalling import CENC_NS, MSPR_NS, content_protection
from packager.encoding.codecs import efficiency
from packager.encoding.thumbnails import ThumbnailTrack
from packager.output.bitrate import measure
from packager.output.segmenter import INIT_NAME, SEGMENT_PATTERN, CmafTrack
from packager.output.thumbnails import image_adaptation_set

MPD_NAME = "manifest.mpd"
MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
#: isoff-live: SegmentTemplate addressing, which every DASH player supports for on-demand too.
PROFILE = "urn:mpeg:dash:profile:isoff-live:2011"
AUDIO_CHANNELS_SCHEME = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
ROLE_SCHEME = "urn:mpeg:dash:role:2011"
AUDIO_PURPOSE_SCHEME = "urn:tva:metadata:cs:AudioPurposeCS:2007"


def iso_duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


def mpd(
    tracks: list[CmafTrack], segment_duration: float, images: Sequence[ThumbnailTrack] = ()
) -> str:
    """A static MPD: one video AdaptationSet per codec (a player does not switch codecs within
    one), one per audio and per text language and role, explicit
    timelines, and an image AdaptationSet for each set of thumbnail sheets
    (output/thumbnails.py).

    @bandwidth is the peak segment bitrate: with minBufferTime equal to one segment, a client
    receiving at @bandwidth then never stalls (ISO/IEC 23009-1 §5.3.5.2).
    """
    duration = max(t.duration_seconds for t in tracks)
    root = ET.Element(
        "MPD",
        {
            "xmlns": MPD_NS,
            "profiles": PROFILE,
            "type": "static",
            "mediaPresentationDuration": iso_duration(duration),
            "minBufferTime": iso_duration(segment_duration),
        },
    )
    if any(t.protection is not None for t in tracks):
        root.set("xmlns:cenc", CENC_NS)
    if any(t.protection is not None and t.protection.systems for t in tracks):
        root.set("xmlns:mspr", MSPR_NS)
    period = ET.SubElement(root, "Period", {"id": "0", "start": "PT0S"})
    videos = [t for t in tracks if t.info.handler == "vide"]
    audios = [t for t in tracks if t.info.handler == "soun"]
    codec_sets = video_sets(videos)
    for number, members in enumerate(codec_sets):
        top = max(members, key=lambda t: t.info.height)
        rate = top.rendition.frame_rate
        attrs = {
            "id": str(number),
            "contentType": "video",
            "mimeType": "video/mp4",
            "segmentAlignment": "true",
            "startWithSAP": "1",
            "maxWidth": str(top.info.width),
            "maxHeight": str(top.info.height),
            "maxFrameRate": _rate(rate),
            "par": _ratio(Fraction(top.info.width, top.info.height)),
        }
        if len(codec_sets) > 1:
            # AdaptationSet@selectionPriority (ISO/IEC 23009-1): the more efficient codec
            # first where the player can decode it (dash.js starts with the highest).
            attrs["selectionPriority"] = str(len(codec_sets) - number)
        adaptation = ET.SubElement(period, "AdaptationSet", attrs)
        content_protection(adaptation, top.protection)
        for track in sorted(members, key=lambda t: measure(t).peak):
            rep = _representation(adaptation, track)
            rep.set("width", str(track.info.width))
            rep.set("height", str(track.info.height))
            rep.set("frameRate", _rate(track.rendition.frame_rate))
            rep.set("sar", "1:1")
            _template(rep, track)
    if any(a.rendition.default for a in audios):  # the default language's set first
        audios.sort(key=lambda a: not a.rendition.default)
    for i, track in enumerate(audios, start=len(codec_sets) or 1):
        adaptation = _language_set(period, i, "audio", "audio/mp4", track)
        rep = _representation(adaptation, track)
        rep.set("audioSamplingRate", str(track.info.sample_rate))
        ET.SubElement(
            rep,
            "AudioChannelConfiguration",
            {"schemeIdUri": AUDIO_CHANNELS_SCHEME, "value": str(track.info.channels)},
        )
        _template(rep, track)
    texts = [t for t in tracks if t.info.handler == "text"]
    for i, track in enumerate(texts, start=(len(codec_sets) or 1) + len(audios)):
        # CMAF text (ISO/IEC 23000-19 §11.3): WebVTT in fMP4, on the video's timeline.
        _template(_representation(_language_set(period, i, "text", "application/mp4", track),
                                  track), track)
    for image in images:
        image_adaptation_set(period, image, duration)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def video_sets(videos: list[CmafTrack]) -> list[list[CmafTrack]]:
    """The video tracks grouped by codec, the most efficient codec first (the codec table's
    rate_factor: the least bitrate for the same quality), in the order they came otherwise."""
    groups: dict[str, list[CmafTrack]] = {}
    for track in videos:
        groups.setdefault(track.rendition.codec, []).append(track)
    return sorted(groups.values(), key=lambda members: efficiency(members[0].rendition.codec))


def _language_set(period: ET.Element, number: int, content: str, mime: str,
                  track: CmafTrack) -> ET.Element:
    """An AdaptationSet for one language and role (DASH-IF IOP §3.9): `lang`, its protection,
    Role (urn:mpeg:dash:role:2011: main, dub, alternate, description; subtitle,
    forced-subtitle, caption), and for an audio description the Accessibility descriptor
    players look for (TV-Anytime AudioPurposeCS 1, "for the visually impaired")."""
    attrs = {"id": str(number), "contentType": content, "mimeType": mime,
             "segmentAlignment": "true", "startWithSAP": "1"}
    if track.rendition.language != "und":
        attrs["lang"] = track.rendition.language
    adaptation = ET.SubElement(period, "AdaptationSet", attrs)
    content_protection(adaptation, track.protection)
    if track.rendition.role == "description":
        ET.SubElement(adaptation, "Accessibility", {"schemeIdUri": AUDIO_PURPOSE_SCHEME,
                                                    "value": "1"})
    role = track.rendition.role or ("main" if content == "audio" else "subtitle")
    ET.SubElement(adaptation, "Role", {"schemeIdUri": ROLE_SCHEME, "value": role})
    return adaptation


def _representation(adaptation: ET.Element, track: CmafTrack) -> ET.Element:
    return ET.SubElement(
        adaptation,
        "Representation",
        {
            "id": track.rendition.id,
            "bandwidth": str(measure(track).peak),
            "codecs": track.info.codec,
        },
    )


def _template(rep: ET.Element, track: CmafTrack) -> None:
    """SegmentTemplate with $Number$ and a run-length SegmentTimeline of measured durations."""
    media = SEGMENT_PATTERN.replace("{:05d}", "$Number%05d$")
    template = ET.SubElement(
        rep,
        "SegmentTemplate",
        {
            "timescale": str(track.info.timescale),
            "initialization": f"{track.directory}/{INIT_NAME}",
            "media": f"{track.directory}/{media}",
            "startNumber": str(track.segments[0].number),
        },
    )
    timeline = ET.SubElement(template, "SegmentTimeline")
    runs: list[list[int]] = []  # [duration, repeat]
    for segment in track.segments:
        if runs and runs[-1][0] == segment.duration:
            runs[-1][1] += 1
        else:
            runs.append([segment.duration, 0])
    first = True
    for duration, repeat in runs:
        attrs = {}
        if first:
            attrs["t"] = str(track.segments[0].presentation_start)
            first = False
        attrs["d"] = str(duration)
        if repeat:
            attrs["r"] = str(repeat)
        ET.SubElement(timeline, "S", attrs)


def _rate(rate: Fraction) -> str:
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def _ratio(value: Fraction) -> str:
    return f"{value.numerator}:{value.denominator}"
