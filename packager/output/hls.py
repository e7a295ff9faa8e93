"""HLS playlists (RFC 8216) from measured segment timings: media playlists and the multivariant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from packager.drm.signalling import track_key_attributes
from packager.encoding.codecs import efficiency
from packager.output.bitrate import measure
from packager.output.segmenter import INIT_NAME, CmafTrack

MEDIA_PLAYLIST = "playlist.m3u8"
MULTIVARIANT_PLAYLIST = "master.m3u8"
AUDIO_GROUP = "audio"
SUBTITLES_GROUP = "subs"
#: CHARACTERISTICS (RFC 8216 §4.3.4.1) of audio description and of SDH / closed captions,
#: Apple's media characteristic tags (AVMediaCharacteristic).
DESCRIBES_VIDEO = "public.accessibility.describes-video"
CAPTION_CHARACTERISTICS = ("public.accessibility.transcribes-spoken-dialog,"
                           "public.accessibility.describes-music-and-sound")
#: RFC 8216 §7: EXT-X-MAP in a playlist that is not I-frames-only needs version 6.
VERSION = 6
#: Apple's authoring guidance: the first variant listed is the one playback starts on; about
#: 2 Mb/s starts fast on most networks without a long blurry start.
START_BITRATE = 2_000_000


@dataclass(frozen=True)
class Playlist:
    path: str  # relative to the release root
    text: str


def target_duration(durations: list[float]) -> int:
    """RFC 8216 §4.3.3.1: every EXTINF rounded to the nearest integer must be <= the target."""
    return max((int(Fraction(d).limit_denominator(10**6) + Fraction(1, 2)) for d in durations),
               default=1) or 1


def vod_head(durations: list[float], *tags: str, version: int = VERSION) -> list[str]:
    """The lines every VOD media playlist starts with (RFC 8216 §4.3.3), then `tags`: its
    EXT-X-TARGETDURATION is the longest segment rounded (§4.3.3.1, target_duration)."""
    return ["#EXTM3U", f"#EXT-X-VERSION:{version}",
            f"#EXT-X-TARGETDURATION:{target_duration(durations)}",
            "#EXT-X-MEDIA-SEQUENCE:1", "#EXT-X-PLAYLIST-TYPE:VOD", *tags]


def media_playlist(track: CmafTrack) -> Playlist:
    """A track's media playlist; a text track's lists its WebVTT segments (no EXT-X-MAP:
    WebVTT segments are whole documents, RFC 8216 §3.5)."""
    durations = track.segment_seconds()
    lines = vod_head(durations, "#EXT-X-INDEPENDENT-SEGMENTS")
    if not track.webvtt:
        lines.append(f'#EXT-X-MAP:URI="{INIT_NAME}"')
    if track.protection is not None:
        # After EXT-X-MAP: the init segment itself is clear (RFC 8216 §4.3.2.4).
        lines += [f"#EXT-X-KEY:{a}" for a in track_key_attributes(track.protection)]
    for segment, seconds in zip(track.webvtt or track.segments, durations, strict=True):
        lines.append(f"#EXTINF:{seconds:.5f},")
        lines.append(segment.name)
    lines.append("#EXT-X-ENDLIST")
    return Playlist(f"{track.directory}/{MEDIA_PLAYLIST}", "\n".join(lines) + "\n")


def multivariant_playlist(tracks: list[CmafTrack], extra_streams: Sequence[str] = ()) -> Playlist:
    """One variant per video rendition, all sharing one audio group (or audio-only variants);
    `extra_streams` (EXT-X-I-FRAME-STREAM-INF, EXT-X-IMAGE-STREAM-INF lines) follow the variants.
    With several codecs, each variant names its own (CODECS) and the first, where playback
    starts, is of the most efficient codec (players skip variants they cannot decode).

    BANDWIDTH is the video's peak segment bitrate plus the audio's (§4.3.4.2: it must cover
    every rendition that may play with the variant); AVERAGE-BANDWIDTH likewise with averages.
    """
    videos = [t for t in tracks if t.info.handler == "vide"]
    audios = [t for t in tracks if t.info.handler == "soun"]
    if any(a.rendition.default for a in audios):  # the DEFAULT one first: players start there
        audios.sort(key=lambda a: not a.rendition.default)
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    # EXT-X-SESSION-KEY (§4.3.4.5): lets a player start the key request before any media
    # playlist; one per distinct key and method, never METHOD=NONE.
    session_keys = dict.fromkeys(
        attrs for t in tracks if t.protection is not None
        for attrs in track_key_attributes(t.protection)
    )
    lines += [f"#EXT-X-SESSION-KEY:{attrs}" for attrs in session_keys]
    audio_peak = max((measure(a).peak for a in audios), default=0)
    audio_average = max((measure(a).average for a in audios), default=0)
    if videos and audios:
        lines += [media_line(a, "AUDIO", AUDIO_GROUP, i == 0) for i, a in enumerate(audios)]
    texts = [t for t in tracks if t.webvtt]
    lines += [media_line(t, "SUBTITLES", SUBTITLES_GROUP, False) for t in texts]
    variants: list[tuple[int, str]] = []
    preferred: list[str] = []  # the variants of the most efficient codec: playback starts there
    best = min((efficiency(v.rendition.codec) for v in videos), default=None)
    audio_codecs = sorted({a.info.codec for a in audios})
    for video in videos:
        rates = measure(video)
        attrs = [
            f"BANDWIDTH={rates.peak + audio_peak}",
            f"AVERAGE-BANDWIDTH={rates.average + audio_average}",
            f'CODECS="{",".join([video.info.codec, *audio_codecs])}"',
            f"RESOLUTION={video.info.width}x{video.info.height}",
            f"FRAME-RATE={float(video.rendition.frame_rate):.3f}",
        ]
        if video.rendition.score is not None:
            # RFC 8216bis §4.4.6.2: the measured quality, higher preferred (a player picks
            # among variants it can play by SCORE before bandwidth).
            attrs.append(f"SCORE={video.rendition.score:.2f}")
        if audios:
            attrs.append(f'AUDIO="{AUDIO_GROUP}"')
        if texts:
            attrs.append(f'SUBTITLES="{SUBTITLES_GROUP}"')
        attrs.append("CLOSED-CAPTIONS=NONE")
        entry = "#EXT-X-STREAM-INF:" + ",".join(attrs) + f"\n{video.directory}/{MEDIA_PLAYLIST}"
        variants.append((rates.peak + audio_peak, entry))
        if efficiency(video.rendition.codec) == best:
            preferred.append(entry)
    if not videos:
        for audio in audios:
            rates = measure(audio)
            entry = (
                f"#EXT-X-STREAM-INF:BANDWIDTH={rates.peak},AVERAGE-BANDWIDTH={rates.average},"
                f'CODECS="{audio.info.codec}"\n{audio.directory}/{MEDIA_PLAYLIST}'
            )
            variants.append((rates.peak, entry))
    variants.sort()
    if variants:
        start = min((v for v in variants if not preferred or v[1] in preferred),
                    key=lambda v: abs(v[0] - START_BITRATE))
        variants.remove(start)
        variants.insert(0, start)
    lines += [entry for _, entry in variants]
    lines += extra_streams
    return Playlist(MULTIVARIANT_PLAYLIST, "\n".join(lines) + "\n")


def media_line(track: CmafTrack, kind: str, group: str, first: bool) -> str:
    """EXT-X-MEDIA of an audio or subtitles rendition (RFC 8216 §4.3.4.1): NAME the language's
    own name, LANGUAGE its BCP 47 tag, DEFAULT from the title (an untitled release: the first
    audio), AUTOSELECT=YES (a player may pick it by the viewer's language; §4.3.4.1.1 requires
    it with DEFAULT and FORCED), FORCED for forced narratives, CHARACTERISTICS for audio
    description and captions, CHANNELS for audio."""
    r = track.rendition
    default = r.default or (first and not r.role)
    attrs = [f"TYPE={kind}", f'GROUP-ID="{group}"',
             f'NAME="{r.name or _audio_name(r.language, track.info.channels)}"']
    if r.language != "und":
        attrs.append(f'LANGUAGE="{r.language}"')
    attrs += [f"DEFAULT={'YES' if default else 'NO'}", "AUTOSELECT=YES"]
    if r.forced:
        attrs.append("FORCED=YES")
    characteristics = {"description": DESCRIBES_VIDEO, "caption": CAPTION_CHARACTERISTICS}
    if r.role in characteristics:
        attrs.append(f'CHARACTERISTICS="{characteristics[r.role]}"')
    if kind == "AUDIO":
        attrs.append(f'CHANNELS="{track.info.channels}"')
    attrs.append(f'URI="{track.directory}/{MEDIA_PLAYLIST}"')
    return "#EXT-X-MEDIA:" + ",".join(attrs)


def _audio_name(language: str, channels: int) -> str:
    layout = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}.get(channels, f"{channels}ch")
    return f"{language} {layout}" if language != "und" else f"Audio {layout}"
