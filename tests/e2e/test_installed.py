"""Installed as users install it: a wheel built from this tree, in a fresh venv, run from an
empty directory far from the checkout. Nothing may depend on the repository being there."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from preview.assets import PAGE_DIR, STATIC
from testbed.clips import ClipSpec, make_clip

REPO = Path(__file__).resolve().parents[2]


def sh(*args: str | Path, cwd: Path, timeout: float = 900,
       env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          check=False, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the fresh venv's bin directory, the wheel): `pip install` of the wheel, not editable."""
    base = tmp_path_factory.mktemp("installed")
    # Built from a copy: setuptools writes build/ and *.egg-info beside the sources.
    tree = base / "tree"
    shutil.copytree(REPO, tree, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "build", "*.egg-info", "__pycache__", ".*_cache",
        "cdnpack-demo", "bench"))
    built = sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", tree, "-w", base / "dist",
               cwd=base)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (base / "dist").glob("cdnpack-*.whl")
    made = sh(sys.executable, "-m", "venv", base / "venv", cwd=base)
    assert made.returncode == 0, made.stderr
    bin_dir = base / "venv" / "bin"
    done = sh(bin_dir / "pip", "install", "-q", wheel, cwd=base)
    assert done.returncode == 0, done.stderr[-2000:]
    return bin_dir, wheel


def clean_env(bin_dir: Path) -> dict[str, str]:
    """No trace of the checkout or its venv: PATH starts at the fresh venv, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("AWS_")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_installed_package_holds_no_checkout_path(installed: tuple[Path, Path]) -> None:
    bin_dir, _ = installed
    site = sh(bin_dir / "python", "-c", "import cli, probes.config as c; "
              "print(cli.__file__); print(c.SHIPPED_CONFIG)", cwd=bin_dir)
    assert site.returncode == 0, site.stderr
    cli_file, shipped = site.stdout.split()
    assert str(REPO) not in cli_file
    assert Path(shipped).read_bytes() == (REPO / "regions.yaml").read_bytes()


def test_installed_cdnpack_works_from_an_empty_directory(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    bin_dir, wheel = installed
    env = clean_env(bin_dir)
    empty = tmp_path / "empty"
    empty.mkdir()
    cdnpack = bin_dir / "cdnpack"
    commands = json.loads(sh(bin_dir / "python", "-c",
                             "import cli, json; print(json.dumps(sorted(cli.cdnpack.commands)))",
                             cwd=empty, env=env).stdout)
    assert {"package", "push", "probe", "score", "gate", "demo", "doctor"} <= set(commands)
    for command in commands:  # every command starts and documents itself
        helped = sh(cdnpack, command, "--help", cwd=empty, env=env)
        assert helped.returncode == 0, f"{command}: {helped.stderr}"

    doctor = sh(cdnpack, "doctor", "--json", cwd=empty, env=env)
    assert doctor.returncode == 0, doctor.stderr
    assert json.loads(doctor.stdout)["ok"] is True

    # Without the [demo] extra the demo says what to install, in one line, before any work.
    no_demo = sh(cdnpack, "demo", "--duration", "4", cwd=empty, env=env)
    assert no_demo.returncode == 3
    assert no_demo.stderr.strip().splitlines() == [
        "cdnpack: error: the demo's local S3 origin (moto_server) is not installed: "
        "pip install 'cdnpack[demo]'"]
    assert list(empty.iterdir()) == []

    # The shipped default config, probed from a network namespace with nothing but loopback:
    # its placeholder hosts never resolve, which the probe records and score reports.
    if shutil.which("unshare") and sh("unshare", "-n", "true", cwd=empty).returncode == 0:
        probed = sh("unshare", "-n", cdnpack, "probe", "--region", "eu", "--samples", "1",
                    "--json", cwd=empty, env=env, timeout=300)
        assert probed.returncode == 0, probed.stderr
        run = json.loads(probed.stdout)
        assert run["fetches"] > 0
        assert run["errors"] == run["fetches"]
        scored = sh(cdnpack, "score", "probe-eu.jsonl", "--json", cwd=empty, env=env)
        assert scored.returncode == 0, scored.stderr
        assert [r["id"] for r in json.loads(scored.stdout)["regions"]] == ["eu"]
    else:  # pragma: no cover - CI runs as root, where unshare works
        pytest.fail("unshare -n is needed to probe the default config without a network")

    extra = sh(bin_dir / "pip", "install", "-q", f"{wheel}[demo]", cwd=empty, env=env)
    assert extra.returncode == 0, extra.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    demo = sh(cdnpack, "demo", "--duration", "4", "--json", cwd=work, env=env, timeout=600)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert (work / "cdnpack-demo" / "report.html").is_file()
    assert json.loads(demo.stdout)["release"]["published"] is not None


def test_installed_preview_serves_its_page_and_the_vendored_player(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    """The page and the player are package data: served by the installed command, from an
    empty directory, byte for byte what the repository ships."""
    bin_dir, _ = installed
    env = clean_env(bin_dir)
    empty = tmp_path / "empty"
    empty.mkdir()
    source = make_clip(tmp_path / "source.mp4", ClipSpec(duration=2.0, width=320, height=180))
    release = tmp_path / "release"
    done = sh(bin_dir / "cdnpack", "package", source, "-o", release, "--ladder", "compact",
              "--segment-duration", "1", cwd=empty, env=env)
    assert done.returncode == 0, done.stderr
    proc = subprocess.Popen([str(bin_dir / "cdnpack"), "preview", str(release), "--listen",
                             "127.0.0.1:0", "--json"], cwd=empty, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        event = json.loads(proc.stdout.readline() if ready else "{}")
        assert event.get("event") == "listening", proc.stderr.read() if proc.stderr else ""

        def get(path: str) -> bytes:
            with urllib.request.urlopen(event["url"] + path, timeout=10) as answer:
                body: bytes = answer.read()
                return body

        assert b"/static/shaka-player.ui.js" in get("/")
        for name in ("shaka-player.ui.js", "preview.js", "LICENSE"):
            assert get(f"/static/{name}") == (PAGE_DIR / STATIC[name]).read_bytes(), name
        assert json.loads(get("/preview.json"))["sources"]["local"]["hls"] == (
            "/release/master.m3u8")
        segment = "video_180p/seg_00001.m4s"
        assert get(f"/release/{segment}") == (release / segment).read_bytes()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert json.loads(out.splitlines()[-1])["event"] == "stopped"
    assert list(empty.iterdir()) == []
