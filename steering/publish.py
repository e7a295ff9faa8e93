"""`cdnpack steer publish`: steering with no server to run.

The plan's documents go to S3 as static files, one per region and document
(`PREFIX/hls/<region>.json`, `PREFIX/dash/<region>.json`, `_overall` for unknown viewers),
cached for the steering TTL; beside them `PREFIX/cloudfront-function.js`, a CloudFront Function
(runtime cloudfront-js-2.0, viewer request) generated from the config that rewrites
`.../hls.json` to the viewer's region's document by CloudFront-Viewer-Country (or `?region=`).
Serve PREFIX through a distribution at the config's `steering.server` and associate the
function with that behaviour. Documents are uploaded before the function, so the function
never routes a viewer to a document that is not there yet. Static documents cannot react to
a session's own throughput: that needs `steer serve`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cdn.s3 import Connection, OriginError, S3Location, client, origin_error
from packager.errors import InputError
from packager.files import write_atomic
from probes.config import ProbeConfig
from steering.documents import DOCUMENTS, clones_for, document, encode
from steering.plan import OVERALL, Plan

RUNTIME = "cloudfront-js-2.0"
FUNCTION_NAME = "cloudfront-function.js"
_TEMPLATE = Path(__file__).resolve().with_name("cloudfront_function.js")
#: CloudFront Functions refuse code larger than this.
MAX_FUNCTION_BYTES = 10_240


@dataclass(frozen=True)
class StaticDocument:
    key: str  # relative to the prefix: "hls/eu.json"
    region: str  # region id or OVERALL
    order: tuple[str, ...]
    body: bytes


@dataclass(frozen=True)
class PublishRequest:
    destination: S3Location
    config: ProbeConfig
    plan: Plan
    connection: Connection
    function_file: Path | None = None  # also write the function's code here


@dataclass(frozen=True)
class PublishResult:
    destination: str
    documents: list[StaticDocument]
    function_key: str
    function_bytes: int
    function_file: str | None
    runtime: str = RUNTIME


def static_documents(plan: Plan, config: ProbeConfig) -> list[StaticDocument]:
    """Every region's (and unknown viewers') document of each kind, as uploaded."""
    steering = config.steering
    if steering is None:
        raise InputError(f"{config.path}: steering needs a `steering:` section")
    out: list[StaticDocument] = []
    for name in DOCUMENTS:
        for region in (*plan.regions, plan.overall):
            region_id = None if region.region == OVERALL else region.region
            doc = document(name, region.order, steering, clones_for(config, region_id))
            out.append(StaticDocument(f"{name.removesuffix('.json')}/{region.region}.json",
                                      region.region, region.order, encode(doc)))
    return out


def function_code(config: ProbeConfig) -> str:
    """The CloudFront Function for this config (countries -> regions, enabled or 410)."""
    steering = config.steering
    if steering is None:
        raise InputError(f"{config.path}: steering needs a `steering:` section")
    values = {
        "__COUNTRIES__": json.dumps({c: r.id for r in config.regions for c in r.countries},
                                    sort_keys=True),
        "__REGIONS__": json.dumps([r.id for r in config.regions]),
        "__ENABLED__": json.dumps(steering.enabled),
        "__OVERALL__": json.dumps(OVERALL),
    }
    code = _TEMPLATE.read_text()
    for placeholder, value in values.items():
        code = code.replace(placeholder, value)
    size = len(code.encode())
    if size > MAX_FUNCTION_BYTES:
        raise InputError(f"{config.path}: the CloudFront Function would be {size} bytes, over "
                         f"CloudFront's {MAX_FUNCTION_BYTES}: list fewer countries")
    return code


def publish(request: PublishRequest) -> PublishResult:
    documents = static_documents(request.plan, request.config)
    code = function_code(request.config)
    assert request.config.steering is not None
    s3 = client(request.connection)
    cache = f"public, max-age={request.config.steering.ttl}"
    for doc in documents:
        _put(s3, request.destination, doc.key, doc.body, "application/json", cache)
    _put(s3, request.destination, FUNCTION_NAME, code.encode(), "text/javascript", "no-store")
    if request.function_file is not None:
        write_atomic(request.function_file, code)
    return PublishResult(str(request.destination), documents,
                         request.destination.key(FUNCTION_NAME), len(code.encode()),
                         str(request.function_file) if request.function_file else None)


def _put(s3: Any, destination: S3Location, name: str, body: bytes, content_type: str,
         cache_control: str) -> None:
    """One small object, verified by the ETag S3 answers (the MD5 of what it stored)."""
    key = destination.key(name)
    try:
        answer = s3.put_object(Bucket=destination.bucket, Key=key, Body=body,
                               ContentType=content_type, CacheControl=cache_control)
    except (ClientError, BotoCoreError) as exc:
        raise origin_error(exc, f"cannot store s3://{destination.bucket}/{key}") from exc
    if answer.get("ETag", "").strip('"') != hashlib.md5(body, usedforsecurity=False).hexdigest():
        raise OriginError(f"verify: s3://{destination.bucket}/{key} was not stored with our bytes")
