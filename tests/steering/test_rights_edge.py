"""The emulated edges (testbed/edges.py) run the published rights function in front of what
they serve: the very code and KeyValueStore data `rights publish --dry-run` writes, in node, on
real HTTP requests carrying the viewer's CloudFront-Viewer-Country."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from testbed.edges import Edges, EdgeSpec, edge_process
from tests.conftest import cdnpack_cli
from tests.steering.rights_release import current_rights, read_rights, write_release


@pytest.fixture(scope="module")
def edges(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edges]:
    work = tmp_path_factory.mktemp("rights-edge")
    release = work / "release"
    release.mkdir()
    write_release(release, read_rights(work, current_rights(datetime.now(UTC))))
    function, kvs = work / "function.js", work / "kvs.json"
    done = cdnpack_cli("rights", "publish", release, "s3://bucket-x/any", "--distribution",
                       "E1", "--url-path", "/", "--dry-run", "--function-file", function,
                       "--kvs-file", kvs)
    assert done.returncode == 0, done.stderr
    specs = [EdgeSpec("viewers", root=str(release), function=str(function), kvs=str(kvs),
                      cache="cloudfront"),
             EdgeSpec("brazil", root=str(release), function=str(function), kvs=str(kvs),
                      country="BR")]
    with edge_process(specs, work) as running:
        yield running


def get(edges: Edges, name: str, path: str, country: str | None = None) -> tuple[int, bytes]:
    headers = {"CloudFront-Viewer-Country": country} if country else {}
    request = urllib.request.Request(edges.url(name, path), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize(("path", "country", "status", "body"), [
    ("/master.m3u8", "BR", 200, b"master.grant-latam-sd.m3u8\n"),
    ("/manifest.mpd", "mx", 200, b"manifest.grant-latam-sd.mpd\n"),
    ("/video_480p/seg_00001.m4s", "BR", 200, b"video_480p/seg_00001.m4s\n"),
    ("/audio_es-419_dub/init.mp4", "BR", 200, b"audio_es-419_dub/init.mp4\n"),
    ("/video_720p/seg_00001.m4s", "BR", 403, b"Forbidden\n"),
    ("/audio_en/playlist.m3u8", "BR", 403, b"Forbidden\n"),
    ("/text_ja/seg_00001.vtt", "BR", 403, b"Forbidden\n"),
    ("/master.grant-jp-old.m3u8", "BR", 403, b"Forbidden\n"),
    ("/release.json", "BR", 403, b"Forbidden\n"),
    ("/video_480p/%2e%2e/video_1080p/init.mp4", "BR", 403, b"Forbidden\n"),
    ("/VIDEO_480P/../Video_1080p/seg_00001.m4s", "BR", 403, b"Forbidden\n"),
    ("/master.m3u8", "JP", 451, b"Unavailable For Legal Reasons\n"),  # closed
    ("/master.m3u8", "KR", 451, b"Unavailable For Legal Reasons\n"),  # not open yet
    ("/video_480p/seg_00001.m4s", "FR", 451, b"Unavailable For Legal Reasons\n"),  # never
    ("/master.m3u8", None, 451, b"Unavailable For Legal Reasons\n"),  # no header
])
def test_the_edge_answers_as_the_function_decides(
        edges: Edges, path: str, country: str | None, status: int, body: bytes) -> None:
    assert get(edges, "viewers", path, country) == (status, body)


def test_an_edges_own_viewers_country_applies_when_the_request_has_none(edges: Edges) -> None:
    assert get(edges, "brazil", "/master.m3u8") == (200, b"master.grant-latam-sd.m3u8\n")
    assert get(edges, "brazil", "/master.m3u8", "FR")[0] == 451
