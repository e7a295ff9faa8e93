"""`cdnpack steer publish`: static documents per region in S3, and a CloudFront Function that,
run in node on CloudFront's event shape, routes every region's countries to that region's
document and everyone else to the overall one."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from probes.config import load_config
from testbed.origin import origin_bucket
from tests.conftest import cdnpack_cli
from tests.moto import MotoServer
from tests.steering.conftest import CONFIG, write_config
from tests.steering.results import Delivery, write_run

RUNNER = Path(__file__).with_name("cloudfront_run.mjs")
FAST = Delivery(ttfb=0.03, startup=0.3)
SLOW = Delivery(ttfb=0.20, startup=1.5)


def event(uri: str, country: str | None = None, query: dict[str, str] | None = None
          ) -> dict[str, Any]:
    """A viewer-request event as CloudFront hands it to a function (JavaScript runtime 2.0)."""
    headers = {"host": {"value": "d111111abcdef8.cloudfront.net"}}
    if country is not None:
        headers["cloudfront-viewer-country"] = {"value": country}
    return {
        "version": "1.0",
        "context": {"distributionDomainName": "d111111abcdef8.cloudfront.net",
                    "distributionId": "EDFDVBD6EXAMPLE", "eventType": "viewer-request",
                    "requestId": "4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ=="},
        "viewer": {"ip": "198.51.100.11"},
        "request": {"method": "GET", "uri": uri,
                    "querystring": {k: {"value": v} for k, v in (query or {}).items()},
                    "headers": headers, "cookies": {}},
    }


def run_function(code: Path, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if shutil.which("node") is None:
        pytest.skip("node is not installed (`make test` installs it with the browser tests)")
    done = subprocess.run(["node", str(RUNNER), str(code)], input="".join(
        json.dumps(e) + "\n" for e in events), capture_output=True, text=True, check=False,
        timeout=60)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture
def published(moto_s3: MotoServer, tmp_path: Path) -> tuple[dict[str, Any], Path, Path]:
    config = write_config(tmp_path)
    results = tmp_path / "results"
    results.mkdir()
    write_run(results, "eu", {"alpha": SLOW, "beta": FAST})
    write_run(results, "jpkr", {"alpha": FAST, "beta": SLOW})
    origin_bucket(moto_s3.client("s3"), "steering")
    function = tmp_path / "function.js"
    done = cdnpack_cli("steer", "publish", "s3://steering/v1", "--config", config, "--results",
                       results, "--function-file", function, "--endpoint-url", moto_s3.url,
                       "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), config, function


def test_publish_stores_each_regions_documents(
        moto_s3: MotoServer, published: tuple[dict[str, Any], Path, Path]) -> None:
    doc, _, _ = published
    s3 = moto_s3.client("s3")
    keys = {d["key"]: d["order"] for d in doc["documents"]}
    assert keys["hls/eu.json"] == ["beta", "alpha"]
    assert keys["dash/jpkr.json"] == ["alpha", "beta"]
    assert keys["hls/sea.json"] == ["alpha", "beta"]  # no data: the config's order
    assert set(keys) == {f"{kind}/{r}.json" for kind in ("hls", "dash")
                         for r in ("eu", "jpkr", "sea", "_overall")}
    stored = s3.get_object(Bucket="steering", Key="v1/hls/eu.json")
    assert stored["ContentType"] == "application/json"
    assert stored["CacheControl"] == "public, max-age=7"
    body = json.loads(stored["Body"].read())
    assert body["PATHWAY-PRIORITY"] == ["beta", "alpha"]
    assert body["RELOAD-URI"] == "https://steer.example/v1/hls.json?reload=1"
    dash = json.loads(s3.get_object(Bucket="steering", Key="v1/dash/eu.json")["Body"].read())
    assert dash["SERVICE-LOCATION-PRIORITY"] == ["beta", "alpha"]
    function = s3.get_object(Bucket="steering", Key="v1/cloudfront-function.js")
    assert function["Body"].read().decode() == published[2].read_text()
    assert doc["function"]["runtime"] == "cloudfront-js-2.0"


def test_the_function_answers_each_regions_countries_and_the_overall_document_otherwise(
        moto_s3: MotoServer, published: tuple[dict[str, Any], Path, Path]) -> None:
    _, config_path, function = published
    config = load_config(config_path)
    cases: list[tuple[dict[str, Any], str]] = []
    for kind in ("hls", "dash"):
        for region in config.regions:
            for country in region.countries:
                cases.append((event(f"/v1/{kind}.json", country), f"/v1/{kind}/{region.id}.json"))
                cases.append((event(f"/v1/{kind}.json", country.lower()),
                              f"/v1/{kind}/{region.id}.json"))
        for country in ("US", "BR", "ZZ", "", "<script>"):
            cases.append((event(f"/v1/{kind}.json", country), f"/v1/{kind}/_overall.json"))
        cases.append((event(f"/v1/{kind}.json"), f"/v1/{kind}/_overall.json"))
        cases.append((event(f"/v1/{kind}.json", "FR", {"region": "jpkr"}),
                      f"/v1/{kind}/jpkr.json"))
        cases.append((event(f"/v1/{kind}.json", "FR", {"region": "__proto__"}),
                      f"/v1/{kind}/eu.json"))
        cases.append((event(f"/v1/{kind}.json", "FR", {"reload": "1", "_HLS_pathway": "x"}),
                      f"/v1/{kind}/eu.json"))
    cases.append((event("/v1/other.json", "FR"), "/v1/other.json"))
    answers = run_function(function, [e for e, _ in cases])
    assert [a["uri"] for a in answers] == [uri for _, uri in cases]
    # Every document the function routes to is in the bucket.
    s3 = moto_s3.client("s3")
    for uri in {uri for _, uri in cases if "/other" not in uri}:
        s3.head_object(Bucket="steering", Key=uri.lstrip("/"))


def test_a_disabled_config_publishes_a_function_answering_410(
        moto_s3: MotoServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, CONFIG + "  enabled: false\n")
    results = tmp_path / "results"
    results.mkdir()
    write_run(results, "eu", {"alpha": SLOW, "beta": FAST})
    origin_bucket(moto_s3.client("s3"), "steering")
    function = tmp_path / "function.js"
    done = cdnpack_cli("steer", "publish", "s3://steering/v1", "--config", config, "--results",
                       results, "--function-file", function, "--endpoint-url", moto_s3.url)
    assert done.returncode == 0, done.stderr
    (gone, untouched) = run_function(function, [event("/v1/hls.json", "FR"),
                                                event("/v1/index.html", "FR")])
    assert gone["statusCode"] == 410
    assert untouched["uri"] == "/v1/index.html"
