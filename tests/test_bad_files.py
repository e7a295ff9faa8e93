"""Bad bytes never crash: every file a command reads goes through one reader, so random bytes,
text in another encoding, an empty file or a truncated one end in one line naming the file,
exit 2, no traceback, and nothing written."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from Crypto.PublicKey import RSA

from packager.keys.cpix import export_cpix
from packager.keys.model import KeySet
from probes.config import SHIPPED_CONFIG
from probes.results import jsonl
from rum.records import RumCell
from tests.conftest import cdnpack_cli
from tests.steering.results import Delivery, run_lines

#: Each case is a real command line in a process of its own: seconds in all, so `make test`'s.
pytestmark = pytest.mark.slow

LADDER = """\
name: shorts
video:
  preset: veryfast
  rungs:
    - {height: 360, bitrate: 800k}
audio: {bitrate: 128k, channels: 2, sample_rate: 48000}
"""
RESULTS = (
    '{"record": "run", "schema": 1, "run_id": "r1", "region": "eu", "weight": 1.0}\n'
    '{"record": "fetch", "run_id": "r1", "cdn": "cloudfront", "url": "https://x.example/a"}\n'
)


def variants(valid: bytes, cut: bytes | None) -> dict[str, bytes]:
    """The four ways a file goes bad, made from a valid one. Truncated: cut just after `cut`
    when given (half a YAML file can still be a whole, valid one), else in the middle."""
    end = valid.index(cut) + len(cut) if cut is not None else len(valid) // 2
    return {
        "random bytes": random.Random(20261204).randbytes(4096),
        "not UTF-8": "réglage: café\n".encode("latin-1") + valid,
        "empty": b"",
        "truncated": valid[:end],
    }


def valid_pem() -> bytes:
    return RSA.generate(2048).export_key()


def valid_rum() -> bytes:
    cell = RumCell("eu", "cloudfront", "2026-12-04T10:00:00Z", 3, 40, 0, 4_000_000, 0.4, 0.9,
                   30, 2, 1, 5e6, 4e6, 1.2e6, "b1")
    return jsonl([cell.line(), cell.line()]).encode()


TITLE = """\
language: en
default_language: en
subtitles:
  fr: subs.srt
"""
SRT = """\
1
00:00:00,500 --> 00:00:01,500
Bonjour

2
00:00:02,000 --> 00:00:03,000
Au revoir
"""


RIGHTS = """\
rights:
  - id: jp
    territories: [JP, jpkr]
    start: 2025-03-01T00:00:00Z
"""


def valid_release() -> bytes:
    return json.dumps({"schema": 1, "source": "s.mp4", "duration": 4.0, "segment_duration": 2.0,
                       "formats": ["hls"], "renditions": [], "files": [
                           {"path": "master.m3u8", "role": "multivariant", "rendition": None,
                            "bytes": 10, "sha256": "0" * 64}]}, indent=2).encode()


#: (what the file is, a valid one, its name, the command reading it: {bad} is the file, {out}
#: where nothing may be written, {source} a good source, {release} a release directory,
#: {results} good probe results).
CASES: list[tuple[str, Callable[[], bytes], str, list[str]]] = [
    ("ladder", LADDER.encode, "ladder.yaml",
     ["package", "{source}", "-o", "{out}", "--ladder", "{bad}"]),
    ("config", SHIPPED_CONFIG.read_bytes, "regions.yaml",
     ["probe", "--region", "eu", "--config", "{bad}", "-o", "{out}"]),
    ("release config", SHIPPED_CONFIG.read_bytes, "regions.yaml",
     ["release", "{source}", "s3://bucket/p", "-o", "{out}", "--config", "{bad}",
      "--endpoint-url", "http://127.0.0.1:9"]),
    ("results for score", RESULTS.encode, "eu.jsonl", ["score", "{bad}", "--html", "{out}"]),
    ("results for gate", RESULTS.encode, "eu.jsonl", ["gate", "{bad}", "--junit", "{out}"]),
    ("results for steer plan", RESULTS.encode, "eu.jsonl", ["steer", "plan", "{bad}"]),
    ("rum for score", valid_rum, "rum.jsonl",
     ["score", "{results}", "--rum", "{bad}", "--html", "{out}"]),
    ("rum for gate", valid_rum, "rum.jsonl",
     ["gate", "{results}", "--rum", "{bad}", "--junit", "{out}"]),
    ("release.json", valid_release, "release/release.json",
     ["push", "{release}", "s3://bucket/p", "--endpoint-url", "http://127.0.0.1:9"]),
    ("cpix import", lambda: export_cpix(KeySet.generate("t")), "keys.xml",
     ["keys", "import", "{bad}", "--keystore", "{out}"]),
    ("cpix keys", lambda: export_cpix(KeySet.generate("t")), "keys.xml",
     ["package", "{source}", "-o", "{out}", "--encrypt", "cbcs", "--keys", "cpix:{bad}",
      "--keystore", "{out}.keys"]),
    ("private key", valid_pem, "key.pem",
     ["sign", "https://d.example/a", "--key-pair-id", "K", "--private-key", "{bad}",
      "--expires", "+1h"]),
    ("title", TITLE.encode, "title.yaml",
     ["package", "{source}", "-o", "{out}", "--title", "{bad}"]),
    ("subtitles", SRT.encode, "subs.srt",
     ["package", "{source}", "-o", "{out}", "--subtitles", "fr={bad}"]),
    ("rights", RIGHTS.encode, "rights.yaml",
     ["package", "{source}", "-o", "{out}", "--rights", "{bad}"]),
    ("rights for release", RIGHTS.encode, "rights.yaml",
     ["release", "{source}", "s3://bucket/p", "-o", "{out}", "--rights", "{bad}",
      "--endpoint-url", "http://127.0.0.1:9"]),
    ("rights for check", RIGHTS.encode, "rights.yaml", ["rights", "check", "{bad}"]),
    ("release.json for rights publish", valid_release, "release/release.json",
     ["rights", "publish", "{release}", "s3://bucket/p", "--distribution", "E1",
      "--kvs-file", "{out}", "--endpoint-url", "http://127.0.0.1:9"]),
    ("rights for report", RIGHTS.encode, "rights.yaml",
     ["rights", "report", "{bad}", "--html", "{out}"]),
]
#: Where a valid file is cut to make a truncated one, when its middle could still be whole:
#: half of regions.yaml is a valid config, half a subtitle file a shorter valid one, half of two
#: equal JSON lines one whole line.
CUTS = {"regions.yaml": b"\ncdns:\n", "subs.srt": b"--> 00:00:0", "title.yaml": b"subtitles:",
        "rum.jsonl": b'"cdn":', "rights.yaml": b"territories:"}


@pytest.mark.parametrize(("what", "valid", "name", "command"), CASES, ids=[c[0] for c in CASES])
def test_every_bad_file_is_one_line_exit_2_and_nothing_written(
    what: str, valid: Callable[[], bytes], name: str, command: list[str], source_clip: Path,
    tmp_path: Path,
) -> None:
    runs = []
    good_results = tmp_path / "results.jsonl"
    good_results.write_text(jsonl(run_lines("eu", {"cloudfront": Delivery()})))
    for kind, data in variants(valid(), CUTS.get(Path(name).name)).items():
        work = tmp_path / kind.replace(" ", "-")
        release = work / "release"
        release.mkdir(parents=True)
        bad = work / name
        bad.write_bytes(data)
        if name == "title.yaml":  # the title names a subtitle file beside it: a good one
            (work / "subs.srt").write_text(SRT)
        places = {"bad": bad, "out": work / "out", "source": source_clip, "release": release,
                  "results": good_results}
        runs.append((kind, work, bad, [a.format(**places) for a in command],
                     sorted(p.name for p in work.rglob("*"))))
    with ThreadPoolExecutor(len(runs)) as pool:  # four CLI processes side by side
        done = list(pool.map(lambda run: cdnpack_cli(*run[3]), runs))
    for (kind, work, bad, _, before), result in zip(runs, done, strict=True):
        where = f"{what}, {kind}"
        assert result.returncode == 2, f"{where}: exit {result.returncode}: {result.stderr}"
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, f"{where}: {result.stderr}"
        assert lines[0].startswith(f"cdnpack: error: {bad}"), f"{where}: {lines[0]}"
        assert "Traceback" not in result.stderr
        assert "internal error" not in result.stderr
        assert sorted(p.name for p in work.rglob("*")) == before, f"{where}: wrote something"
