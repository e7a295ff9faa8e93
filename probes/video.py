"""Player-like probe: manifest, rendition, init, first K segments; startup and sustainable rate.

Startup time is what a player waits before it can render: the multivariant playlist (or MPD),
the media playlist (HLS), the initialization segment and the first media segment, fetched one
after the other as a player does.  Sustainable bitrate is the rendition's segment bits divided by
the time spent from request written to last byte (ttfb + transfer), i.e. what a player's
bandwidth estimator sees on a warm connection; its ratio to the rendition's declared bandwidth
(HLS BANDWIDTH, RFC 8216 §4.3.4.2; DASH @bandwidth, ISO/IEC 23009-1 §5.3.5.2) tells whether the
rendition can play without stalling.  Video renditions are the ones played and measured; with
each, the probe also fetches what a player starts with beside it in the default language
(`companions`): the default audio rendition (HLS DEFAULT=YES in the variant's AUDIO group; DASH
the first audio AdaptationSet, the default language's) and, when one is DEFAULT or FORCED in
that language, its text track, each fetched in parallel with the video as players do. Startup
then ends when the last of them has its first segment; their segments are not counted as
throughput (they are small and say nothing about the video's rate).
"""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import urljoin, urlsplit

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
    kind: str = "video"  # video, or a companion's: audio | text
    #: The default-language audio and text a player fetches beside this video rendition.
    companions: tuple[Variant, ...] = ()


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
    media = [_attrs(line) for line in lines if line.startswith("#EXT-X-MEDIA:")]
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            attrs = _attrs(line)
            uri = next((x for x in lines[i + 1:] if not x.startswith("#")), None)
            if uri is None or "BANDWIDTH" not in attrs:
                raise ManifestError("EXT-X-STREAM-INF without BANDWIDTH or URI")
            variants.append(Variant(_rendition_id(uri), int(attrs["BANDWIDTH"]), urljoin(url, uri),
                                    pathway=attrs.get("PATHWAY-ID"),
                                    companions=_hls_companions(media, attrs, url)))
    if not variants:
        raise ManifestError("multivariant playlist lists no EXT-X-STREAM-INF")
    pathways = [v.pathway for v in variants if v.pathway is not None]
    if pathways:
        chosen = pathway if pathway in pathways else pathways[0]
        variants = [v for v in variants if v.pathway == chosen]
    return variants


def _attrs(line: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in _ATTR.findall(line.split(":", 1)[1])}


def _hls_companions(media: list[dict[str, str]], variant: dict[str, str],
                    url: str) -> tuple[Variant, ...]:
    """The variant's default audio rendition (DEFAULT=YES, else the group's first) and the
    text rendition a player shows with it: DEFAULT=YES, else FORCED=YES in its language."""
    def group(kind: str, attr: str) -> list[dict[str, str]]:
        return [m for m in media if m.get("TYPE") == kind and m.get("URI")
                and m.get("GROUP-ID") == variant.get(attr)]

    chosen: list[tuple[str, dict[str, str]]] = []
    audio = group("AUDIO", "AUDIO")
    language = None
    if audio:
        default = next((m for m in audio if m.get("DEFAULT") == "YES"), audio[0])
        language = default.get("LANGUAGE")
        chosen.append(("audio", default))
    texts = group("SUBTITLES", "SUBTITLES")
    text = next((m for m in texts if m.get("DEFAULT") == "YES"), None) or next(
        (m for m in texts if m.get("FORCED") == "YES" and m.get("LANGUAGE") == language), None)
    if text is not None:
        chosen.append(("text", text))
    return tuple(Variant(_rendition_id(m["URI"]), 0, urljoin(url, m["URI"]), kind=kind)
                 for kind, m in chosen)


def _rendition_id(uri: str) -> str:
    """How a rendition is named in the records: its URI as the playlist writes it, except that
    a steered playlist's absolute URI (one per CDN pathway) is named by its last two path
    segments (`video_240p/playlist.m3u8`), the same under every CDN."""
    parts = urlsplit(uri)
    if not parts.scheme:
        return uri
    return "/".join(parts.path.rstrip("/").split("/")[-2:])


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
            if rep_kind == "video":
                variants.append(_representation(url, mpd, period, aset, rep, count,
                                                pathway))
    companions = tuple(
        replace(_representation(url, mpd, period, aset, found, 1, pathway), kind=kind)
        for kind, aset in _dash_companions(period)
        if (found := aset.find(f"{_NS}Representation")) is not None)
    if not variants:
        raise ManifestError("MPD has no video Representation")
    return [replace(v, companions=companions) for v in variants]


def _dash_companions(period: ET.Element) -> list[tuple[str, ET.Element]]:
    """The first audio AdaptationSet (the default language's: what a player without a language
    preference takes) and a forced-subtitle set in its language."""
    sets = period.findall(f"{_NS}AdaptationSet")
    audio = next((a for a in sets if a.get("contentType") == "audio"), None)
    if audio is None:
        return []
    text = next((a for a in sets if a.get("contentType") == "text"
                 and a.get("lang") == audio.get("lang")
                 and any(r.get("value") == "forced-subtitle" for r in a.findall(f"{_NS}Role"))),
                None)
    return [("audio", audio)] + ([("text", text)] if text is not None else [])


def _representation(url: str, mpd: ET.Element, period: ET.Element, aset: ET.Element,
                    rep: ET.Element, count: int, pathway: str | None = None) -> Variant:
    """A Representation's init and first `count` segment URLs (SegmentTemplate), under the
    probed CDN's BaseURL when the MPD is steered."""
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
    return Variant(rep_id, bandwidth, base, init, segments)


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
        variants = [_relocated(v, locate) for v in variants]
    out: list[Playback] = []
    for variant in choose(variants, renditions):
        steps = list(first)
        out.append(await _play_variant(fetcher, target, kind, variant, top, segments, steps))
    return out


def _relocated(variant: Variant, locate: Callable[[str], str]) -> Variant:
    """The variant (and its companions) with every URL where the probed region reaches it."""
    return replace(variant, url=locate(variant.url),
                   init=locate(variant.init) if variant.init else None,
                   segments=tuple(locate(u) for u in variant.segments),
                   companions=tuple(_relocated(c, locate) for c in variant.companions))


@dataclass(frozen=True)
class _Chain:
    """One rendition's fetches, one after the other: playlist (HLS), init, segments."""

    steps: list[Step]
    error: tuple[str, str | None] | None = None

    @property
    def startup(self) -> float:
        """Seconds until its first segment is in: every fetch up to and with it."""
        first = next(i for i, s in enumerate(self.steps) if s.step not in ("playlist", "init"))
        return sum(s.result.total for s in self.steps[: first + 1])


async def _chain(fetcher: Fetcher, kind: str, variant: Variant, count: int) -> _Chain:
    """Fetch a rendition as a player does; a companion's segments are steps named for its
    kind (audio, text), so that only the video's count as throughput."""
    steps: list[Step] = []
    init, urls = variant.init, list(variant.segments)
    if kind == "hls":
        playlist = await fetcher.fetch(variant.url, keep_body=True)
        steps.append(Step("playlist", variant.id, playlist))
        if playlist.error is not None:
            return _Chain(steps, (playlist.error, playlist.error_detail))
        try:
            init, urls = parse_hls_media(playlist.body.decode("utf-8"), variant.url, count)
        except (ManifestError, UnicodeDecodeError, KeyError) as exc:
            return _Chain(steps, ("protocol", f"{variant.url}: {exc}"))
    segment = "segment" if variant.kind == "video" else variant.kind
    for step, url in ([("init", init)] if init else []) + [(segment, u) for u in urls[:count]]:
        result = await fetcher.fetch(url)
        steps.append(Step(step, variant.id, result))
        if result.error is not None:
            return _Chain(steps, (result.error, result.error_detail))
    return _Chain(steps)


async def _play_variant(fetcher: Fetcher, target: str, kind: str, variant: Variant,
                        top: int | None, count: int, steps: list[Step]) -> Playback:
    """The video rendition and its companions, fetched side by side; startup is the manifest
    and then the slowest of them to its first segment."""
    chains = await asyncio.gather(_chain(fetcher, kind, variant, count),
                                  *(_chain(fetcher, kind, c, 1) for c in variant.companions))
    manifest = sum(s.result.total for s in steps)
    for chain in chains:
        steps.extend(chain.steps)
    failed = next((c.error for c in chains if c.error is not None), None)
    if failed is not None:
        return _failed(target, steps, failed[0], failed[1], variant, top)
    media = [s.result for s in chains[0].steps if s.step == "segment"]
    busy = sum((r.ttfb or 0.0) + (r.transfer or 0.0) for r in media)
    sustainable = sum(r.bytes for r in media) * 8 / busy if busy > 0 else None
    bandwidth = variant.bandwidth or None
    return Playback(
        target=target, rendition=variant.id, bandwidth=bandwidth, top_bandwidth=top,
        startup=manifest + max(c.startup for c in chains),
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
