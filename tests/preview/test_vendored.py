"""The player the preview page loads is package data: the shaka-player build package-lock.json
pins, copied byte for byte from npm with its licence, and served without the web font its
stylesheet names (the page asks nothing of the internet)."""

from __future__ import annotations

import json
import re

import pytest

from preview.assets import (
    PAGE,
    PAGE_DIR,
    SHAKA_PLAYER_DIR,
    SHAKA_PLAYER_FILES,
    SHAKA_PLAYER_VERSION,
    STATIC,
    load_assets,
)
from tests.browser.harness import NODE_MODULES, REPO, unavailable

NPM = NODE_MODULES / "shaka-player"


def test_the_vendored_version_is_the_locked_one() -> None:
    lock = json.loads((REPO / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/shaka-player"]["version"] == SHAKA_PLAYER_VERSION
    build = (PAGE_DIR / SHAKA_PLAYER_DIR / "shaka-player.ui.js").read_text()
    assert f'"v{SHAKA_PLAYER_VERSION}"' in build  # shaka.Player.version


@pytest.mark.parametrize(("npm", "ours"), SHAKA_PLAYER_FILES)
def test_the_vendored_files_are_the_npm_ones(npm: str, ours: str) -> None:
    if not (NPM / "package.json").is_file():
        unavailable("missing node_modules/shaka-player")
    assert json.loads((NPM / "package.json").read_text())["version"] == SHAKA_PLAYER_VERSION
    assert (PAGE_DIR / SHAKA_PLAYER_DIR / ours).read_bytes() == (NPM / npm).read_bytes()


def test_the_page_loads_only_what_the_preview_serves() -> None:
    assets = load_assets()
    assert set(assets) == {PAGE, *STATIC}
    page = assets[PAGE].body.decode()
    loaded = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert loaded
    for url in loaded:
        assert url == "data:," or url.removeprefix("/static/") in STATIC, url
    css = assets["controls.css"].body
    assert b"@font-face" not in css
    assert b"fonts.gstatic.com" not in css
    assert b"shaka-seek-bar" in css  # the rest of it is served as shipped
