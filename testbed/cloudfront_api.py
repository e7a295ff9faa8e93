"""A local stand-in for the CloudFront API that `rights publish` calls: CloudFront Functions,
KeyValueStores (the control plane and the data plane of the KeyValueStore API), distribution
configurations and invalidations; every other request (S3) goes on to an upstream endpoint
(moto_server).

moto 5.2.6 has CreateFunction, DescribeFunction and GetFunction but no UpdateFunction or
PublishFunction, creates KeyValueStores but has no KeyValueStore API at all, and keeps no
FunctionAssociations in a distribution's configuration (it drops them, and accepts any
If-Match). So this stand-in answers those, on the wire as AWS does, strictly:
  * each request is matched to its operation by method and path (the service model's
    requestUri), parsed by the operation's input shape (rest-xml for CloudFront, rest-json for
    the KeyValueStore API) and validated against it with botocore's ParamValidator, plus the
    model's maximum lengths and values; a request that does not conform is a 400;
  * signatures are verified: SigV4 (HMAC) for CloudFront, scoped to us-east-1/cloudfront, and
    SigV4A (ECDSA P-256, X-Amz-Region-Set signed) for the KeyValueStore API, as AWS requires;
  * ETags are versions: every write takes If-Match and fails with the service's own error
    (PreconditionFailed, ConflictException) when it is not the current one;
  * the limits are the service's: function code 10 KB, KeyValueStore keys 512 bytes (the
    model's own maximum is 1,024), values 1 KB, 5 MB a store, 50 keys per UpdateKeys.
Responses are serialized from the operations' output shapes (moto's serializer).
`calls` records every operation answered, for tests to see what was asked.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.model import OperationModel, Shape
from botocore.validate import ParamValidator
from moto.core.parse import PROTOCOL_PARSERS
from moto.core.serialize import get_serializer_class
from moto.core.utils import get_service_model
from werkzeug.datastructures import Headers, MultiDict

from cdn.sigv4a import SigV4AAuth, verify
from testbed.loopthread import LoopThread
from testbed.origin import FAKE_CREDENTIALS

ACCOUNT = "123456789012"
MAX_FUNCTION_BYTES = 10_240
MAX_KEY_BYTES = 512
MAX_VALUE_BYTES = 1024
MAX_STORE_BYTES = 5 * 1024 * 1024
MAX_KEYS_PER_UPDATE = 50
RUNTIMES = ("cloudfront-js-1.0", "cloudfront-js-2.0")
_AUTHORIZATION = re.compile(
    r"^(?P<algorithm>AWS4-HMAC-SHA256|AWS4-ECDSA-P256-SHA256) Credential=(?P<key>[^/]+)/"
    r"(?P<scope>[^,]+), SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]+)$")


class ApiError(Exception):
    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


def _etag() -> str:
    return uuid.uuid4().hex[:13].upper()


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class FunctionStage:
    config: dict[str, Any]
    code: bytes
    etag: str
    modified: datetime


@dataclass
class Function:
    name: str
    arn: str
    created: datetime
    development: FunctionStage
    live: FunctionStage | None = None


@dataclass
class Store:
    name: str
    id: str
    arn: str
    comment: str
    etag: str  # the resource's (CloudFront API)
    created: datetime
    data: dict[str, str] = field(default_factory=dict)
    version: str = field(default_factory=_etag)  # the data's (KeyValueStore API)
    describes: int = 0  # PROVISIONING on the first describe, then READY, as AWS shows it

    @property
    def size(self) -> int:
        return sum(len(k.encode()) + len(v.encode()) for k, v in self.data.items())


@dataclass
class Distribution:
    id: str
    config: dict[str, Any]
    etag: str
    invalidations: dict[str, dict[str, Any]] = field(default_factory=dict)


class CloudFrontApi:
    """The state and the operations; CloudFrontStandIn puts them on HTTP."""

    def __init__(self) -> None:
        self.functions: dict[str, Function] = {}
        self.stores: dict[str, Store] = {}
        self.distributions: dict[str, Distribution] = {}
        self.policies: dict[str, dict[str, Any]] = {}  # origin request policies
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            name: getattr(self, "op_" + re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower())
            for name in ("CreateFunction", "DescribeFunction", "GetFunction", "UpdateFunction",
                         "PublishFunction", "CreateKeyValueStore", "DescribeKeyValueStore",
                         "CreateDistribution", "GetDistributionConfig", "UpdateDistribution",
                         "CreateInvalidation", "GetInvalidation", "CreateOriginRequestPolicy",
                         "GetOriginRequestPolicy", "GetCachePolicy")}
        self.kvs_handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "DescribeKeyValueStore": self.kvs_describe, "ListKeys": self.kvs_list_keys,
            "UpdateKeys": self.kvs_update_keys, "GetKey": self.kvs_get_key}

    # --- CloudFront Functions ---------------------------------------------------------------

    def _function(self, name: str) -> Function:
        if name not in self.functions:
            raise ApiError("NoSuchFunctionExists", 404, f"function {name} does not exist")
        return self.functions[name]

    def _check_function(self, config: dict[str, Any], code: bytes) -> None:
        if len(code) > MAX_FUNCTION_BYTES:
            raise ApiError("FunctionSizeLimitExceeded", 413,
                           f"function code is {len(code)} bytes, over {MAX_FUNCTION_BYTES}")
        if config["Runtime"] not in RUNTIMES:
            raise ApiError("InvalidArgument", 400, f"runtime {config['Runtime']}")
        stores = config.get("KeyValueStoreAssociations", {}).get("Items", [])
        if stores and config["Runtime"] != "cloudfront-js-2.0":
            raise ApiError("InvalidArgument", 400, "key value stores need cloudfront-js-2.0")
        if len(stores) > 1:
            raise ApiError("InvalidArgument", 400, "one key value store per function")
        for item in stores:
            if not any(s.arn == item["KeyValueStoreARN"] for s in self.stores.values()):
                raise ApiError("InvalidArgument", 400, f"no store {item['KeyValueStoreARN']}")

    def _summary(self, function: Function, stage: str) -> dict[str, Any]:
        state = function.development if stage == "DEVELOPMENT" else function.live
        assert state is not None
        status = "UNPUBLISHED" if function.live is None else "DEPLOYED"
        return {"Name": function.name, "Status": status, "FunctionConfig": state.config,
                "FunctionMetadata": {"FunctionARN": function.arn, "Stage": stage,
                                     "CreatedTime": function.created,
                                     "LastModifiedTime": state.modified}}

    def _stage(self, function: Function, stage: str | None) -> FunctionStage:
        if stage in (None, "DEVELOPMENT"):
            return function.development
        if function.live is None:
            raise ApiError("NoSuchFunctionExists", 404, f"{function.name} is not published")
        return function.live

    def op_create_function(self, p: dict[str, Any]) -> dict[str, Any]:
        if p["Name"] in self.functions:
            raise ApiError("FunctionAlreadyExists", 409, f"function {p['Name']} exists")
        self._check_function(p["FunctionConfig"], p["FunctionCode"])
        arn = f"arn:aws:cloudfront::{ACCOUNT}:function/{p['Name']}"
        stage = FunctionStage(p["FunctionConfig"], p["FunctionCode"], _etag(), _now())
        function = Function(p["Name"], arn, _now(), stage)
        self.functions[p["Name"]] = function
        return {"FunctionSummary": self._summary(function, "DEVELOPMENT"), "ETag": stage.etag,
                "Location": f"https://cloudfront.amazonaws.com/2020-05-31/function/{arn}"}

    def op_describe_function(self, p: dict[str, Any]) -> dict[str, Any]:
        function = self._function(p["Name"])
        stage = self._stage(function, p.get("Stage"))
        return {"FunctionSummary": self._summary(function, p.get("Stage") or "DEVELOPMENT"),
                "ETag": stage.etag}

    def op_get_function(self, p: dict[str, Any]) -> dict[str, Any]:
        stage = self._stage(self._function(p["Name"]), p.get("Stage"))
        return {"FunctionCode": stage.code, "ETag": stage.etag,
                "ContentType": "application/octet-stream"}

    def _if_match(self, p: dict[str, Any], current: str) -> None:
        if not p.get("IfMatch"):
            raise ApiError("InvalidIfMatchVersion", 400, "If-Match is required")
        if p["IfMatch"] != current:
            raise ApiError("PreconditionFailed", 412,
                           f"If-Match {p['IfMatch']} is not the current version")

    def op_update_function(self, p: dict[str, Any]) -> dict[str, Any]:
        function = self._function(p["Name"])
        self._if_match(p, function.development.etag)
        self._check_function(p["FunctionConfig"], p["FunctionCode"])
        function.development = FunctionStage(p["FunctionConfig"], p["FunctionCode"], _etag(),
                                             _now())
        return {"FunctionSummary": self._summary(function, "DEVELOPMENT"),
                "ETag": function.development.etag}

    def op_publish_function(self, p: dict[str, Any]) -> dict[str, Any]:
        function = self._function(p["Name"])
        self._if_match(p, function.development.etag)
        function.live = FunctionStage(function.development.config, function.development.code,
                                      _etag(), _now())
        return {"FunctionSummary": self._summary(function, "LIVE")}

    # --- KeyValueStores: the CloudFront API's resource --------------------------------------

    def _store_doc(self, store: Store) -> dict[str, Any]:
        store.describes += 1
        return {"Name": store.name, "Id": store.id, "Comment": store.comment,
                "ARN": store.arn, "Status": "READY" if store.describes > 1 else "PROVISIONING",
                "LastModifiedTime": store.created}

    def op_create_key_value_store(self, p: dict[str, Any]) -> dict[str, Any]:
        if p["Name"] in self.stores:
            raise ApiError("EntityAlreadyExists", 409, f"key value store {p['Name']} exists")
        if "ImportSource" in p:
            raise ApiError("InvalidArgument", 400, "the stand-in imports nothing from S3")
        store_id = str(uuid.uuid4())
        store = Store(p["Name"], store_id,
                      f"arn:aws:cloudfront::{ACCOUNT}:key-value-store/{store_id}",
                      p.get("Comment", ""), _etag(), _now())
        self.stores[p["Name"]] = store
        return {"KeyValueStore": self._store_doc(store), "ETag": store.etag,
                "Location": f"https://cloudfront.amazonaws.com/2020-05-31/key-value-store/"
                            f"{store.arn}"}

    def op_describe_key_value_store(self, p: dict[str, Any]) -> dict[str, Any]:
        store = self.stores.get(p["Name"])
        if store is None:
            raise ApiError("EntityNotFound", 404, f"no key value store {p['Name']}")
        return {"KeyValueStore": self._store_doc(store), "ETag": store.etag}

    # --- The KeyValueStore API (data) -------------------------------------------------------

    def _by_arn(self, arn: str) -> Store:
        store = next((s for s in self.stores.values() if s.arn == arn), None)
        if store is None:
            raise ApiError("ResourceNotFoundException", 404, f"no key value store {arn}")
        if store.describes < 2:
            raise ApiError("ConflictException", 409, "the key value store is not READY")
        return store

    def _meta(self, store: Store) -> dict[str, Any]:
        return {"ItemCount": len(store.data), "TotalSizeInBytes": store.size,
                "ETag": store.version}

    def kvs_describe(self, p: dict[str, Any]) -> dict[str, Any]:
        store = self._by_arn(p["KvsARN"])
        return {**self._meta(store), "KvsARN": store.arn, "Created": store.created,
                "Status": "READY"}

    def kvs_get_key(self, p: dict[str, Any]) -> dict[str, Any]:
        store = self._by_arn(p["KvsARN"])
        if p["Key"] not in store.data:
            raise ApiError("ResourceNotFoundException", 404, f"no key {p['Key']}")
        return {"Key": p["Key"], "Value": store.data[p["Key"]], "ItemCount": len(store.data),
                "TotalSizeInBytes": store.size}

    def kvs_list_keys(self, p: dict[str, Any]) -> dict[str, Any]:
        store = self._by_arn(p["KvsARN"])
        keys = sorted(store.data)
        start = int(p.get("NextToken") or 0)
        end = start + int(p.get("MaxResults") or 50)
        out: dict[str, Any] = {"Items": [{"Key": k, "Value": store.data[k]}
                                         for k in keys[start:end]]}
        if end < len(keys):
            out["NextToken"] = str(end)
        return out

    def kvs_update_keys(self, p: dict[str, Any]) -> dict[str, Any]:
        store = self._by_arn(p["KvsARN"])
        if p["IfMatch"] != store.version:
            raise ApiError("ConflictException", 409,
                           f"If-Match {p['IfMatch']} is not the store's current version")
        puts, deletes = p.get("Puts", []), p.get("Deletes", [])
        if len(puts) + len(deletes) > MAX_KEYS_PER_UPDATE:
            raise ApiError("ValidationException", 400,
                           f"{len(puts) + len(deletes)} keys, over {MAX_KEYS_PER_UPDATE}")
        data = dict(store.data)
        for item in deletes:
            data.pop(item["Key"], None)
        for item in puts:
            if len(item["Key"].encode()) > MAX_KEY_BYTES:
                raise ApiError("ValidationException", 400, f"key over {MAX_KEY_BYTES} bytes")
            if len(item["Value"].encode()) > MAX_VALUE_BYTES:
                raise ApiError("ValidationException", 400,
                               f"value of {item['Key']} over {MAX_VALUE_BYTES} bytes")
            data[item["Key"]] = item["Value"]
        if sum(len(k.encode()) + len(v.encode()) for k, v in data.items()) > MAX_STORE_BYTES:
            raise ApiError("ServiceQuotaExceededException", 402, "over the store's 5 MB")
        store.data, store.version = data, _etag()
        return self._meta(store)

    # --- Distributions ----------------------------------------------------------------------

    def _distribution(self, distribution_id: str) -> Distribution:
        if distribution_id not in self.distributions:
            raise ApiError("NoSuchDistribution", 404, f"no distribution {distribution_id}")
        return self.distributions[distribution_id]

    def _distribution_doc(self, d: Distribution) -> dict[str, Any]:
        return {"Id": d.id, "ARN": f"arn:aws:cloudfront::{ACCOUNT}:distribution/{d.id}",
                "Status": "Deployed", "LastModifiedTime": _now(),
                "InProgressInvalidationBatches": 0,
                "DomainName": f"{d.id.lower()}.cloudfront.net", "DistributionConfig": d.config}

    def op_create_distribution(self, p: dict[str, Any]) -> dict[str, Any]:
        distribution_id = "E" + uuid.uuid4().hex[:13].upper()
        d = Distribution(distribution_id, p["DistributionConfig"], _etag())
        self.distributions[distribution_id] = d
        self._check_associations(d.config)
        return {"Distribution": self._distribution_doc(d), "ETag": d.etag,
                "Location": f"https://cloudfront.amazonaws.com/2020-05-31/distribution/"
                            f"{distribution_id}"}

    def op_get_distribution_config(self, p: dict[str, Any]) -> dict[str, Any]:
        d = self._distribution(p["Id"])
        return {"DistributionConfig": d.config, "ETag": d.etag}

    def op_update_distribution(self, p: dict[str, Any]) -> dict[str, Any]:
        d = self._distribution(p["Id"])
        self._if_match(p, d.etag)
        if p["DistributionConfig"]["CallerReference"] != d.config["CallerReference"]:
            raise ApiError("IllegalUpdate", 400, "CallerReference cannot change")
        self._check_associations(p["DistributionConfig"])
        d.config, d.etag = p["DistributionConfig"], _etag()
        return {"Distribution": self._distribution_doc(d), "ETag": d.etag}

    def _check_associations(self, config: dict[str, Any]) -> None:
        behaviors = [config["DefaultCacheBehavior"],
                     *config.get("CacheBehaviors", {}).get("Items", [])]
        for behavior in behaviors:
            items = behavior.get("FunctionAssociations", {}).get("Items", [])
            if len(items) != behavior.get("FunctionAssociations", {}).get("Quantity", 0):
                raise ApiError("InconsistentQuantities", 400, "FunctionAssociations Quantity")
            for item in items:
                name = item["FunctionARN"].rpartition("/")[2]
                function = self.functions.get(name)
                if function is None or function.arn != item["FunctionARN"]:
                    raise ApiError("InvalidFunctionAssociation", 400, "no such function")
                if function.live is None:
                    raise ApiError("InvalidFunctionAssociation", 400,
                                   f"{name} is not published (LIVE)")

    def op_create_invalidation(self, p: dict[str, Any]) -> dict[str, Any]:
        d = self._distribution(p["DistributionId"])
        invalidation = {"Id": "I" + uuid.uuid4().hex[:13].upper(), "Status": "Completed",
                        "CreateTime": _now(), "InvalidationBatch": p["InvalidationBatch"]}
        d.invalidations[invalidation["Id"]] = invalidation
        return {"Invalidation": invalidation, "Location": invalidation["Id"]}

    def op_create_origin_request_policy(self, p: dict[str, Any]) -> dict[str, Any]:
        policy_id = str(uuid.uuid4())
        policy = {"Id": policy_id, "LastModifiedTime": _now(),
                  "OriginRequestPolicyConfig": p["OriginRequestPolicyConfig"]}
        self.policies[policy_id] = policy
        return {"OriginRequestPolicy": policy, "ETag": _etag(), "Location": policy_id}

    def op_get_origin_request_policy(self, p: dict[str, Any]) -> dict[str, Any]:
        if p["Id"] not in self.policies:
            raise ApiError("NoSuchOriginRequestPolicy", 404, f"no policy {p['Id']}")
        return {"OriginRequestPolicy": self.policies[p["Id"]], "ETag": _etag()}

    def op_get_cache_policy(self, p: dict[str, Any]) -> dict[str, Any]:
        raise ApiError("NoSuchCachePolicy", 404, f"no cache policy {p['Id']}")

    def op_get_invalidation(self, p: dict[str, Any]) -> dict[str, Any]:
        d = self._distribution(p["DistributionId"])
        if p["Id"] not in d.invalidations:
            raise ApiError("NoSuchInvalidation", 404, f"no invalidation {p['Id']}")
        return {"Invalidation": d.invalidations[p["Id"]]}


# --- The wire ---------------------------------------------------------------------------------


def _check_maximums(value: Any, shape: Shape, where: str) -> None:
    """What ParamValidator leaves out: the model's `max` lengths and values."""
    limit = shape.metadata.get("max")
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                _check_maximums(value[name], member, f"{where}.{name}")
    elif shape.type_name == "list" and isinstance(value, list):
        if limit is not None and len(value) > limit:
            raise ApiError("InvalidArgument", 400, f"{where}: more than {limit} items")
        for i, item in enumerate(value):
            _check_maximums(item, shape.member, f"{where}[{i}]")
    elif shape.type_name == "string" and isinstance(value, str) and limit is not None:
        if len(value) > limit:
            raise ApiError("InvalidArgument", 400, f"{where}: longer than {limit}")
    elif (shape.type_name in ("integer", "long") and isinstance(value, int)
          and limit is not None and value > limit):
        raise ApiError("InvalidArgument", 400, f"{where}: over {limit}")


def _template(uri: str) -> re.Pattern[str]:
    path = uri.split("?", maxsplit=1)[0]
    pattern = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", re.escape(path))
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern)
    return re.compile(f"^{pattern}$")


class Service:
    """One service's model, routes, parser and serializer."""

    def __init__(self, name: str, operations: list[str]) -> None:
        self.model = get_service_model(name)  # moto's subclasses of botocore's shapes
        self.name = name
        self.routes = [(self.model.operation_model(op),
                        _template(self.model.operation_model(op).http["requestUri"]))
                       for op in operations]

    def match(self, method: str, path: str) -> tuple[OperationModel, dict[str, str]]:
        for operation, pattern in self.routes:
            found = pattern.match(path)
            if found and operation.http["method"] == method:
                return operation, {k: unquote(v) for k, v in found.groupdict().items()}
        raise ApiError("UnsupportedOperation" if self.name == "cloudfront" else
                       "ValidationException", 400, f"no {self.name} operation {method} {path}")

    def parse(self, operation: OperationModel, request: web.Request, labels: dict[str, str],
              body: bytes) -> dict[str, Any]:
        parser = PROTOCOL_PARSERS[self.model.protocol](operation)
        try:
            params = parser.parse({"body": body, "headers": Headers(list(request.headers.items())),
                                   "method": request.method, "url_params": labels,
                                   "url_path": request.path,
                                   "values": MultiDict(list(request.query.items()))})
        except Exception as exc:  # the body is not what the protocol says it is
            raise ApiError("InvalidArgument" if self.name == "cloudfront" else
                           "ValidationException", 400, f"unparseable request: {exc}") from exc
        report = ParamValidator().validate(params, operation.input_shape)
        if report.has_errors():
            raise ApiError("InvalidArgument" if self.name == "cloudfront" else
                           "ValidationException", 400, report.generate_report())
        _check_maximums(params, operation.input_shape, operation.name)
        return params

    def respond(self, operation: OperationModel, result: dict[str, Any]) -> web.Response:
        serializer = get_serializer_class(self.name, self.model.protocol)(operation)
        answer = serializer.serialize(result)
        body = answer["body"]
        return web.Response(status=answer["status_code"], headers=answer["headers"],
                            body=body.encode() if isinstance(body, str) else body)

    def error(self, error: ApiError) -> web.Response:
        request_id = str(uuid.uuid4())
        if self.model.protocol == "rest-xml":
            root = ET.Element("ErrorResponse",
                              xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/")
            node = ET.SubElement(root, "Error")
            for tag, text in (("Type", "Sender"), ("Code", error.code),
                              ("Message", error.message)):
                ET.SubElement(node, tag).text = text
            ET.SubElement(root, "RequestId").text = request_id
            return web.Response(status=error.status, body=ET.tostring(root),
                                content_type="text/xml",
                                headers={"x-amzn-RequestId": request_id})
        return web.Response(status=error.status, text=json.dumps({"message": error.message}),
                            content_type="application/json",
                            headers={"x-amzn-ErrorType": error.code,
                                     "x-amzn-RequestId": request_id})


def _authorization(request: web.Request, body: bytes) -> tuple[str, str]:
    """(service, algorithm) of a correctly signed request; ApiError otherwise."""
    found = _AUTHORIZATION.match(request.headers.get("Authorization", ""))
    if found is None:
        raise ApiError("MissingAuthenticationToken", 403, "unsigned or malformed Authorization")
    key, secret = FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"], FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
    if found["key"] != key:
        raise ApiError("InvalidClientTokenId", 403, "unknown access key")
    scope = found["scope"].split("/")
    v4a = found["algorithm"] == "AWS4-ECDSA-P256-SHA256"
    service = scope[1] if v4a else scope[2]
    signed = found["signed"].split(";")
    headers = {name: request.headers[name] for name in signed if name in request.headers}
    if len(headers) != len(signed) or "host" not in headers or "x-amz-date" not in headers:
        raise ApiError("IncompleteSignature", 403, f"signed headers missing: {signed}")
    url = f"http://{request.headers['host']}{request.raw_path}"
    aws = AWSRequest(method=request.method, url=url, headers=headers, data=body)
    aws.context["timestamp"] = headers["x-amz-date"]
    credentials = Credentials(key, secret)
    if v4a:
        if "x-amz-region-set" not in signed:
            raise ApiError("IncompleteSignature", 403, "SigV4A needs X-Amz-Region-Set signed")
        auth = SigV4AAuth(credentials, service, headers["x-amz-region-set"])
        ok = verify(key, secret, auth.string_to_sign(aws, auth.canonical_request(aws)),
                    found["signature"])
    else:
        if scope[1] != "us-east-1":
            raise ApiError("SignatureDoesNotMatch", 403, f"{service} is signed in us-east-1")
        auth = SigV4Auth(credentials, service, scope[1])
        expected = auth.signature(auth.string_to_sign(aws, auth.canonical_request(aws)), aws)
        ok = expected == found["signature"]
    if not ok:
        raise ApiError("SignatureDoesNotMatch", 403, "the signature does not match")
    return service, found["algorithm"]


class CloudFrontStandIn(LoopThread):
    """The stand-in on 127.0.0.1, in front of `upstream` (moto_server) for everything else."""

    def __init__(self, upstream: str | None = None) -> None:
        super().__init__()
        self.upstream = upstream
        self.api = CloudFrontApi()
        self.services = {
            "cloudfront": Service("cloudfront", [*self.api.handlers]),
            "cloudfront-keyvaluestore": Service("cloudfront-keyvaluestore",
                                                [*self.api.kvs_handlers]),
        }
        self.session: aiohttp.ClientSession | None = None

    @property
    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        return self.api.calls

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        authorization = request.headers.get("Authorization", "")
        scope = authorization.split("Credential=", 1)[-1].split(",")[0].split("/")
        service = next((s for s in scope if s in self.services), None)
        if service is None:
            return await self.forward(request, body)
        api = self.services[service]
        try:
            _authorization(request, body)
            operation, labels = api.match(request.method, request.raw_path.split("?")[0])
            params = api.parse(operation, request, labels, body)
            handlers = self.api.handlers if service == "cloudfront" else self.api.kvs_handlers
            with self.api.lock:
                self.api.calls.append((operation.name, deepcopy(params)))
                result = handlers[operation.name](params)
        except ApiError as error:
            return api.error(error)
        return api.respond(operation, result)

    async def forward(self, request: web.Request, body: bytes) -> web.StreamResponse:
        if self.upstream is None or self.session is None:
            return web.Response(status=502, text="no upstream for this request")
        async with self.session.request(
                request.method, self.upstream + request.raw_path, data=body,
                headers={k: v for k, v in request.headers.items()
                         if k.lower() not in ("transfer-encoding",)},
                allow_redirects=False) as answer:
            data = await answer.read()
            headers = {k: v for k, v in answer.headers.items()
                       if k.lower() not in ("transfer-encoding", "content-encoding",
                                            "content-length", "connection")}
            return web.Response(status=answer.status, headers=headers, body=data)

    async def _serve(self, stop: asyncio.Event) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.session = aiohttp.ClientSession(auto_decompress=False)
        self.url = f"http://127.0.0.1:{port}"
        self.ready()
        try:
            await stop.wait()
        finally:
            await self.session.close()
            await runner.cleanup()

