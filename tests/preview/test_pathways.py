"""A steered release's pathways read back from its manifests, and those manifests pointed at the
preview's own files: every URI of every pathway names a file of the release under
/pathway/<id>/, the steering server is the preview's, and nothing else changes. Each region's
order reaches the preview's steering documents over the release's pathways only."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace

import m3u8
import pytest
from lxml import etree

from packager.output.pipeline import PackageResult
from packager.output.release import read_release, write_release
from packager.output.steering import Pathway, SteeringSpec, steer_files
from preview.contents import Contents, read_contents
from preview.pathways import local_mpd, local_multivariant, read_steering
from preview.regions import RegionOrder, order_for, steering_document
from steering.plan import OVERALL

SPEC = SteeringSpec("https://steer.example/v1/hls.json", "https://steer.example/v1/dash.json",
                    (Pathway("alpha", "https://alpha.example/rel/"),
                     Pathway("beta", "http://beta.example:8080/x/y/")))
MPD = "{urn:mpeg:dash:schema:mpd:2011}"


@pytest.fixture(scope="module")
def steered(packaged: PackageResult, tmp_path_factory: pytest.TempPathFactory) -> Contents:
    """The session's release, steered as `package --steering` steers it."""
    root = tmp_path_factory.mktemp("steered") / "release"
    shutil.copytree(packaged.output, root)
    release = read_release(root)
    write_release(root, replace(release, files=steer_files(root, release.files, SPEC)))
    return read_contents(root)


def test_the_pathways_and_servers_come_from_the_manifests(steered: Contents) -> None:
    found = read_steering(steered)
    assert found is not None
    assert found.pathways == SPEC.pathways
    assert found.default == "alpha"
    assert found.servers == {"hls": SPEC.hls_server_uri, "dash": SPEC.dash_server_uri}


def test_a_release_that_is_not_steered_has_no_pathways(packaged: PackageResult) -> None:
    assert read_steering(read_contents(packaged.output)) is None


def test_every_uri_of_every_pathway_names_a_release_file_on_the_preview(
        steered: Contents) -> None:
    found = read_steering(steered)
    assert found is not None
    text = local_multivariant((steered.root / "master.m3u8").read_text(), found, steered.paths)
    assert "alpha.example" not in text
    assert "beta.example" not in text
    assert '#EXT-X-CONTENT-STEERING:SERVER-URI="/steering/hls.json",PATHWAY-ID="alpha"' in text
    playlist = m3u8.loads(text)
    uris = [(p.stream_info.pathway_id, p.uri) for p in playlist.playlists]
    uris += [(i.iframe_stream_info.pathway_id, i.uri) for i in playlist.iframe_playlists]
    uris += [(re.sub(r"^.*-", "", m.group_id), m.uri) for m in playlist.media if m.uri]
    assert {pathway for pathway, _ in uris} == {"alpha", "beta"}
    for pathway, uri in uris:
        prefix = f"/pathway/{pathway}/"
        assert uri.startswith(prefix), uri
        assert uri.removeprefix(prefix) in steered.paths, uri
    # Nothing but URIs changed: each line is the steered one with its host part replaced.
    before = (steered.root / "master.m3u8").read_text().splitlines()
    after = text.splitlines()
    assert len(before) == len(after)
    for old, new in zip(before, after, strict=True):
        stripped = old.replace("https://alpha.example/rel/", "/pathway/alpha/").replace(
            "http://beta.example:8080/x/y/", "/pathway/beta/").replace(
            SPEC.hls_server_uri, "/steering/hls.json")
        assert new == stripped


def test_each_base_url_of_the_mpd_is_its_pathway_on_the_preview(steered: Contents) -> None:
    found = read_steering(steered)
    assert found is not None
    original = (steered.root / "manifest.mpd").read_text()
    text = local_mpd(original, found)
    root = etree.fromstring(text.encode())
    assert {b.get("serviceLocation"): b.text for b in root.findall(f"{MPD}BaseURL")} == {
        "alpha": "/pathway/alpha/", "beta": "/pathway/beta/"}
    steering = root.find(f"{MPD}ContentSteering")
    assert steering is not None
    assert steering.text == "/steering/dash.json"
    assert steering.get("defaultServiceLocation") == "alpha"
    period = original.index("<Period")
    assert text[text.index("<Period"):] == original[period:]


REGIONS = (
    RegionOrder("eu", "Europe", ("beta", "alpha"), "measured", ()),
    RegionOrder("jpkr", "Japan / Korea", ("gamma", "alpha", "beta"), "measured", ()),
    RegionOrder(OVERALL, "viewers of no region", ("alpha", "beta"), "measured", ()),
)


@pytest.mark.parametrize(("region", "order"), [
    ("eu", ("beta", "alpha")),
    ("jpkr", ("alpha", "beta")),  # gamma is not a pathway of this release
    ("sea", ("alpha", "beta")),  # a region the plan does not know: the overall order
    (None, ("alpha", "beta")),
])
def test_a_region_gets_its_order_over_the_release_pathways(
        region: str | None, order: tuple[str, ...]) -> None:
    assert order_for(REGIONS, region, ("alpha", "beta")) == order


def test_without_a_plan_every_region_gets_the_manifests_order() -> None:
    assert order_for((), "eu", ("alpha", "beta")) == ("alpha", "beta")


def test_the_steering_documents_carry_the_order() -> None:
    hls = json.loads(steering_document("hls.json", ("beta", "alpha")))
    assert hls == {"VERSION": 1, "TTL": 10, "PATHWAY-PRIORITY": ["beta", "alpha"]}
    dash = json.loads(steering_document("dash.json", ("beta", "alpha")))
    assert dash["PATHWAY-PRIORITY"] == dash["SERVICE-LOCATION-PRIORITY"] == ["beta", "alpha"]
