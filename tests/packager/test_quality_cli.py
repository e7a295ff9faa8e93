"""`cdnpack quality` and per-title bad input through the real command line: exit codes, one
line on stderr, nothing written, and an encrypted release measured with keys that are never
printed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from packager.tools import find_tool
from testbed.clips import ClipSpec, make_clip
from tests.conftest import SEGMENT_SECONDS, cdnpack_cli


@pytest.fixture(scope="module")
def encrypted(source_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A compact cbcs release with per-class keys from the keystore, measured when packaged."""
    base = tmp_path_factory.mktemp("quality-cbcs")
    out, store = base / "out", base / "keystore"
    default = {k: v for k, v in os.environ.items() if k != "CDNPACK_VMAF"}  # measured unasked
    done = cdnpack_cli("package", source_clip, "-o", out, "--ladder", "compact",
                       "--segment-duration", str(SEGMENT_SECONDS), "--encrypt", "cbcs",
                       "--keys", "generate", "--per-class", "--keystore", store, env=default)
    assert done.returncode == 0, done.stderr
    return out, store


def stored_keys(store: Path) -> list[str]:
    return [json.loads(p.read_text())["key"] for p in store.glob("*.json")]


@pytest.mark.slow
def test_an_encrypted_release_is_measured_with_its_keys_never_printed(
    encrypted: tuple[Path, Path], source_clip: Path
) -> None:
    out, store = encrypted
    done = cdnpack_cli("quality", out, "--source", source_clip, "--keystore", store, "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["renditions"]
    assert [r["rendition"] for r in rows] == ["video_360p", "video_240p"]
    for row in rows:
        assert row["vmaf"] == pytest.approx(row["recorded"], abs=1e-3)
        assert row["vmaf"] > 60  # decrypted: a wrong key decodes to noise or fails
    keys = stored_keys(store)
    assert len(keys) == 4
    table = cdnpack_cli("-vv", "quality", out, "--source", source_clip, "--keystore", store)
    assert table.returncode == 0, table.stderr
    for key in keys:
        assert key.lower() not in (done.stdout + done.stderr + table.stdout + table.stderr).lower()
    assert "b/s per point" in table.stdout


@pytest.mark.slow
def test_a_rendition_under_min_vmaf_fails_the_gate(
    encrypted: tuple[Path, Path], source_clip: Path
) -> None:
    out, store = encrypted
    done = cdnpack_cli("quality", out, "--source", source_clip, "--keystore", store,
                       "--min-vmaf", "99.5")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "video_240p: VMAF" in done.stderr
    assert "under --min-vmaf 99.5" in done.stderr


@pytest.mark.slow
def test_a_source_that_is_not_the_releases_is_bad_input(
    encrypted: tuple[Path, Path], tmp_path: Path
) -> None:
    out, store = encrypted
    other = make_clip(tmp_path / "other.mp4", ClipSpec(duration=4.0, width=640, height=360,
                                                      audio=False))
    done = cdnpack_cli("quality", out, "--source", other, "--keystore", store)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "does not match the release" in done.stderr
    assert "100 frames" in done.stderr


@pytest.mark.slow
def test_a_key_missing_from_the_keystore_is_named(
    encrypted: tuple[Path, Path], source_clip: Path, tmp_path: Path
) -> None:
    out, _ = encrypted
    done = cdnpack_cli("quality", out, "--source", source_clip, "--keystore", tmp_path / "empty")
    assert done.returncode == 2
    assert "no key with KID" in done.stderr
    assert done.stderr.count("\n") == 1


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("short") / "short.mp4",
                     ClipSpec(duration=2.0, width=320, height=180))


@pytest.mark.parametrize(("ladder", "message"), [
    ("per_title: {targets: [93, 95]}", "per_title.targets: VMAF targets must be strictly"),
    ("per_title: {targets: [101, 90]}", "per_title.targets: VMAF targets must be within 0-100"),
    ("per_title: {resolutions: [720, 360]}", "per_title.resolutions: 720p is above the "
                                             "source's 360p"),
])
def test_per_title_bad_input_is_one_line_and_writes_nothing(
    ladder: str, message: str, source_clip: Path, tmp_path: Path
) -> None:
    path = tmp_path / "ladder.yaml"
    path.write_text(ladder + "\n")
    out = tmp_path / "out"
    done = cdnpack_cli("package", source_clip, "-o", out, "--ladder", path)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert done.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == [path]


def test_a_source_too_short_to_sample_is_refused(short_clip: Path, tmp_path: Path) -> None:
    done = cdnpack_cli("package", short_clip, "-o", tmp_path / "out", "--ladder", "per-title")
    assert done.returncode == 2
    assert "too short to sample for a per-title ladder" in done.stderr
    assert not (tmp_path / "out").exists()


def test_per_title_with_copy_is_refused(source_clip: Path, tmp_path: Path) -> None:
    done = cdnpack_cli("package", source_clip, "-o", tmp_path / "out", "--ladder", "per-title",
                       "--copy")
    assert done.returncode == 2
    assert "--copy keeps the source's encoding" in done.stderr


def test_an_ffmpeg_without_libvmaf_is_exit_3_naming_it(source_clip: Path, tmp_path: Path) -> None:
    env = {**os.environ, "CDNPACK_FFMPEG_FULL": str(find_tool("ffmpeg").path)}
    done = cdnpack_cli("package", source_clip, "-o", tmp_path / "out", "--ladder", "per-title",
                       env=env)
    assert done.returncode == 3, done.stderr
    assert "ffmpeg-full" in done.stderr
    assert "lacks the libvmaf filter" in done.stderr
    assert done.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_min_vmaf_outside_the_scale_is_bad_input(source_clip: Path, tmp_path: Path) -> None:
    done = cdnpack_cli("quality", tmp_path, "--source", source_clip, "--min-vmaf", "120")
    assert done.returncode == 2
    assert "--min-vmaf 120 is outside 0-100" in done.stderr
