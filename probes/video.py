"""Player-like probe: manifest, rendition, init, first K segments; startup and sustainable rate.

Startup time is what a player waits before it can render: the multivariant playlist (or MPD),
the media playlist (HLS), the initialization segment and the first media segment, fetched one
after the other as a player does.  Sustainable bitrate is the rendition's segment bits divided by
the time spent from request written to last byte (ttfb + transfer), i.e. what a player's
bandwidth estimator sees on a warm connection; its ratio to the rendition's declared bandwidth
(HLS BANDWIDTH, RFC 8216 §4.3.4.2; DASH @bandwidth, ISO/IEC 23009-1 §5.3.5.2) tells whether the
rendition can play without stalling.  Only video renditions are played (audio is fetched in
parallel by players and is small).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import urljoin

from probes.http import Fetcher, FetchResult

_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')
_TEMPLATE = re.compile(r"\$(RepresentationID|Number|Time|Bandwidth)(%0(\d+)d)?\$")
_NS = "{urn:mpeg:dash:schema:mpd:2011}"


class ManifestError(ValueError):
    """A manifest the video probe cannot follow (recorded as error class 'protocol')."""


@dataclass(frozen=True)
class Variant:
    id: str
    bandwidth: int  # bits/s as declared by the manifest
    url: str  # HLS: media playlist URL; DASH: unused (segments listed directly)
    init: str | None = None
    segments: tuple[str, ...] = ()
    pathway: str | None = None  # HLS content steering PATHWAY-ID


@dataclass(frozen=True)
class Step:
    step: str  # manifest | playlist | init | segment
    rendition: str | None
    result: FetchResult


@dataclass(frozen=True)
class Playback:
    target: str
    rendition: str | None
    bandwidth: int | None
    top_bandwidth: int | None  # highest video bandwidth the manifest offers
    startup: float | None  # seconds
    sustainable: float | None  # bits/s
    ratio: float | None  # sustainable / bandwidth
    error: str | None
    error_detail: str | None
    steps: list[Step] = field(default_factory=list)


def parse_hls_multivariant(text: str, url: str, pathway: str | None = None) -> list[Variant]:
    """EXT-X-STREAM-INF variants (RFC 8216 §4.3.4.2); a media playlist is its own variant.

    A steered playlist lists every variant once per CDN (PATHWAY-ID, RFC 8216bis §4.4.6.2):
    only the probed CDN's `pathway` is kept (the first pathway's when it has none), as a
    player steered to that CDN would play."""
    if not text.startswith("#EXTM3U"):
        raise ManifestError("not an M3U8 playlist (no #EXTM3U)")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if any(line.startswith("#EXTINF") for line in lines):
        return [Variant("media", 0, url)]
    variants: list[Variant] = []
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            attrs = {k: v.strip('"') for k, v in _ATTR.findall(line.split(":", 1)[1])}
            uri = next((x for x in lines[i + 1:] if not x.startswith("#")), None)
            if uri is None or "BANDWIDTH" not in attrs:
                raise ManifestError("EXT-X-STREAM-INF without BANDWIDTH or URI")
            variants.append(Variant(uri, int(attrs["BANDWIDTH"]), urljoin(url, uri),
                                    pathway=attrs.get("PATHWAY-ID")))
    if not variants:
        raise ManifestError("multivariant playlist lists no EXT-X-STREAM-INF")
    pathways = [v.pathway for v in variants if v.pathway is not None]
    if pathways:
        chosen = pathway if pathway in pathways else pathways[0]
        variants = [v for v in variants if v.pathway == chosen]
    return variants


def parse_hls_media(text: str, url: str, count: int) -> tuple[str | None, list[str]]:
    """EXT-X-MAP URI and the first `count` segment URIs of a media playlist (RFC 8216 §4.3.2)."""
    if not text.startswith("#EXTM3U"):
        raise ManifestError("media playlist is not M3U8")
    init = None
    segments: list[str] = []
    expect_uri = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-MAP:"):
            attrs = {k: v.strip('"') for k, v in _ATTR.findall(line.split(":", 1)[1])}
            init = urljoin(url, attrs["URI"]) if "URI" in attrs else None
        elif line.startswith("#EXTINF"):
            expect_uri = True
        elif line and not line.startswith("#") and expect_uri:
            segments.append(urljoin(url, line))
            expect_uri = False
            if len(segments) >= count:
                break
    if not segments:
        raise ManifestError("media playlist lists no segments")
    return init, segments


def _fill(template: str, rep: str, bandwidth: int, number: int, time: int) -> str:
    def sub(m: re.Match[str]) -> str:
        value = {"RepresentationID": rep, "Bandwidth": bandwidth, "Number": number,
                 "Time": time}[m.group(1)]
        return f"{value:0{m.group(3)}d}" if m.group(3) and isinstance(value, int) else str(value)

    return _TEMPLATE.sub(sub, template).replace("$$", "$")


def _base(url: str, *elements: ET.Element, pathway: str | None = None) -> str:
    """The BaseURL chain; of several, the one whose serviceLocation is the probed CDN's
    (DASH-IF CTS 001 content steering), else the first."""
    for element in elements:
        bases = [b for b in element.findall(f"{_NS}BaseURL") if b.text]
        base = next((b for b in bases if pathway is not None
                     and b.get("serviceLocation") == pathway), bases[0] if bases else None)
        if base is not None and base.text:
            url = urljoin(url, base.text.strip())
    return url


def parse_mpd(text: str, url: str, count: int, pathway: str | None = None) -> list[Variant]:
    """Video Representations with SegmentTemplate (ISO/IEC 23009-1 §5.3.9.4), first Period;
    segments under the BaseURL of the probed CDN's `pathway` when the MPD is steered."""
    try:
        mpd = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ManifestError(f"MPD is not XML ({exc})") from exc
    period = mpd.find(f"{_NS}Period")
    if period is None:
        raise ManifestError("MPD has no Period")
    variants: list[Variant] = []
    for aset in period.findall(f"{_NS}AdaptationSet"):
        kind = aset.get("contentType") or (aset.get("mimeType") or "").split("/")[0]
        for rep in aset.findall(f"{_NS}Representation"):
            rep_kind = kind or (rep.get("mimeType") or "").split("/")[0]
            if rep_kind != "video":
                continue
            template = rep.find(f"{_NS}SegmentTemplate")
            if template is None:
                template = aset.find(f"{_NS}SegmentTemplate")
            if template is None or template.get("media") is None:
                raise ManifestError("only SegmentTemplate addressing is supported")
            rep_id, bandwidth = rep.get("id", ""), int(rep.get("bandwidth", "0"))
            base = _base(url, mpd, period, aset, rep, pathway=pathway)
            number = int(template.get("startNumber", "1"))
            times = _timeline(template, count)
            media = template.get("media", "")
            segments = tuple(urljoin(base, _fill(media, rep_id, bandwidth, number + i, t))
                             for i, t in enumerate(times))
            init_t = template.get("initialization")
            init = urljoin(base, _fill(init_t, rep_id, bandwidth, number, 0)) if init_t else None
            variants.append(Variant(rep_id, bandwidth, base, init, segments))
    if not variants:
        raise ManifestError("MPD has no video Representation")
    return variants


def _timeline(template: ET.Element, count: int) -> list[int]:
    timeline = template.find(f"{_NS}SegmentTimeline")
    if timeline is None:
        duration = int(template.get("duration", "0"))
        return [i * duration for i in range(count)]
    times: list[int] = []
    t = 0
    for s in timeline.findall(f"{_NS}S"):
        t = int(s.get("t", t))
        for _ in range(int(s.get("r", "0")) + 1):
            times.append(t)
            t += int(s.get("d", "0"))
            if len(times) >= count:
                return times
    return times


def choose(variants: list[Variant], which: str) -> list[Variant]:
    ordered = sorted(variants, key=lambda v: v.bandwidth)
    if which == "lowest":
        return ordered[:1]
    if which == "highest":
        return ordered[-1:]
    return ordered


async def play(fetcher: Fetcher, target: str, url: str, kind: str, renditions: str,
               segments: int, pathway: str | None = None,
               locate: Callable[[str], str] | None = None) -> list[Playback]:
    """Fetch like a player; one Playback per chosen rendition (or one failed Playback).
    `pathway`: the CDN being probed, followed in a steered manifest, whose absolute URLs
    `locate` maps to where a viewer of the probed region reaches them (its regional edge)."""
    manifest = await fetcher.fetch(url, keep_body=True)
    first = [Step("manifest", None, manifest)]
    if manifest.error is not None:
        return [_failed(target, first, manifest.error, manifest.error_detail)]
    try:
        text = manifest.body.decode("utf-8")
        if kind == "hls":
            variants = parse_hls_multivariant(text, url, pathway)
        else:
            variants = parse_mpd(text, url, segments, pathway)
    except (ManifestError, UnicodeDecodeError, ValueError, KeyError) as exc:
        return [_failed(target, first, "protocol", f"{target}: {exc}")]
    top = max(v.bandwidth for v in variants) or None
    if locate is not None:
        variants = [replace(v, url=locate(v.url), init=locate(v.init) if v.init else None,
                            segments=tuple(locate(u) for u in v.segments)) for v in variants]
    out: list[Playback] = []
    for variant in choose(variants, renditions):
        steps = list(first)
        out.append(await _play_variant(fetcher, target, kind, variant, top, segments, steps))
    return out


async def _play_variant(fetcher: Fetcher, target: str, kind: str, variant: Variant,
                        top: int | None, count: int, steps: list[Step]) -> Playback:
    init, urls = variant.init, list(variant.segments)
    if kind == "hls":
        playlist = await fetcher.fetch(variant.url, keep_body=True)
        steps.append(Step("playlist", variant.id, playlist))
        if playlist.error is not None:
            return _failed(target, steps, playlist.error, playlist.error_detail, variant, top)
        try:
            init, urls = parse_hls_media(playlist.body.decode("utf-8"), variant.url, count)
        except (ManifestError, UnicodeDecodeError, KeyError) as exc:
            return _failed(target, steps, "protocol", f"{variant.url}: {exc}", variant, top)
    for step, url in ([("init", init)] if init else []) + [("segment", u) for u in urls[:count]]:
        result = await fetcher.fetch(url)
        steps.append(Step(step, variant.id, result))
        if result.error is not None:
            return _failed(target, steps, result.error, result.error_detail, variant, top)
    media = [s.result for s in steps if s.step == "segment"]
    startup_steps = [s for s in steps if s.step != "segment"] + [
        next(s for s in steps if s.step == "segment")]
    busy = sum((r.ttfb or 0.0) + (r.transfer or 0.0) for r in media)
    sustainable = sum(r.bytes for r in media) * 8 / busy if busy > 0 else None
    bandwidth = variant.bandwidth or None
    return Playback(
        target=target, rendition=variant.id, bandwidth=bandwidth, top_bandwidth=top,
        startup=sum(s.result.total for s in startup_steps),
        sustainable=sustainable,
        ratio=sustainable / bandwidth if sustainable is not None and bandwidth else None,
        error=None, error_detail=None, steps=steps,
    )


def _failed(target: str, steps: list[Step], error: str, detail: str | None,
            variant: Variant | None = None, top: int | None = None) -> Playback:
    return Playback(
        target=target, rendition=variant.id if variant else None,
        bandwidth=variant.bandwidth if variant else None, top_bandwidth=top, startup=None,
        sustainable=None, ratio=None, error=error, error_detail=detail, steps=steps,
    )
