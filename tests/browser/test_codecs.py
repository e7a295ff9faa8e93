"""AV1 beside H.264 in Chromium: hls.js, shaka-player and dash.js pick the AV1 renditions when
offered both, play them clear and under ClearKey (cbcs and cenc), and fall back to H.264 when
the browser says it cannot decode AV1. (Chromium has no HEVC: tests/packager checks HEVC by
decryption and decode.)"""

from __future__ import annotations

import pytest

from tests.browser.conftest import KEY, KID, Stage
from tests.browser.harness import Browser, PlayCase, PlayResult
from tests.browser.test_playback import Playback, explain

ADVANCE_SECONDS = 4.0
AV1, H264 = "/video_av1_240p/", "/video_240p/"


PICKS = [
    Playback("hls.js", "av1", "master.m3u8"),
    Playback("shaka", "av1", "manifest.mpd"),
    Playback("dashjs", "av1", "manifest.mpd"),
    Playback("shaka", "av1-cbcs", "master.m3u8"),
    Playback("shaka", "av1-cenc", "manifest.mpd"),
    Playback("dashjs", "av1-cbcs", "manifest.mpd"),
    Playback("dashjs", "av1-cenc", "manifest.mpd"),
    Playback("hls.js", "av1-cbcs", "master.m3u8"),
    Playback("hls.js", "av1-cenc", "master.m3u8"),
]
FALLBACKS = [
    Playback("hls.js", "av1-cbcs", "master.m3u8"),
    Playback("shaka", "av1-cbcs", "manifest.mpd"),
    Playback("dashjs", "av1", "manifest.mpd"),
]


def play(browser: Browser, stage: Stage, offer: Playback,
         refuse: tuple[str, ...] = ()) -> PlayResult:
    clearkey = offer.release != "av1"
    return browser.play(PlayCase(
        page=stage.page, player=offer.player, manifest=stage.manifest(offer.release,
                                                                      offer.manifest),
        keys={KID: KEY} if clearkey else {}, license=stage.license() if clearkey else "",
        advance=ADVANCE_SECONDS, refuse_codecs=refuse, responses=True))


def video_fetches(result: PlayResult, directory: str) -> int:
    """Media segments fetched from a rendition's directory (shaka-player's HLS parser may
    read another variant's init segment for its timing, without playing it)."""
    return sum(directory in url and "/seg_" in url and status == 200
               for url, status in result.raw.get("responses", []))


def assert_played(result: PlayResult, offer: Playback) -> None:
    assert result.ok, explain(result)
    assert result.current_time >= ADVANCE_SECONDS, explain(result)
    assert 0 < result.first_frames < result.frames, explain(result)
    assert result.fatal is None, explain(result)
    assert result.media_keys == (offer.release != "av1"), explain(result)


@pytest.mark.parametrize("offer", PICKS, ids=lambda p: p.id)
def test_players_pick_av1_beside_h264_and_play_it(
    browser: Browser, stage: Stage, offer: Playback
) -> None:
    result = play(browser, stage, offer)
    assert_played(result, offer)
    assert video_fetches(result, AV1) >= 2, result.raw.get("responses")
    assert video_fetches(result, H264) == 0, result.raw.get("responses")


@pytest.mark.parametrize("offer", FALLBACKS, ids=lambda p: p.id)
def test_players_fall_back_to_h264_without_av1(
    browser: Browser, stage: Stage, offer: Playback
) -> None:
    result = play(browser, stage, offer, refuse=("av01",))
    assert_played(result, offer)
    assert video_fetches(result, H264) >= 2, result.raw.get("responses")
    assert video_fetches(result, AV1) == 0, result.raw.get("responses")
