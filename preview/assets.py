"""The preview page and the player build it loads: package data, read once, served from memory.

shaka-player's UI build (the player and its controls: seek bar thumbnails, language and
resolution menus) is vendored from npm, the version package-lock.json pins (a test holds the
copy to the npm one), with its licence, so the page plays from an installed wheel with no
network. Its stylesheet is served without the web font it names (Roboto from
fonts.gstatic.com): the page asks nothing of the internet, and the controls use system fonts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packager.errors import ToolError

PAGE_DIR = Path(__file__).resolve().with_name("page")
SHAKA_PLAYER_VERSION = "5.2.12"
SHAKA_PLAYER_DIR = "vendor/shaka-player"
#: The files the vendored build is copied from, in the npm package: (npm path, our name).
SHAKA_PLAYER_FILES = (
    ("dist/shaka-player.ui.js", "shaka-player.ui.js"),
    ("dist/controls.css", "controls.css"),
    ("LICENSE", "LICENSE"),
)
PAGE = "index.html"
#: /static/NAME -> file under page/.
STATIC = {
    "preview.js": "preview.js",
    "preview.css": "preview.css",
    **{name: f"{SHAKA_PLAYER_DIR}/{name}" for _, name in SHAKA_PLAYER_FILES},
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    "": "text/plain; charset=utf-8",  # LICENSE
}
#: A web font the player's stylesheet loads from the internet (Roboto, from fonts.gstatic.com).
_WEB_FONT = re.compile(rb"@font-face\{[^}]*url\(https?:[^}]*\}")


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str


def load_assets() -> dict[str, Asset]:
    """PAGE and every STATIC name -> its bytes; a file missing from the installation is one
    line (exit 3), not a page that fails in the browser."""
    assets = {}
    for name, relative in {PAGE: PAGE, **STATIC}.items():
        path = PAGE_DIR / relative
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise ToolError(f"the preview page's {relative} is missing from this installation "
                            f"({exc.strerror}): reinstall cdnpack") from None
        if path.suffix == ".css":
            body = _WEB_FONT.sub(b"", body)
        assets[name] = Asset(body, CONTENT_TYPES[path.suffix])
    return assets
