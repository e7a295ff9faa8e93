"""Shared fixtures: small generated clips and one packaged release per session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from packager.output.pipeline import PackageRequest, PackageResult, package
from packager.tools import find_tool
from testbed.clips import ClipSpec, make_clip
from tests.moto import FAKE_CREDENTIALS, MotoServer, moto_server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Whole flows (tests/e2e) and real playback (tests/browser) are slow by nature."""
    for item in items:
        if any(part in ("e2e", "browser") for part in item.path.parts):
            item.add_marker(pytest.mark.slow)


#: Small and short: the whole suite must stay well under 20 minutes on 2 cores.
SOURCE_SPEC = ClipSpec(duration=6.0, width=640, height=360, frame_rate="25")
SEGMENT_SECONDS = 2.0


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def source_clip(clips: Path) -> Path:
    return make_clip(clips / "source.mp4", SOURCE_SPEC)


@pytest.fixture(scope="session")
def packaged(source_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> PackageResult:
    out = tmp_path_factory.mktemp("release") / "out"
    return package(
        PackageRequest(
            source=source_clip, output=out, ladder="compact", segment_duration=SEGMENT_SECONDS
        )
    )


def ffprobe_json(path: Path, *args: str) -> dict[str, Any]:
    tool = find_tool("ffprobe")
    result = subprocess.run(
        [str(tool.path), "-v", "error", "-of", "json", *args, str(path)],
        capture_output=True, text=True, check=True,
    )
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def decode_errors(path: Path) -> str:
    """ffmpeg's error output when decoding every stream of a file ('' when clean)."""
    tool = find_tool("ffmpeg")
    result = subprocess.run(
        [str(tool.path), "-v", "error", "-nostdin", "-i", str(path), "-f", "null", "-"],
        capture_output=True, text=True, check=False,
    )
    return result.stderr.strip() + ("" if result.returncode == 0 else f" exit {result.returncode}")


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """A tool (ffmpeg, ffprobe, Shaka Packager) as an independent check: output, never raised."""
    return subprocess.run(list(map(str, args)), capture_output=True, text=True, check=False)


def cdnpack_cli(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real command line, in a real process: exit codes and stderr as a user sees them.
    Its environment is this one plus the local origin's credentials unless `env` is given."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *map(str, args)],
        capture_output=True, text=True, check=False,
        env=env if env is not None else {**os.environ, **FAKE_CREDENTIALS},
        cwd=Path(__file__).resolve().parent.parent,
    )


def concat(parts: Sequence[Path], target: Path) -> Path:
    target.write_bytes(b"".join(p.read_bytes() for p in parts))
    return target


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    """One moto_server for the session; use `moto_s3` for a clean one per test. The test
    process's environment is left alone: the CLI children get moto's credentials from
    `cdnpack_cli`, in-process clients from `testbed.origin.local_connection`."""
    with moto_server() as server:
        yield server


@pytest.fixture
def moto_s3(moto: MotoServer) -> MotoServer:
    moto.reset()
    return moto
