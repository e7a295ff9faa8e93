"""Writing a file so that a crash leaves the old content or the whole new one, never a torn one.

The one atomic writer of cdnpack: keys (0600, durable), reports, results, manifests and configs
(the umask's mode) all go through write_durably, directly or through write_atomic.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from packager.errors import InputError


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_durably(target: Path, payload: bytes, temp_prefix: str, mode: int = 0o600) -> None:
    """mkstemp beside the target (O_EXCL) → write → chmod `mode` → fsync → rename → fsync of the
    directory, so the rename itself survives a power cut. A temp file left by a writer killed
    mid-way carries `temp_prefix`, for the caller to recognise and clean. Raises OSError; the
    caller turns it into its own one-line error."""
    directory = target.parent if str(target.parent) else Path()
    fd, temp = tempfile.mkstemp(dir=directory, prefix=temp_prefix, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            if mode != 0o600:  # mkstemp creates 0600
                os.fchmod(f.fileno(), mode)
            f.flush()
            os.fsync(f.fileno())
        Path(temp).replace(target)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(temp).unlink()
        raise


def write_atomic(path: Path, content: str | bytes) -> None:
    """A report, results file or other output people read: written aside and renamed into
    place (readers never see half a file), with the mode any new file gets under the umask
    (0644 usually), parents created. An unwritable place is one-line bad input (exit 2)."""
    payload = content.encode() if isinstance(content, str) else content
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_durably(path, payload, temp_prefix=f".{path.name}.", mode=0o666 & ~_umask())
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def read_bytes(path: Path, what: str) -> bytes:
    """The one way a command reads a file it was given: a missing, unreadable or empty file is
    one line naming it (exit 2), never an OSError's traceback."""
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a {what}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    if not data.strip():
        raise InputError(f"{path}: empty, not a {what}")
    return data


def read_text(path: Path, what: str) -> str:
    """A text file a command was given (config, ladder, results, release.json): UTF-8 (a BOM is
    dropped), nothing else. Random bytes or text in another encoding are one line naming the
    file and the byte where decoding failed, exit 2 — never a UnicodeDecodeError."""
    return decode_text(read_bytes(path, what), str(path), what)


def decode_text(data: bytes, where: str, what: str) -> str:
    """UTF-8 text of bytes read from `where` (a path or an s3:// URL), or a one-line error."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError(f"{where}: binary data (a NUL byte at {nul}), not a {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not UTF-8 text (byte {exc.start}), not a {what}") from None
