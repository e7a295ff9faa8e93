"""Preview fixtures: a release worth watching (localized, cbcs, steered, with trick play), its
keystore and steering config, and `cdnpack preview` run as users run it. A plugin of the root
conftest: tests/preview and tests/browser share the one session release."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from packager.encoding.thumbnails import ThumbnailSpec
from packager.keys.keystore import Keystore
from packager.keys.source import keyed_request
from packager.output.pipeline import PackageRequest, package
from packager.title.file import resolve_title
from probes.config import load_config
from steering.documents import manifest_spec
from testbed.clips import ClipSpec, make_clip, make_dub
from testbed.subtitles import write_subtitles
from tests.steering.conftest import CONFIG as STEERING_CONFIG
from tests.steering.results import Delivery, write_run
from tests.steering.serving import Served

ROOT = Path(__file__).resolve().parents[2]
#: Two CDNs whose edges are gone (nothing listens on ports 1 and 2 of loopback): the release must
#: play from its own files. The results below put beta first in Europe, alpha in Japan / Korea;
#: a day's max_age keeps them fresh for the whole session.
CONFIG = STEERING_CONFIG.replace("max_age: 10m", "max_age: 1440m")
CONTENT_ID = "preview-title"
#: 640x360 (the compact ladder's 360p and 240p rungs: two bitrates to choose from), 6 s of
#: 2 s segments; thumbnails every 2 s in 2x2 sheets, 90 pixels high (160x90).
CLIP = ClipSpec(duration=6.0, width=640, height=360, frame_rate="25", language="eng")
SEGMENT_SECONDS = 2.0
THUMBNAILS = ThumbnailSpec(interval=2.0, columns=2, rows=2, height=90)


@dataclass(frozen=True)
class Watched:
    """The release and what a preview of it is given."""

    release: Path
    keystore: Path
    config: Path
    results: Path
    keys: dict[str, str]  # KID hex -> key hex, as the keystore holds them


@pytest.fixture(scope="session")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Watched:
    """An English source with a French dub; Arabic subtitles, English forced narratives and
    captions; cbcs with a generated key (ClearKey signalled); thumbnails and I-frame
    playlists; steered over alpha and beta. Probe results put beta first in Europe."""
    base = tmp_path_factory.mktemp("watched")
    source = make_clip(base / "source.mp4", CLIP)
    title = resolve_title(None, {
        "--audio": (f"fr={make_dub(base / 'fr.mp4', CLIP.duration, 880)}",),
        "--subtitles": (f"ar={write_subtitles(base / 'ar.srt', 'ar', 'srt')}",),
        "--forced-subtitles": (f"en={write_subtitles(base / 'en-forced.vtt', 'en', 'vtt')}",),
        "--captions": (f"en={write_subtitles(base / 'en-sdh.srt', 'en', 'srt')}",),
    }, default_language="en")
    config = base / "regions.yaml"
    config.write_text(CONFIG)
    release, keystore = base / "release", base / "keys"
    encryption = keyed_request("cbcs", "generate", release, keystore=keystore,
                               content_id=CONTENT_ID, drm="clearkey")
    package(PackageRequest(source=source, output=release, ladder="compact",
                           segment_duration=SEGMENT_SECONDS, encryption=encryption, title=title,
                           thumbnails=THUMBNAILS, steering=manifest_spec(load_config(config))))
    results = base / "results"
    results.mkdir()
    write_run(results, "eu", {"alpha": Delivery(ttfb=0.2), "beta": Delivery(ttfb=0.03)})
    write_run(results, "jpkr", {"alpha": Delivery(ttfb=0.03), "beta": Delivery(ttfb=0.2)})
    keys = {s.key.kid.hex(): s.key.key.hex() for s in Keystore(keystore)}
    return Watched(release, keystore, config, results, keys)


def tree_state(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file and directory under `roots` with its size and mtime: what a command that
    writes nothing leaves as it was."""
    state = {}
    for root in roots:
        for path in [root, *root.rglob("*")]:
            stat = path.stat()
            state[str(path)] = (stat.st_size if path.is_file() else -1, stat.st_mtime_ns)
    return state


@dataclass
class Previewing(Served):
    """A running preview (`get` as the steering tests' server has it); once stopped, its exit
    code and output."""

    event: dict[str, object] = field(default_factory=dict)
    stdout: str = ""
    returncode: int | None = None
    lines: list[str] = field(default_factory=list)


def preview_command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "cli", "preview", *map(str, args)]


@contextmanager
def previewing(*args: str | Path, stop: int = signal.SIGINT,
               env: Mapping[str, str] | None = None, cwd: Path = ROOT) -> Iterator[Previewing]:
    """`cdnpack preview ARGS --listen 127.0.0.1:0 --json`, yielded once it listens; on the way
    out stopped by `stop` (its exit code, stdout and stderr are then on the object)."""
    proc = subprocess.Popen(
        [*preview_command(*args), "--listen", "127.0.0.1:0", "--json"], cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {}), "COLUMNS": "1000"})
    served: Previewing | None = None
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        line = proc.stdout.readline() if ready else ""
        if not line:
            proc.kill()
            raise AssertionError(f"preview did not start: {proc.communicate()[1][-2000:]}")
        event = json.loads(line)
        assert event["event"] == "listening", event
        served = Previewing(str(event["url"]), proc, event=event, lines=[line])
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(stop)
        out, err = proc.communicate(timeout=30)
        if served is not None:
            served.stdout, served.stderr, served.returncode = out, err, proc.returncode
            served.lines += out.splitlines()
