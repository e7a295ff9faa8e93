"""Job functions for the executor tests: module-level, so the workers (with the repository on
their PYTHONPATH) import them by name, as they import the packager's."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cluster.stage import S3Stage
from packager.errors import InputError
from packager.keys.model import ContentKey
from testbed.clips import ClipSpec, make_clip


@dataclass(frozen=True)
class ClipJob:
    """Encode `seconds` of a generated 640x360 clip with ffmpeg and stage it under `key`."""

    seconds: float
    stage: S3Stage
    key: str
    height: int = 360


@dataclass(frozen=True)
class Encoded:
    key: str
    sha256: str
    pid: int  # the worker process that ran the job


def encode_clip(job: ClipJob) -> Encoded:
    if job.seconds <= 0:
        raise InputError(f"{job.key}: a clip needs a positive length")
    with tempfile.TemporaryDirectory(prefix="cdnpack-job-") as work:
        path = make_clip(Path(work) / "clip.mp4", ClipSpec(
            duration=job.seconds, width=job.height * 16 // 9, height=job.height, audio=False))
        job.stage.put(path, job.key)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Encoded(job.key, digest, os.getpid())


@dataclass(frozen=True)
class KeyedJob:
    """A job that holds a content key, as one that encrypted on a worker would."""

    key: ContentKey


def kid_of(job: KeyedJob) -> str:
    return job.key.kid_uuid
