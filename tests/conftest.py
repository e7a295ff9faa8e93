"""Shared fixtures: small generated clips and one packaged release per session."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from packager.output.pipeline import PackageRequest, PackageResult, package
from packager.title.file import resolve_title
from packager.tools import find_tool
from testbed.clips import ClipSpec, make_clip, make_dub
from testbed.subtitles import write_subtitles
from tests.moto import FAKE_CREDENTIALS, MotoServer, moto_server

#: `cdnpack package|release` measure every rendition's VMAF unless told not to; here they are
#: told (CDNPACK_VMAF, the option's environment variable) except where quality is what a test
#: checks: tests/packager/test_quality_cli.py and test_per_title.py measure, the CLI's default
#: included. It halves the CPU of a package call on the session's clips.
os.environ.setdefault("CDNPACK_VMAF", "0")

#: The preview's session release (`watched`), shared by tests/preview and tests/browser.
pytest_plugins = ("tests.preview.serving",)

#: Fixtures that run servers in processes of their own (the local S3 origin, the emulated edges,
#: a browser): a test that needs one is an integration test, left out of `make check`.
SERVER_FIXTURES = frozenset({"moto", "signing_moto", "edges", "browser", "preview_browser",
                             "stage"})


#: Directories whose modules share session fixtures that take seconds to build (the browser's
#: releases and Chromium, the probes' edges and runs): one xdist worker runs each whole.
SHARED_SESSION_DIRS = ("browser", "probes")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Whole flows (tests/e2e), real playback (tests/browser) and tests against servers in
    other processes are slow by nature; `make check` runs the rest (`-m "not slow"`)."""
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        if any(part in ("e2e", "browser") for part in item.path.parts) or uses & SERVER_FIXTURES:
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # a run without xdist knows no such hook
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`pytest -n 2 --dist loadscope` (`make test`, `make check`): a module goes to one worker
    whole, so its module fixtures are built once, and so do the directories whose modules share
    costly session fixtures: the browser tests, which mostly wait for real-time playback, keep
    one worker while the other runs the rest of the suite. (xdist's own `loadgroup` marks no
    longer reach its scheduler under pytest 9, which ignores the node ids xdist rewrites.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling  # noqa: PLC0415 (only under xdist)

    class ModulesAndSharedDirectories(LoadScopeScheduling):  # type: ignore[misc] # untyped
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            parts = module.split("/")
            if len(parts) > 2 and parts[0] == "tests" and parts[1] in SHARED_SESSION_DIRS:
                return f"tests/{parts[1]}"
            return module

    return ModulesAndSharedDirectories(config, log)


#: Small and short: the whole suite must stay well under 20 minutes on 2 cores.
SOURCE_SPEC = ClipSpec(duration=6.0, width=640, height=360, frame_rate="25")
SEGMENT_SECONDS = 2.0


@pytest.fixture(scope="session", autouse=True)
def own_cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Pushes remember file digests under $XDG_CACHE_HOME (cdn/digest_cache.py): the suite's,
    and those of the CLI processes it starts, go to a directory of the session's."""
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache-home"))
    yield
    if previous is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = previous


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


@dataclass(frozen=True)
class LocalizedInputs:
    """A small localized title: a source with English and Spanish audio and Japanese text
    streams, a French dub, an English audio description, and side text files in every format
    (Arabic SRT, Thai WebVTT in UTF-16, Hebrew TTML, English forced WebVTT, English ASS
    captions)."""

    source: Path
    options: dict[str, tuple[str, ...]]  # the side-file options, as `cdnpack package` takes

    def args(self) -> list[str]:
        return [a for option, values in self.options.items() for v in values for a in (option, v)]


#: Tones of the localized source's languages (Hz): a test can tell which language plays.
TONES = {"en": 440, "es": 660, "fr": 880, "en-description": 550}


@pytest.fixture(scope="session")
def localized_inputs(clips: Path) -> LocalizedInputs:
    d = clips / "localized"
    d.mkdir()
    japanese = write_subtitles(d / "embedded-ja.srt", "ja", "srt")
    source = make_clip(d / "source.mp4", ClipSpec(
        duration=SOURCE_SPEC.duration, width=320, height=180, frame_rate="25", language="eng",
        tone=TONES["en"], more_audio=(("spa", TONES["es"]),), subtitles=(("jpn", japanese),)))
    dub = make_dub(d / "fr.mp4", SOURCE_SPEC.duration + 0.3, TONES["fr"])
    description = make_dub(d / "en-ad.mp4", SOURCE_SPEC.duration, TONES["en-description"])
    return LocalizedInputs(source, {
        "--audio": (f"fr={dub}",),
        "--described-audio": (f"en={description}",),
        "--subtitles": (f"ar={write_subtitles(d / 'ar.srt', 'ar', 'srt')}",
                        f"th={write_subtitles(d / 'th.vtt', 'th', 'vtt', 'utf-16')}",
                        f"he={write_subtitles(d / 'he.ttml', 'he', 'ttml')}"),
        "--forced-subtitles": (f"en={write_subtitles(d / 'en-forced.vtt', 'en', 'vtt')}",),
        "--captions": (f"en={write_subtitles(d / 'en-sdh.ass', 'en', 'ass')}",),
    })


@pytest.fixture(scope="session")
def localized(localized_inputs: LocalizedInputs,
              tmp_path_factory: pytest.TempPathFactory) -> PackageResult:
    """The localized title packaged in the clear, English the default language."""
    out = tmp_path_factory.mktemp("localized") / "out"
    title = resolve_title(None, localized_inputs.options, default_language="en")
    return package(PackageRequest(source=localized_inputs.source, output=out, ladder="compact",
                                  segment_duration=SEGMENT_SECONDS, title=title))


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


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C reaches the CLI processes the tests interrupt, as in a terminal. A shell starts
    a background job (`make test &`, some CI runners) with SIGINT ignored; an ignored signal
    stays ignored across exec, and Python then installs no KeyboardInterrupt handler, so the
    tests' Ctrl-C would be lost. A handled signal is reset to its default across exec."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Self-signed P-256 certificate for 127.0.0.1 (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edge.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    d = tmp_path_factory.mktemp("tls")
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return d / "cert.pem", d / "key.pem"
