"""Installed as users install it: a wheel built from this tree, in a fresh venv, run from an
empty directory far from the checkout. Nothing may depend on the repository being there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
