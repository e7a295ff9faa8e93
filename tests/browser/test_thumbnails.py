"""Trick play in real players: shaka-player's getThumbnails() (HLS image playlist and DASH image
AdaptationSet) and dash.js's provideThumbnail() give the right sheet and cell for a time, and
the release with I-frame and image streams in its manifests still plays in every player."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.browser.conftest import Stage
from tests.browser.harness import Browser, PlayCase
from tests.browser.test_playback import explain

RELEASE = "thumbnails"  # conftest.RELEASES: --thumbnails 2s:2x2:90
INTERVAL, COLUMNS, ROWS = 2.0, 2, 2
#: One thumbnail of the 426x240 clip, 90 pixels high: 90 x 426/240 = 159.75, even: 160.
WIDTH, HEIGHT = 160, 90
SHEET_SECONDS = INTERVAL * COLUMNS * ROWS
#: Start, middle of a row, second row, last cell of the first sheet, the last (half) sheet.
TIMES = (0.0, 3.0, 5.5, 7.9, 9.0)
ADVANCE_SECONDS = 3.0


@dataclass(frozen=True)
class Cell:
    sheet: str
    x: int
    y: int
    start: float


def expected(time: float) -> Cell:
    sheet = int(time // SHEET_SECONDS)
    k = int((time - sheet * SHEET_SECONDS) // INTERVAL)
    return Cell(f"thumbnails_90p/tile_{sheet + 1:05d}.jpg", (k % COLUMNS) * WIDTH,
                (k // COLUMNS) * HEIGHT, sheet * SHEET_SECONDS + k * INTERVAL)


def asked(browser: Browser, stage: Stage, player: str,
          manifest: str) -> list[tuple[float, Cell, dict[str, Any]]]:
    """Play the release, then ask the player for the thumbnail of each of TIMES: (time, the
    cell expected, the player's answer)."""
    result = browser.play(PlayCase(page=stage.page, player=player,
                                   manifest=stage.manifest(RELEASE, manifest),
                                   advance=ADVANCE_SECONDS, thumbnails=TIMES))
    assert result.ok, explain(result)
    found = result.raw["thumbnails"]
    assert len(found) == len(TIMES)
    for time, thumbnail in zip(TIMES, found, strict=True):
        assert thumbnail is not None, time
        assert thumbnail["uri"].endswith(f"/{RELEASE}/{expected(time).sheet}"), (time, thumbnail)
    return [(time, expected(time), t) for time, t in zip(TIMES, found, strict=True)]


@pytest.mark.parametrize("manifest", ["master.m3u8", "manifest.mpd"])
def test_shaka_get_thumbnails_returns_the_cell_for_a_time(
    browser: Browser, stage: Stage, manifest: str
) -> None:
    for time, cell, thumbnail in asked(browser, stage, "shaka", manifest):
        assert thumbnail["tracks"] == 1
        assert (thumbnail["x"], thumbnail["y"]) == (cell.x, cell.y), (time, thumbnail)
        assert (thumbnail["width"], thumbnail["height"]) == (WIDTH, HEIGHT), (time, thumbnail)
        assert (thumbnail["image_width"], thumbnail["image_height"]) == (
            WIDTH * COLUMNS, HEIGHT * ROWS)
        assert thumbnail["start"] == pytest.approx(cell.start, abs=1e-3), (time, thumbnail)
        assert thumbnail["duration"] == pytest.approx(INTERVAL, abs=1e-3), (time, thumbnail)


def test_dashjs_provide_thumbnail_returns_the_cell_for_a_time(
    browser: Browser, stage: Stage
) -> None:
    for time, cell, thumbnail in asked(browser, stage, "dashjs", "manifest.mpd"):
        assert (thumbnail["x"], thumbnail["y"], thumbnail["width"], thumbnail["height"]) == (
            cell.x, cell.y, WIDTH, HEIGHT), (time, thumbnail)


def test_hlsjs_plays_a_release_with_iframe_and_image_streams(
    browser: Browser, stage: Stage
) -> None:
    result = browser.play(PlayCase(page=stage.page, player="hls.js",
                                   manifest=stage.manifest(RELEASE, "master.m3u8"),
                                   advance=ADVANCE_SECONDS))
    assert result.ok, explain(result)
    assert 0 < result.first_frames < result.frames, explain(result)
    assert result.fatal is None, explain(result)
