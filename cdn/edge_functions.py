"""CloudFront Functions, their KeyValueStores and their place on a distribution: created or
updated in place, every write guarded by the ETag of what it replaces (If-Match), so that two
publishers never overwrite each other unseen.

  * a KeyValueStore is created (CloudFront API) once, then written through the KeyValueStore
    API (SigV4A, cdn/sigv4a.py) in UpdateKeys batches of at most 50 keys (the service's quota),
    each all-or-nothing and chained on the ETag the previous one returned;
  * a function's DEVELOPMENT stage is created or updated (only when its code or configuration
    differ) and then published to LIVE, which is what distributions run;
  * a function is associated with the viewer-request event of each cache behaviour that
    serves the given paths, in one UpdateDistribution guarded by the configuration's ETag.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from cdn.s3 import Connection, OriginError, client, origin_error
from cdn.sigv4a import register
from packager.errors import CdnpackError, InputError

RUNTIME = "cloudfront-js-2.0"
EVENT = "viewer-request"
#: UpdateKeys: at most 50 keys (or 3 MB) per request (CloudFront KeyValueStore quotas).
MAX_KEYS_PER_UPDATE = 50
#: ListKeys pages (its MaxResults maximum).
LIST_PAGE = 50
COUNTRY_HEADER = "cloudfront-viewer-country"
T = TypeVar("T")


class ConcurrentUpdateError(CdnpackError):
    """Someone else changed the resource between our read and our write (its ETag moved)."""

    exit_code = 3


def cloudfront(connection: Connection) -> Any:
    return client(connection, "cloudfront")


def keyvaluestore(connection: Connection) -> Any:
    """A KeyValueStore API client. Its endpoint rules put the store's account id before the
    endpoint's host ({account}.cloudfront-kvs.global.api.aws); with --endpoint-url the request
    still goes to that endpoint, the account label kept in the signed Host header."""
    register()
    kvs = client(connection, "cloudfront-keyvaluestore")
    if connection.endpoint_url:
        target = urlsplit(connection.endpoint_url)

        def connect_to_endpoint(request: Any, **_: Any) -> None:
            parts = urlsplit(request.url)
            request.headers["Host"] = parts.netloc  # as signed
            request.url = parts._replace(scheme=target.scheme, netloc=target.netloc).geturl()

        kvs.meta.events.register("before-send.cloudfront-keyvaluestore", connect_to_endpoint)
    return kvs


def _code(exc: Exception) -> str:
    return str(exc.response.get("Error", {}).get("Code", "")) if isinstance(
        exc, ClientError) else ""


def _call(action: Callable[[], T], context: str, conflict: str | None = None) -> T:
    """One API call, its errors as ours: `conflict` (the service's error for an If-Match that
    is no longer current: someone else wrote first) is ConcurrentUpdateError, the rest
    origin_error's one line."""
    try:
        return action()
    except ClientError as exc:
        if conflict is not None and _code(exc) == conflict:
            raise ConcurrentUpdateError(f"{context}: changed meanwhile by someone else "
                                        "(another publish?): run again") from exc
        raise origin_error(exc, context) from exc
    except BotoCoreError as exc:
        raise origin_error(exc, context) from exc


# --- KeyValueStores -----------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    name: str
    arn: str
    created: bool


def ensure_store(cf: Any, name: str, comment: str, timeout: float = 300.0,
                 poll: float = 0.25) -> Store:
    """The store called `name`, created when missing; READY before it is returned."""
    created = False
    try:
        doc = cf.describe_key_value_store(Name=name)["KeyValueStore"]
    except ClientError as exc:
        if _code(exc) != "EntityNotFound":
            raise origin_error(exc, f"cannot describe key value store {name}") from exc
        try:
            doc = cf.create_key_value_store(Name=name, Comment=comment)["KeyValueStore"]
        except (ClientError, BotoCoreError) as error:
            raise origin_error(error, f"cannot create key value store {name}") from error
        created = True
    except BotoCoreError as exc:
        raise origin_error(exc, f"cannot describe key value store {name}") from exc
    deadline = time.monotonic() + timeout
    while doc["Status"] != "READY":
        if doc["Status"] not in ("PROVISIONING", "READY") or time.monotonic() > deadline:
            raise OriginError(f"key value store {name} is {doc['Status']}, not READY")
        time.sleep(poll)
        poll = min(poll * 2, 5.0)
        doc = _call(lambda: cf.describe_key_value_store(Name=name),
                    f"cannot describe key value store {name}")["KeyValueStore"]
    return Store(name, doc["ARN"], created)


def store_keys(kvs: Any, arn: str) -> dict[str, str]:
    """Every key and value in the store (ListKeys, page by page)."""
    out: dict[str, str] = {}
    token: str | None = None
    while True:
        paging = {"NextToken": token} if token else {}
        page = _call(partial(kvs.list_keys, KvsARN=arn, MaxResults=LIST_PAGE, **paging),
                     f"cannot list the keys of {arn}")
        out.update({item["Key"]: item["Value"] for item in page.get("Items", [])})
        token = page.get("NextToken")
        if not token:
            return out


@dataclass(frozen=True)
class StoreUpdate:
    etag: str  # the store's version after the last batch
    items: int
    bytes: int
    batches: int


def update_store(kvs: Any, arn: str, puts: Sequence[tuple[str, str]],
                 deletes: Sequence[str]) -> StoreUpdate:
    """Puts (in the order given), then deletes, in batches of at most 50 keys, each chained on
    the previous batch's ETag; a store changed meanwhile by someone else stops us."""
    described = _call(lambda: kvs.describe_key_value_store(KvsARN=arn),
                      f"cannot describe {arn}")
    etag = described["ETag"]
    items, size = described["ItemCount"], described["TotalSizeInBytes"]
    operations = [("put", k, v) for k, v in puts] + [("delete", k, "") for k in deletes]
    batches = [operations[i:i + MAX_KEYS_PER_UPDATE]
               for i in range(0, len(operations), MAX_KEYS_PER_UPDATE)]
    for batch in batches:
        answer = _call(partial(
            kvs.update_keys, KvsARN=arn, IfMatch=etag,
            Puts=[{"Key": k, "Value": v} for kind, k, v in batch if kind == "put"],
            Deletes=[{"Key": k} for kind, k, _ in batch if kind == "delete"]),
            f"the keys of {arn}", conflict="ConflictException")
        etag, items, size = answer["ETag"], answer["ItemCount"], answer["TotalSizeInBytes"]
    return StoreUpdate(etag, items, size, len(batches))


# --- Functions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedFunction:
    name: str
    arn: str
    created: bool
    updated: bool  # the DEVELOPMENT stage was written
    published: bool  # LIVE was (re)published


def ensure_function(cf: Any, name: str, code: bytes, comment: str,
                    store_arn: str | None) -> PublishedFunction:
    """DEVELOPMENT holds exactly this code and configuration, and LIVE the same."""
    config: dict[str, Any] = {"Comment": comment, "Runtime": RUNTIME}
    if store_arn is not None:
        config["KeyValueStoreAssociations"] = {
            "Quantity": 1, "Items": [{"KeyValueStoreARN": store_arn}]}
    created = updated = False
    try:
        try:
            current = cf.get_function(Name=name, Stage="DEVELOPMENT")
        except ClientError as exc:
            if _code(exc) != "NoSuchFunctionExists":
                raise
            answer = cf.create_function(Name=name, FunctionConfig=config, FunctionCode=code)
            etag, arn = answer["ETag"], answer["FunctionSummary"]["FunctionMetadata"][
                "FunctionARN"]
            created = True
        else:
            described = cf.describe_function(Name=name, Stage="DEVELOPMENT")
            arn = described["FunctionSummary"]["FunctionMetadata"]["FunctionARN"]
            etag = current["ETag"]
            if (current["FunctionCode"].read() != code
                    or _config(described["FunctionSummary"]["FunctionConfig"]) != config):
                etag = cf.update_function(Name=name, IfMatch=etag, FunctionConfig=config,
                                          FunctionCode=code)["ETag"]
                updated = True
        live = _live_code(cf, name)
        published = created or updated or live != code
        if published:
            cf.publish_function(Name=name, IfMatch=etag)
    except ClientError as exc:
        if _code(exc) == "PreconditionFailed":
            raise ConcurrentUpdateError(f"function {name} changed while it was being "
                                        "published (another publish?): run again") from exc
        if _code(exc) == "FunctionSizeLimitExceeded":
            raise InputError(f"function {name}: {len(code)} bytes, over CloudFront's "
                             "10 KB") from exc
        raise origin_error(exc, f"cannot publish function {name}") from exc
    except BotoCoreError as exc:
        raise origin_error(exc, f"cannot publish function {name}") from exc
    return PublishedFunction(name, arn, created, updated, published)


def _config(config: dict[str, Any]) -> dict[str, Any]:
    """A described configuration in the shape we write (no empty associations)."""
    out = {"Comment": config.get("Comment", ""), "Runtime": config["Runtime"]}
    associations = config.get("KeyValueStoreAssociations") or {}
    if associations.get("Quantity"):
        out["KeyValueStoreAssociations"] = {
            "Quantity": associations["Quantity"],
            "Items": [{"KeyValueStoreARN": i["KeyValueStoreARN"]}
                      for i in associations["Items"]]}
    return out


def _live_code(cf: Any, name: str) -> bytes | None:
    try:
        data: bytes = cf.get_function(Name=name, Stage="LIVE")["FunctionCode"].read()
    except ClientError as exc:
        if _code(exc) == "NoSuchFunctionExists":
            return None
        raise
    return data


# --- Distributions -------------------------------------------------------------------------


def path_matches(pattern: str, path: str) -> bool:
    """A cache behaviour's PathPattern (`*` any characters, `?` one; case-sensitive; the
    leading `/` optional) against a request path."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                    for c in "/" + pattern.lstrip("/"))
    return re.fullmatch(regex, "/" + path.lstrip("/")) is not None


def behaviours_for(config: dict[str, Any], paths: Sequence[str]) -> list[dict[str, Any]]:
    """The cache behaviours serving `paths` (the first whose pattern matches, else the
    default), each once, in the configuration's order."""
    ordered = list(config.get("CacheBehaviors", {}).get("Items") or [])
    used: list[dict[str, Any]] = []
    for path in paths:
        behaviour = next((b for b in ordered if path_matches(b["PathPattern"], path)),
                         config["DefaultCacheBehavior"])
        if not any(b is behaviour for b in used):
            used.append(behaviour)
    return used


def _name(behaviour: dict[str, Any]) -> str:
    return str(behaviour.get("PathPattern", "default (*)"))


@dataclass(frozen=True)
class AssociationPlan:
    """The behaviours a function must run on, read and checked before anything is written."""

    distribution: str
    config: dict[str, Any]
    etag: str  # of the configuration read: the update is refused if it moved since
    behaviours: list[dict[str, Any]]  # the config's own objects (updated in place)


@dataclass(frozen=True)
class Association:
    distribution: str
    behaviours: list[str]  # PathPattern of each behaviour (default: "default (*)")
    changed: bool


def plan_association(cf: Any, distribution: str, function_name: str,
                     paths: Sequence[str]) -> AssociationPlan:
    """The behaviours serving `paths`: each must let the function see the viewer's country,
    and run no other function on viewer requests."""
    try:
        got = cf.get_distribution_config(Id=distribution)
    except ClientError as exc:
        if _code(exc) == "NoSuchDistribution":
            raise InputError(f"--distribution {distribution}: no such distribution") from exc
        raise origin_error(exc, f"cannot read distribution {distribution}") from exc
    except BotoCoreError as exc:
        raise origin_error(exc, f"cannot read distribution {distribution}") from exc
    config, etag = got["DistributionConfig"], got["ETag"]
    behaviours = behaviours_for(config, paths)
    for behaviour in behaviours:
        check_country_header(cf, behaviour)
        current = _viewer_request(behaviour)
        if current is not None and not current.endswith(f":function/{function_name}"):
            raise InputError(f"distribution {distribution}: behaviour {_name(behaviour)} "
                             f"already runs {current} on viewer requests (one function per "
                             "event): serve the release under a behaviour of its own")
    return AssociationPlan(distribution, config, etag, behaviours)


def _viewer_request(behaviour: dict[str, Any]) -> str | None:
    items = (behaviour.get("FunctionAssociations") or {}).get("Items") or []
    return next((str(i["FunctionARN"]) for i in items if i["EventType"] == EVENT), None)


def associate(cf: Any, plan: AssociationPlan, function_arn: str) -> Association:
    """The function on the viewer-request event of the planned behaviours, in one update
    guarded by the ETag the plan read."""
    changed = False
    for behaviour in plan.behaviours:
        if _viewer_request(behaviour) == function_arn:
            continue
        items = [i for i in (behaviour.get("FunctionAssociations") or {}).get("Items") or []
                 if i["EventType"] != EVENT]
        items.append({"FunctionARN": function_arn, "EventType": EVENT})
        behaviour["FunctionAssociations"] = {"Quantity": len(items), "Items": items}
        changed = True
    if changed:
        _call(lambda: cf.update_distribution(Id=plan.distribution, IfMatch=plan.etag,
                                             DistributionConfig=plan.config),
              f"distribution {plan.distribution}", conflict="PreconditionFailed")
    return Association(plan.distribution, [_name(b) for b in plan.behaviours], changed)


def check_country_header(cf: Any, behaviour: dict[str, Any]) -> None:
    """The function reads CloudFront-Viewer-Country, which CloudFront adds only when the
    behaviour's origin request policy (or cache policy, or legacy forwarded headers) names it:
    without it every viewer would be answered 451, so that is refused here."""
    names: list[str] = []
    legacy = behaviour.get("ForwardedValues")
    if legacy:
        names += legacy.get("Headers", {}).get("Items") or []
    for kind, policy_id in (("origin_request", behaviour.get("OriginRequestPolicyId")),
                            ("cache", behaviour.get("CachePolicyId"))):
        if not policy_id:
            continue
        try:
            if kind == "origin_request":
                doc = cf.get_origin_request_policy(Id=policy_id)["OriginRequestPolicy"]
                headers = doc["OriginRequestPolicyConfig"]["HeadersConfig"]
            else:
                doc = cf.get_cache_policy(Id=policy_id)["CachePolicy"]
                headers = doc["CachePolicyConfig"]["ParametersInCacheKeyAndForwardedToOrigin"][
                    "HeadersConfig"]
        except (ClientError, BotoCoreError) as exc:
            raise origin_error(exc, f"cannot read {kind} policy {policy_id}") from exc
        names += (headers.get("Headers") or {}).get("Items") or []
    if COUNTRY_HEADER not in {n.lower() for n in names}:
        raise InputError(f"behaviour {_name(behaviour)}: its origin request policy does not "
                         "include CloudFront-Viewer-Country, so the function could not see "
                         "the viewer's country and would answer every viewer 451: add the "
                         "header to the policy (it does not change the cache key)")
