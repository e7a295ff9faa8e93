"""Where each title of a catalog stands, read from its destination: its published release.json
(and the objects it lists) and the record of its last failed attempt.

The state lives on the origin, beside what it describes, so `catalog status` on any machine (a
laptop, a CI job) sees what a `catalog run` elsewhere did:
  DESTINATION/release.json                 the release as published, with the inputs it was made
                                           from; uploaded after its manifests, so it exists only
                                           for a release whose every object is there
  DESTINATION/_cdnpack/catalog-status.json the last failed attempt: its one-line reason, exit
                                           code, time and inputs; deleted when the title is
                                           published. Not a release file: a distribution should
                                           not serve _cdnpack/ (it names no secret either way:
                                           presigned URLs are cut from reasons).
A title is up to date when its published inputs equal its current ones and every object its
release.json lists is on the origin with its size; failed when its last attempt, with these
inputs, failed; to do otherwise.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from cdn.objects import get_json, put_json
from cdn.s3 import S3Location, delete_keys, list_prefix
from packager.errors import InputError
from packager.output.release import RELEASE_NAME, Release, ReleaseInputs, parse_release, typed
from release.catalog_file import Catalog, TitleSpec
from release.inputs import InputHashes, source_facts, title_inputs

STATUS_NAME = "_cdnpack/catalog-status.json"
UP_TO_DATE = "up to date"
TO_DO = "to do"
FAILED = "failed"
#: Titles whose state is read at once (each a HEAD or a hash, a GET and a listing).
PLAN_THREADS = 16
_SIGNED_QUERY = re.compile(r"(https?://[^\s?]+)\?\S*")


@dataclass(frozen=True)
class Failure:
    reason: str
    exit_code: int
    at: str  # ISO 8601, UTC
    inputs: ReleaseInputs


@dataclass(frozen=True)
class TitleState:
    spec: TitleSpec
    inputs: ReleaseInputs
    state: str  # UP_TO_DATE, TO_DO or FAILED
    #: The release published at the destination now (None: nothing is published there).
    published: Release | None
    failure: Failure | None  # the last failed attempt, with these inputs
    note: str = ""  # why a published title is to do

    @property
    def url(self) -> str:
        return str(self.spec.destination)


def plan_catalog(catalog: Catalog, s3: Any,
                 hashes: InputHashes | None = None) -> list[TitleState]:
    """Every title's state, read concurrently; a source that is not there is refused (exit 2)
    before anything is known of the others."""
    cache = hashes or InputHashes(catalog.path)
    with ThreadPoolExecutor(max_workers=min(PLAN_THREADS, len(catalog.titles))) as pool:
        states = list(pool.map(lambda spec: title_state(spec, s3, cache), catalog.titles))
    cache.save()
    return states


def title_state(spec: TitleSpec, s3: Any, hashes: InputHashes) -> TitleState:
    try:
        inputs = title_inputs(spec, source_facts(spec, s3, hashes), hashes)
    except InputError as exc:
        raise InputError(f"title {spec.id}: {exc}") from None
    published = published_release(s3, spec.destination)
    failure = last_failure(s3, spec.destination)
    if failure is not None and failure.inputs != inputs:
        failure = None  # a failure of other inputs says nothing of these
    note = ""
    if published is not None and published.inputs == inputs:
        missing = missing_objects(s3, spec.destination, published)
        if not missing:
            return TitleState(spec, inputs, UP_TO_DATE, published, None)
        note = f"{len(missing)} published object(s) missing, {missing[0]} first"
    elif published is not None:
        note = "changed since it was published"
    state = FAILED if failure is not None else TO_DO
    return TitleState(spec, inputs, state, published, failure, note)


def published_release(s3: Any, destination: S3Location) -> Release | None:
    """The release.json published at the destination; one not ours (or damaged) is as good
    as none: the title is released again over it."""
    doc = get_json(s3, destination, RELEASE_NAME)
    if doc is None:
        return None
    try:
        return parse_release(json.dumps(doc), f"{destination}/{RELEASE_NAME}")
    except InputError:
        return None


def missing_objects(s3: Any, destination: S3Location, release: Release) -> list[str]:
    """Objects release.json lists that are not on the origin with their size."""
    stored = list_prefix(s3, destination)
    return [f.path for f in release.files
            if (o := stored.get(destination.key(f.path))) is None or o.size != f.bytes]


def last_failure(s3: Any, destination: S3Location) -> Failure | None:
    doc = get_json(s3, destination, STATUS_NAME)
    if doc is None:
        return None
    try:
        return typed(Failure, doc, STATUS_NAME)
    except InputError:
        return None


def record_failure(s3: Any, state: TitleState, reason: str, exit_code: int) -> Failure:
    """The failed attempt, under the title's destination (see above)."""
    failure = Failure(one_line(reason), exit_code, datetime.now(UTC).isoformat(timespec="seconds"),
                      state.inputs)
    put_json(s3, state.spec.destination, STATUS_NAME, asdict(failure))
    return failure


def clear_failure(s3: Any, state: TitleState) -> None:
    delete_keys(s3, state.spec.destination.bucket, [state.spec.destination.key(STATUS_NAME)])


def one_line(reason: str) -> str:
    """A reason as it may be stored: one line, presigned URLs without their signature."""
    return _SIGNED_QUERY.sub(r"\1", " ".join(reason.split()))
