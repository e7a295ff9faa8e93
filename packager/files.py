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
