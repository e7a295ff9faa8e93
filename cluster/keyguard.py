"""Content keys never travel to a worker in the clear: every job is checked before it is sent.

cdnpack encrypts on the coordinator, where the keys are (docs/catalog.md says why): the jobs a
cluster runs encode clear video and audio and carry no key. This guard holds that line whatever a
future job type holds: each job is pickled, as Dask will send it, by a pickler that stops at any
`ContentKey` (the one type a key is held in: `KeySet`, `EncryptionSpec` and the keystore's
records all hold their keys as ContentKeys). A job that carries one is refused before anything is
submitted unless the link is trusted: an embedded LocalCluster (this machine, loopback) or TLS.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterable
from typing import Any

import cloudpickle

from packager.errors import InputError
from packager.keys.model import ContentKey


class KeyTransportError(InputError):
    """A job would carry a content key over a link that is not encrypted (exit 2)."""


class _KeyFound(Exception):
    pass


class _KeySniffer(cloudpickle.Pickler):  # type: ignore[misc]  # cloudpickle is untyped
    """Pickles as Dask does (cloudpickle: lambdas and closures by value, with what they hold),
    and stops at the first ContentKey."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, ContentKey):
            raise _KeyFound
        return super().reducer_override(obj)


def carries_key(payload: Any) -> bool:
    """Whether a key would reach a worker if `payload` were sent: anywhere in the object graph
    that pickling walks (dataclass fields, containers, a closure's cells, a partial's args)."""
    try:
        _KeySniffer(io.BytesIO(), protocol=pickle.HIGHEST_PROTOCOL).dump(payload)
    except _KeyFound:
        return True
    return False


def check_jobs(fn: Any, jobs: Iterable[Any], trusted: bool, where: str) -> None:
    """Refuse, before anything is submitted, jobs that would send a key over a clear link."""
    if trusted:
        return
    for index, job in enumerate(jobs):
        if carries_key((fn, job)):
            raise KeyTransportError(
                f"job {index} ({type(job).__name__}) carries a content key and the link to the "
                f"Dask scheduler at {where} is not TLS: refusing to send it (use a tls:// "
                "scheduler with --tls-ca/--tls-cert/--tls-key)")
