"""The command line as users meet it: doctor, demo, --json, exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import cdnpack_cli


def test_doctor_lists_tools_versions_and_encoders() -> None:
    result = cdnpack_cli("doctor", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] is True
    tools = {t["tool"]: t for t in doc["tools"]}
    assert set(tools) == {"ffmpeg", "ffprobe", "packager"}
    assert tools["ffmpeg"]["version"].startswith("n8.")
    assert {"libx264", "aac"} <= set(tools["ffmpeg"]["encoders"])
    assert tools["packager"]["version"].startswith("v3.")


def test_doctor_fails_clearly_when_a_tool_is_missing(tmp_path: Path) -> None:
    env = {**os.environ, "CDNPACK_FFPROBE": str(tmp_path / "nope")}
    result = cdnpack_cli("doctor", env=env)
    assert result.returncode == 3
    assert result.stderr.strip() == (
        f"cdnpack: error: CDNPACK_FFPROBE={tmp_path / 'nope'} is not an executable file"
    )
    assert "Traceback" not in result.stderr


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


def test_demo_packages_the_embedded_source(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = cdnpack_cli("demo", "-o", out, "--duration", "4", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["duration"] >= 4.0
    kinds = [r["kind"] for r in doc["renditions"]]
    assert kinds.count("video") == 5  # 720p source: 720, 540, 480, 360, 240
    assert kinds.count("audio") == 1
    assert (out / "release" / "master.m3u8").is_file()
    assert (out / "release" / "manifest.mpd").is_file()


def test_usage_errors_exit_2() -> None:
    result = cdnpack_cli("package")
    assert result.returncode == 2
    assert "Missing argument 'SOURCE'" in result.stderr
