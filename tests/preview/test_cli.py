"""Bad input to `cdnpack preview`: one line, exit 2, nothing written (no keystore created, the
release untouched), before anything listens."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from packager.output.pipeline import PackageResult
from packager.output.release import RELEASE_NAME
from tests.preview.serving import ROOT, Watched, preview_command, tree_state

#: Each case runs the CLI, on the session's packaged release: seconds of real work.
pytestmark = pytest.mark.slow

Case = Callable[[Watched, Path], tuple[list[str], str]]


def not_a_directory(w: Watched, tmp: Path) -> tuple[list[str], str]:
    return [str(w.release / "master.m3u8")], "not a directory"


def no_release_json(w: Watched, tmp: Path) -> tuple[list[str], str]:
    return [str(tmp)], "no release.json; not a cdnpack release"


def damaged_release_json(w: Watched, tmp: Path) -> tuple[list[str], str]:
    copy = tmp / "release"
    shutil.copytree(w.release, copy)
    text = (copy / RELEASE_NAME).read_text()
    (copy / RELEASE_NAME).write_text(text[: len(text) // 3])
    return [str(copy), "--keystore", str(w.keystore)], "release.json: not JSON"


def keystore_without_the_kid(w: Watched, tmp: Path) -> tuple[list[str], str]:
    (tmp / "keys").mkdir()
    return [str(w.release), "--keystore", str(tmp / "keys")], "has no key for KID"


def no_keystore(w: Watched, tmp: Path) -> tuple[list[str], str]:
    return [str(w.release), "--keystore", str(tmp / "keys")], "no such directory"


def bad_listen(w: Watched, tmp: Path) -> tuple[list[str], str]:
    return [str(w.release), "--keystore", str(w.keystore), "--listen", "8800"], \
        "expected HOST:PORT"


def keys_beyond_loopback(w: Watched, tmp: Path) -> tuple[list[str], str]:
    return [str(w.release), "--keystore", str(w.keystore), "--listen", "0.0.0.0:0"], \
        "listens on a loopback address only"


def wrong_key(w: Watched, tmp: Path) -> tuple[list[str], str]:
    return [str(w.release), "--key", f"{'ab' * 16}:{'cd' * 16}"], "is not one of this release's"


def damaged_config(w: Watched, tmp: Path) -> tuple[list[str], str]:
    (tmp / "regions.yaml").write_text("regions: [\n")
    return [str(w.release), "--keystore", str(w.keystore), "--config",
            str(tmp / "regions.yaml")], "regions.yaml"


CASES: list[Case] = [not_a_directory, no_release_json, damaged_release_json,
                     keystore_without_the_kid, no_keystore, bad_listen, keys_beyond_loopback,
                     wrong_key, damaged_config]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_bad_input_is_one_line_and_nothing_is_written(watched: Watched, tmp_path: Path,
                                                      case: Case) -> None:
    args, message = case(watched, tmp_path)
    before = tree_state(watched.release, watched.keystore, tmp_path)
    done = subprocess.run([*preview_command(*args), "--listen", "127.0.0.1:0"]
                          if "--listen" not in args else preview_command(*args),
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("cdnpack: error: "), done.stderr
    assert message in done.stderr
    assert done.stdout == ""
    assert tree_state(watched.release, watched.keystore, tmp_path) == before


def test_a_port_in_use_is_one_line(watched: Watched) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(preview_command(watched.release, "--keystore", watched.keystore,
                                              "--listen", f"127.0.0.1:{port}"),
                              cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"cdnpack: error: cannot listen on 127.0.0.1:{port} (address already in use)"]


@pytest.mark.parametrize(("args", "message"), [
    (["--play-from", "published"], "not steered, its manifests name no CDN"),
    (["--results", "results"], "not steered; --config and --results plan pathways"),
])
def test_steering_options_need_a_steered_release(packaged: PackageResult, args: list[str],
                                                 message: str, tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    done = subprocess.run([*preview_command(packaged.output, *args), "--listen", "127.0.0.1:0"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert message in done.stderr
