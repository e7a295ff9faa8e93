"""The rights function at the edge: the code `rights publish` publishes, run in node on
CloudFront's viewer-request events with its KeyValueStore loaded from the `--kvs-file` the
release's rights generate, over every territory x instant x path class.

Instants: a millisecond before each window opens, its start, inside, a millisecond before its
end, its end, after. Countries: every grant's, others no grant has, a lower-case one, a
malformed one, none at all. Paths: the release's manifests, its grants' manifests, every
rendition's playlist, init and segment, other files, in upper and mixed case, with query
strings, and with `..`, `%2e%2e`, `%2f`, backslashes and repeated slashes that resolve into
(or out of) what a grant allows. What each must get is worked out here, independently, from
the rights model: the grant in force and what it allows.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

from packager.output.grants import grant_manifest
from packager.output.release import Release
from packager.rights.instants import epoch_ms, parse_instant
from packager.rights.model import Rights
from testbed.cloudfront_runtime import Call, run_calls, viewer_request
from tests.conftest import cdnpack_cli
from tests.steering.rights_release import read_rights, write_release

FUNCTION = Path(__file__).resolve().parents[2] / "steering" / "rights_function.js"
ROOT = "/releases/Demo-Title"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Rights, Release, Path, Path]:
    """The release's rights, and the function and KeyValueStore data `rights publish
    --dry-run` writes for it (--function-file, --kvs-file): what the edge would run."""
    work = tmp_path_factory.mktemp("rights")
    rights = read_rights(work)
    (work / "release").mkdir()
    release = write_release(work / "release", rights)
    function, kvs = work / "function.js", work / "kvs.json"
    done = cdnpack_cli("rights", "publish", work / "release", "s3://bucket-x" + ROOT.lower(),
                       "--distribution", "E1", "--url-path", ROOT + "/", "--dry-run",
                       "--function-file", function, "--kvs-file", kvs)
    assert done.returncode == 0, done.stderr
    return rights, release, function, kvs


@pytest.fixture(scope="module")
def rights(published: tuple[Rights, Release, Path, Path]) -> Rights:
    return published[0]


@pytest.fixture(scope="module")
def release(published: tuple[Rights, Release, Path, Path]) -> Release:
    return published[1]


@pytest.fixture(scope="module")
def function(published: tuple[Rights, Release, Path, Path]) -> Path:
    assert published[2].read_text() == FUNCTION.read_text()  # published as written
    return published[2]


@pytest.fixture(scope="module")
def kvs_file(published: tuple[Rights, Release, Path, Path]) -> Path:
    return published[3]


def canonical(uri: str) -> list[str]:
    """The request path as the edge must judge it: decoded, `\\` as `/`, dot segments and
    empty ones resolved (RFC 3986 §5.2.4), never above the root."""
    out: list[str] = []
    for part in unquote(uri).replace("\\", "/").split("/"):
        if part == "..":
            if out:
                out.pop()
        elif part not in ("", "."):
            out.append(part)
    return out


def expected(release: Release, rights: Rights, uri: str, country: str | None,
             now_ms: int) -> tuple[int, str]:
    """(200 and the URI the origin gets, or the status) for one request."""
    parts = canonical(uri)
    root = canonical(ROOT)
    if [p.lower() for p in parts[:len(root)]] != [p.lower() for p in root] or (
            len(parts) <= len(root)):
        return 200, uri  # not the release's: untouched
    code = (country or "").strip().upper()
    grant = next((g for g in rights.grants if code in g.territories
                  and epoch_ms(g.start) <= now_ms
                  and (g.end is None or now_ms < epoch_ms(g.end))), None)
    if grant is None:
        return 451, ""
    rel = parts[len(root):]
    forwarded = "/" + "/".join(quote(p, safe="!~*'()") for p in parts)
    summary = next(s for s in release.rights if s.id == grant.id)
    if len(rel) == 1:
        name = rel[0].lower()
        if name in ("master.m3u8", "manifest.mpd"):
            target = grant_manifest(rel[0], grant.id)
            assert target.lower() in set(summary.manifests.values())
            return 200, posixpath.join(posixpath.dirname(forwarded), quote(target))
        if name in summary.manifests.values():
            return 200, forwarded
        return 403, ""
    if len(rel) == 2 and rel[0].lower() in {r.lower() for r in summary.renditions}:
        return 200, forwarded
    return 403, ""


def paths(release: Release) -> Iterator[str]:
    """Every path class, and the tricks that would reach another."""
    for f in release.files:
        yield f"{ROOT}/{f.path}"
    yield f"{ROOT}/release.json"
    yield f"{ROOT}/MASTER.M3U8"
    yield f"{ROOT.upper()}/Manifest.MPD"
    yield f"{ROOT.lower()}/VIDEO_1080P/SEG_00001.M4S"
    yield f"{ROOT}/Video_720p/playlist.m3u8"
    yield f"{ROOT}/master.GRANT-LATAM-SD.m3u8"
    yield f"{ROOT}/video_480p/../video_1080p/seg_00001.m4s"
    yield f"{ROOT}/video_1080p/../video_480p/seg_00001.m4s"
    yield f"{ROOT}/video_480p/%2e%2e/video_1080p/init.mp4"
    yield f"{ROOT}/video_480p/%2E%2E%2Fvideo_1080p%2Finit.mp4"
    yield f"{ROOT}/video_480p%2f..%2f..%2fDemo-Title%2fvideo_1080p/init.mp4"
    yield f"{ROOT}/video_480p/%5c..%5cvideo_1080p%5cinit.mp4"
    yield "//releases///Demo-Title//video_1080p//seg_00001.m4s"
    yield f"/other/../{ROOT}/audio_ja_dub/seg_00002.m4s"
    yield f"{ROOT}/./audio_es-419_dub/./init.mp4"
    yield f"{ROOT}/text_en/../../Demo-Title/master.m3u8"
    yield f"{ROOT}/video_720p/deeper/seg_00001.m4s"
    yield f"{ROOT}/unknown_dir/seg_00001.m4s"
    yield f"{ROOT}/master.m3u8%3Fgrant=jp-hd"
    yield f"{ROOT}/audio_es-419_dub/seg_00002.m4s;jsessionid=1"
    yield f"{ROOT}/../../{ROOT}/video_1080p/init.mp4"
    yield f"{ROOT}"
    yield f"{ROOT}/"
    yield "/releases/other-title/video_1080p/seg_00001.m4s"
    yield "/favicon.ico"


def instants(rights: Rights) -> list[int]:
    ms = timedelta(milliseconds=1)
    out = set()
    for g in rights.grants:
        out |= {g.start - ms, g.start, g.start + timedelta(days=30)}
        if g.end is not None:
            out |= {g.end - ms, g.end, g.end + timedelta(days=400)}
    return sorted(epoch_ms(t) for t in out)


COUNTRIES = ("JP", "KR", "BR", "MX", "jp", " kr ", "FR", "US", "ZZ", "", "J", "JPN", None)


@pytest.mark.slow  # some 10,000 requests through node
def test_every_territory_instant_and_path_class_gets_its_answer(
        release: Release, rights: Rights, function: Path, kvs_file: Path) -> None:
    cases = [(uri, country, now) for uri in paths(release) for country in COUNTRIES
             for now in instants(rights)]
    queries: tuple[dict[str, str], ...] = ({}, {"grant": "jp-hd", "x": "../video_1080p/x"})
    calls = [Call(viewer_request(uri, country, queries[i % 2]), now)
             for i, (uri, country, now) in enumerate(cases)]
    answers = run_calls(function, kvs_file, calls)
    outcomes: dict[int, int] = {}
    for (uri, country, now), answer in zip(cases, answers, strict=True):
        assert "error" not in answer, (uri, country, answer)
        result = answer["result"]
        status, target = expected(release, rights, uri, country, now)
        outcomes[status] = outcomes.get(status, 0) + 1
        where = f"{uri} from {country!r} at {now}"
        if status == 200:
            assert "statusCode" not in result, f"{where}: {result}"
            assert result["uri"] == target, where
        else:
            assert result.get("statusCode") == status, f"{where}: {result}"
            assert result["headers"]["cache-control"]["value"] == "no-store"
            assert result["headers"]["access-control-allow-origin"]["value"] == "*"
    assert set(outcomes) == {200, 403, 451}  # every class was met
    assert len(cases) > 10_000


def test_a_licensed_viewers_manifest_is_its_grants_and_exists(
        release: Release, function: Path, kvs_file: Path) -> None:
    now = epoch_ms(release_start(release, "jp-hd") + timedelta(days=1))
    [hls, dash] = run_calls(function, kvs_file, [
        Call(viewer_request(f"{ROOT}/master.m3u8", "KR"), now),
        Call(viewer_request(f"{ROOT}/manifest.mpd", "JP"), now)])
    listed = {f"{ROOT}/{f.path}" for f in release.files}
    assert hls["result"]["uri"] == f"{ROOT}/master.grant-jp-hd.m3u8"
    assert dash["result"]["uri"] == f"{ROOT}/manifest.grant-jp-hd.mpd"
    assert {hls["result"]["uri"], dash["result"]["uri"]} <= listed


def release_start(release: Release, grant_id: str) -> datetime:
    return parse_instant(next(g.start for g in release.rights if g.id == grant_id))


def test_malformed_escapes_are_refused(function: Path, kvs_file: Path) -> None:
    [answer] = run_calls(function, kvs_file, [Call(viewer_request(f"{ROOT}/%E0%A4%A", "JP"))])
    assert answer["result"]["statusCode"] == 400


def test_the_kvs_file_is_the_import_format_within_the_stores_limits(kvs_file: Path) -> None:
    doc = json.loads(kvs_file.read_text())
    assert set(doc) == {"data"}
    assert all(set(item) == {"key", "value"} for item in doc["data"])
    assert all(len(i["key"].encode()) <= 512 and len(i["value"].encode()) <= 1024
               for i in doc["data"])
    keys = [i["key"] for i in doc["data"]]
    assert len(keys) == len(set(keys))
    assert keys[0] == ROOT.lower()
