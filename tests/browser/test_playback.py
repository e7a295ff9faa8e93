"""Real playback in Chromium: every release kind we make plays in the players our users run
(hls.js, shaka-player, dash.js), pulled from the S3 origin through a CORS edge; the same streams
with a wrong key do not."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.browser.conftest import KEY, KID, WRONG_KEY, Stage
from tests.browser.harness import MEDIA_ERR_DECODE, Browser, PlayCase, PlayResult

ADVANCE_SECONDS = 5.0
#: The fatal error each player raises for MEDIA_ERR_DECODE: shaka-player 3016 (VIDEO_ERROR, a
#: MEDIA category error, not a DRM one), dash.js its PLAYBACK_ERROR event, hls.js
#: mediaSourceRequiresReset (it resets the MediaSource after a decode error and gives up when
#: the error comes back appendErrorMaxRetry times).
DECODE_ERRORS = {"shaka": "3016", "dashjs": "playback", "hls.js": "mediaSourceRequiresReset"}


@dataclass(frozen=True)
class Playback:
    player: str
    release: str  # a key of conftest.RELEASES
    manifest: str

    @property
    def id(self) -> str:
        kind = "hls" if self.manifest.endswith(".m3u8") else "dash"
        return f"{self.player}-{kind}-{self.release}"


CASES = [
    Playback("hls.js", "clear", "master.m3u8"),
    Playback("shaka", "cbcs", "master.m3u8"),
    Playback("shaka", "cenc", "manifest.mpd"),
    Playback("shaka", "cbcs", "manifest.mpd"),
    Playback("dashjs", "cenc", "manifest.mpd"),
    Playback("dashjs", "cbcs", "manifest.mpd"),
    Playback("hls.js", "aes-128", "master.m3u8"),
    Playback("hls.js", "cenc", "master.m3u8"),
]
CLEARKEY_CASES = [c for c in CASES if c.release in ("cenc", "cbcs")]


def case(stage: Stage, playback: Playback, key: str = KEY) -> PlayCase:
    clearkey = playback.release in ("cenc", "cbcs")
    return PlayCase(page=stage.page, player=playback.player,
                    manifest=stage.manifest(playback.release, playback.manifest),
                    keys={KID: key} if clearkey else {},
                    license=stage.license(key) if clearkey else "", advance=ADVANCE_SECONDS)


def explain(result: PlayResult) -> str:
    return (f"t={result.current_time:.2f}s frames={result.first_frames}->{result.frames} "
            f"fatal={result.fatal} video_error={result.video_error} "
            f"timed_out={result.timed_out} media_keys={result.media_keys} "
            f"errors={result.errors[:5]} console={result.console[:5]}")


@pytest.mark.parametrize("playback", CASES, ids=lambda p: p.id)
def test_release_plays_five_seconds_with_decoded_frames(
    browser: Browser, stage: Stage, playback: Playback
) -> None:
    result = browser.play(case(stage, playback))
    assert result.ok, explain(result)
    assert result.current_time >= ADVANCE_SECONDS, explain(result)
    assert 0 < result.first_frames < result.frames, explain(result)
    assert result.fatal is None, explain(result)
    assert result.video_error is None, explain(result)
    # Sample encryption goes through EME (ClearKey); AES-128 is decrypted by hls.js itself.
    assert result.media_keys == (playback.release in ("cenc", "cbcs")), explain(result)


@pytest.mark.parametrize("playback", CLEARKEY_CASES, ids=lambda p: p.id)
def test_clearkey_with_a_wrong_key_fails_as_a_decode_error(
    browser: Browser, stage: Stage, playback: Playback
) -> None:
    """Chromium's ClearKey CDM does not check keys: it decrypts with whatever it is given, and
    the decoder then rejects the garbage (MEDIA_ERR_DECODE), which the player reports as fatal."""
    result = browser.play(case(stage, playback, key=WRONG_KEY))
    assert not result.ok, explain(result)
    assert result.current_time < ADVANCE_SECONDS, explain(result)
    assert result.video_error is not None, explain(result)
    assert result.video_error["code"] == MEDIA_ERR_DECODE, explain(result)
    assert result.fatal is not None, explain(result)
    assert result.fatal["code"] == DECODE_ERRORS[playback.player], explain(result)


def test_aes128_with_a_wrong_key_fails_to_decrypt(browser: Browser, stage: Stage) -> None:
    """The playlist's key URI is answered from the key server's wrong key file. hls.js decrypts
    AES-128-CBC in software by default and strips the PKCS#7 padding without checking it, so
    the segments come out as bytes that are not MPEG-TS (fragParsingError); with WebCrypto the
    bad padding is a fragDecryptError; and now and then the noise passes hls.js's probe for
    raw MPEG audio, which MSE then refuses (bufferAddCodecError). Fatal every way, nothing
    plays, and never for want of the key (a load error would pass this test vacuously)."""
    wrong = PlayCase(page=stage.page, player="hls.js",
                     manifest=stage.manifest("aes-128", "master.m3u8"),
                     redirect=("/aes.key", stage.key("wrong.key")), advance=ADVANCE_SECONDS)
    result = browser.play(wrong)
    assert not result.ok, explain(result)
    assert result.current_time < ADVANCE_SECONDS, explain(result)
    assert result.fatal is not None, explain(result)
    assert result.fatal["code"] in ("fragDecryptError", "fragParsingError",
                                    "bufferAddCodecError"), explain(result)
