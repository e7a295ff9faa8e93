"""The Python side of the playback driver (play.mjs): availability policy, cases and results.

Chromium and the npm packages come from `make test`. Without them a developer run skips the
browser tests with a reason naming `make test`; under CI (CI=true) the same gap fails them, so a
broken CI image cannot pass by skipping the only real playback checks.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / "node_modules"
DRIVER = Path(__file__).with_name("play.mjs")
PREVIEW_DRIVER = Path(__file__).with_name("preview.mjs")  # `cdnpack preview`'s page
PAGE = Path(__file__).with_name("player.html")
#: The player builds the page loads, copied beside it (the page origin serves one directory).
PLAYER_BUILDS = (
    "shaka-player/dist/shaka-player.compiled.js",
    "hls.js/dist/hls.min.js",
    "dashjs/dist/modern/umd/dash.all.min.js",
)
#: HTMLMediaElement.error.code MEDIA_ERR_DECODE (HTML §4.8.11.1): how Chromium reports samples
#: that a ClearKey CDM decrypted with the wrong key (garbage the decoder cannot decode).
MEDIA_ERR_DECODE = 3


def under_ci(env: Mapping[str, str] = os.environ) -> bool:
    return env.get("CI", "").strip().lower() in ("true", "1", "yes")


def chromium_path(env: Mapping[str, str] = os.environ) -> str | None:
    """$CHROMIUM, else `chromium` on PATH (Debian's package)."""
    return env.get("CHROMIUM") or shutil.which("chromium", path=env.get("PATH"))


def missing_parts(env: Mapping[str, str] = os.environ) -> list[str]:
    """What the browser tests need and this machine lacks (empty: all there)."""
    missing = []
    if chromium_path(env) is None:
        missing.append("chromium")
    if shutil.which("node", path=env.get("PATH")) is None:
        missing.append("node")
    missing += [f"node_modules/{p}" for p in PLAYER_BUILDS if not (NODE_MODULES / p).is_file()]
    if not (NODE_MODULES / "playwright-core" / "package.json").is_file():
        missing.append("node_modules/playwright-core")
    return missing


def unavailable(reason: str, env: Mapping[str, str] = os.environ) -> NoReturn:
    """Skip (developer run) or fail (CI) the browser tests for a missing or broken browser."""
    message = f"real playback tests cannot run: {reason} (`make test` installs chromium and npm ci)"
    if under_ci(env):
        pytest.fail(f"{message}; CI=true, so this is a failure, not a skip", pytrace=False)
    pytest.skip(message)


@dataclass(frozen=True)
class PlayCase:
    page: str  # the player page's URL
    player: str  # "shaka" | "hls.js" | "dashjs"
    manifest: str
    #: ClearKey keys (KID hex -> key hex) for shaka-player and dash.js, and a ClearKey license
    #: server's URL for hls.js, which takes keys only from one.
    keys: dict[str, str] = field(default_factory=dict)
    license: str = ""
    #: Requests whose path ends with `from_suffix` are sent to `to` instead (e.g. a key URI).
    redirect: tuple[str, str] | None = None
    advance: float = 5.0  # seconds of media that must play
    timeout: float = 30.0
    #: Localized releases (play.mjs acts on them once `advance` has played): list the
    #: tracks; switch audio ({"language", "role"?}) and play `switch_advance` more seconds;
    #: select a text track and read the cues showing after a paused seek to each of
    #: `cue_times`.
    list_tracks: bool = False
    select_audio: dict[str, str] | None = None
    switch_advance: float = 3.0
    switch_expect: str = ""  # a part of the URL the switch must fetch (waited for)
    select_text: dict[str, str] | None = None
    cue_times: tuple[float, ...] = ()
    #: Media times whose thumbnails are asked of the player once playback has advanced
    #: (result.raw["thumbnails"]); empty: none asked.
    thumbnails: tuple[float, ...] = ()
    #: CTA-5004 CMCD in every request's query (hls.js `cmcd`, dash.js `streaming.cmcd`,
    #: shaka-player `cmcd.enabled`), for the CDN logs to carry.
    cmcd: bool = False
    #: (URL prefix, headers added to requests under it), like a CDN's viewer headers.
    headers: tuple[tuple[str, dict[str, str]], ...] = ()
    #: Host name -> loopback address: CDNs told apart by name, as players tell them apart.
    hosts: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)  # per player: shaka, hlsjs, dashjs
    timeline: bool = False  # sample (wall clock, media time) during playback
    responses: bool = False  # every response's (URL, status): result.raw["responses"]
    #: Codec prefixes (e.g. "av01") the page claims it cannot decode (MediaSource and
    #: ManagedMediaSource isTypeSupported, canPlayType, mediaCapabilities.decodingInfo, EME
    #: capabilities): a browser without that codec, as far as a player can tell.
    refuse_codecs: tuple[str, ...] = ()
    #: Keep the page's last `log` console lines, any level (result.raw["log"]): with a
    #: player's debug setting, what it did before a failure.
    log: int = 0
    #: A URL prefix (a steering server): requests to `hosts` other than `manifest` wait for
    #: the first response under it (play.mjs holdMedia).
    media_after: str = ""
    #: (URL prefix of a steering server, URL part of a segment, URL part of the playlists
    #: that wait, the console line they wait for): the server's first answer lands while the
    #: first such segment is in flight, and the page has the segment before those playlists
    #: (play.mjs steerLate).
    steering_late: tuple[str, str, str, str] | None = None

    def to_json(self) -> str:
        doc: dict[str, Any] = {
            "page": self.page, "player": self.player, "manifest": self.manifest,
            "keys": self.keys, "advance": self.advance, "timeout": self.timeout,
        }
        if self.license:
            doc["license"] = self.license
        if self.redirect is not None:
            doc["redirect"] = {"fromSuffix": self.redirect[0], "to": self.redirect[1]}
        if self.list_tracks:
            doc["list_tracks"] = True
        if self.select_audio is not None:
            doc.update(select_audio=self.select_audio, switch_advance=self.switch_advance,
                       switch_expect=self.switch_expect)
        if self.select_text is not None:
            doc.update(select_text=self.select_text, cue_times=list(self.cue_times))
        if self.thumbnails:
            doc["thumbnails"] = list(self.thumbnails)
        if self.cmcd:
            doc["cmcd"] = True
        if self.headers:
            doc["headers"] = [{"urlPrefix": p, "set": h} for p, h in self.headers]
        if self.hosts:
            doc["hosts"] = self.hosts
        if self.config:
            doc["config"] = self.config
        if self.timeline:
            doc["timeline"] = True
        if self.responses:
            doc["responses"] = True
        if self.refuse_codecs:
            doc["refuse_codecs"] = list(self.refuse_codecs)
        if self.log:
            doc["log"] = self.log
        if self.media_after:
            doc["media_after"] = self.media_after
        if self.steering_late is not None:
            doc["steering_late"] = dict(zip(("prefix", "during", "after", "until"),
                                            self.steering_late, strict=True))
        return json.dumps(doc)


@dataclass(frozen=True)
class PlayResult:
    ok: bool
    current_time: float
    first_frames: int  # decoded frames at the first sample that had any
    frames: int  # decoded frames at the end (getVideoPlaybackQuality().totalVideoFrames)
    fatal: dict[str, Any] | None  # the first fatal player error
    errors: list[dict[str, Any]]
    video_error: dict[str, Any] | None  # HTMLMediaElement.error
    timed_out: bool
    media_keys: bool  # the video element had MediaKeys (EME decrypted the samples)
    seconds: float
    console: list[str]
    raw: dict[str, Any]
    #: (epoch seconds, media seconds) samples, when the case asked for a timeline.
    timeline: tuple[tuple[float, float], ...] = ()

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> PlayResult:
        frames = doc.get("frames") or [0, 0]
        return cls(
            ok=bool(doc.get("ok")), current_time=float(doc.get("current_time") or 0.0),
            first_frames=int(frames[0]), frames=int(frames[1]), fatal=doc.get("fatal"),
            errors=list(doc.get("errors") or []), video_error=doc.get("video_error"),
            timed_out=bool(doc.get("timed_out")), media_keys=bool(doc.get("media_keys")),
            seconds=float(doc.get("seconds") or 0.0),
            console=list(doc.get("console") or []), raw=doc,
            timeline=tuple((t / 1000, float(m)) for t, m in doc.get("timeline") or ()),
        )


class BrowserError(RuntimeError):
    """The driver could not start Chromium, or died."""


class Browser:
    """One driver process (one Chromium) for the session, play.mjs unless `driver` names
    another (chromium.mjs's protocol); cases run one after another."""

    def __init__(self, chromium: str, env: Mapping[str, str] = os.environ,
                 driver: Path = DRIVER) -> None:
        self.driver = driver.name
        self.proc = subprocess.Popen(
            ["node", str(driver)], cwd=REPO, text=True, env={**env, "CHROMIUM": chromium},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        first = self._read()
        if "launch_error" in first:
            self.close()
            raise BrowserError(f"chromium ({chromium}) did not start: {first['launch_error']}")
        self.version = str(first.get("version", ""))

    def _read(self, timeout: float = 60.0) -> dict[str, Any]:
        """The driver's next line; a driver silent past `timeout` is stopped, not waited on."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.proc.kill()
            raise BrowserError(f"{self.driver} said nothing for {timeout:.0f} s")
        line = self.proc.stdout.readline()
        if not line:
            stderr = self.proc.stderr.read() if self.proc.stderr else ""
            raise BrowserError(f"{self.driver} exited ({self.proc.wait()}): "
                               f"{stderr.strip()[-500:]}")
        doc: dict[str, Any] = json.loads(line)
        return doc

    def play(self, case: PlayCase) -> PlayResult:
        return PlayResult.from_json(self.ask(case.to_json(), case.timeout))

    def ask(self, case: str, timeout: float) -> dict[str, Any]:
        """One case (a JSON line) and the driver's result, given `timeout` seconds and 30 more
        for the driver's own steps."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(case + "\n")
        self.proc.stdin.flush()
        return self._read(timeout + 30.0)

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
