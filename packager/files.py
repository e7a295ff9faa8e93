"""Writing a file so that a crash leaves the old content or the whole new one, never a torn one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_durably(target: Path, payload: bytes, temp_prefix: str) -> None:
    """mkstemp beside the target (O_EXCL, mode 0600) → write → fsync → rename → fsync of the
    directory, so the rename itself survives a power cut. A temp file left by a writer killed
    mid-way carries `temp_prefix`, for the caller to recognise and clean. Raises OSError; the
    caller turns it into its own one-line error."""
    directory = target.parent if str(target.parent) else Path()
    fd, temp = tempfile.mkstemp(dir=directory, prefix=temp_prefix, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
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
