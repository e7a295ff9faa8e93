"""The keys guard finds a content key wherever pickling would carry it to a worker: in the
packager's own job types (a track's encryption spec), in containers, closures and partials."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from cluster.keyguard import KeyTransportError, carries_key, check_jobs
from packager.encoding.ladder import Rendition
from packager.encryption.spec import EncryptionSpec
from packager.keys.model import ContentKey, KeySet
from packager.output.pipeline import track_encryption


def test_a_track_s_encryption_spec_carries_its_key() -> None:
    keyset = KeySet.generate("title", per_class=True)
    spec = EncryptionSpec("cbcs", keyset.distinct_keys[0], keyset=keyset, systems=("widevine",))
    video = Rendition("video_720p", "video", "h264", 1, height=720)
    assert carries_key(track_encryption(spec, video))
    assert carries_key([{"spec": spec}])
    assert not carries_key((Path("clip.mp4"), video, "cbcs", keyset.distinct_keys[0].kid))


def test_closures_and_partials_are_walked() -> None:
    key = ContentKey.generate()
    assert carries_key(functools.partial(print, key))
    assert carries_key(lambda: key.key)  # the cell holds the ContentKey itself


def test_a_keyed_job_is_refused_on_an_untrusted_link_only() -> None:
    key = ContentKey.generate()
    with pytest.raises(KeyTransportError, match=r"job 1 \(tuple\) carries a content key"):
        check_jobs(print, [("clear",), (key,)], trusted=False, where="tcp://h:8786")
    check_jobs(print, [(key,)], trusted=True, where="tls://h:8786")
    check_jobs(print, [("clear",)], trusted=False, where="tcp://h:8786")
