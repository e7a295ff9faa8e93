"""ListObjectsV2 without botocore: static credentials, botocore's addressing, our own SigV4.

A no-op push must only list its prefix, and importing boto3 and loading the S3 service model
costs about half a second, as much as the listing itself (bench/push.py). So when the
credentials are plain static keys and nothing in the environment or the profile changes how
botocore would address S3, the listing is signed here (cdn/sigv4.py), single PUTs go the same
way (cdn/s3put.py), and boto3 is imported only for multipart uploads, deletes and
invalidations (a CA bundle named by AWS_CA_BUNDLE or the profile is honoured, as botocore
does). Anything else (SSO, assume-role, instance roles, FIPS or dual-stack endpoints,
proxies, an answer other than 200) returns None, and the caller lists through botocore,
which then also reports any error exactly as before.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cdn.http11 import Http11
from cdn.s3 import Connection, RemoteObject, S3Location, parse_list_page
from cdn.sigv4 import Credentials, query_string, sign_s3

if TYPE_CHECKING:
    import ssl

log = logging.getLogger(__name__)

#: Variables botocore reads that do not change credentials or addressing beyond what is
#: resolved here. Any other AWS_* variable (AWS_ENDPOINT_URL_S3, AWS_USE_FIPS_ENDPOINT,
#: AWS_WEB_IDENTITY_TOKEN_FILE, AWS_S3_US_EAST_1_REGIONAL_ENDPOINT, ...) sends the listing
#: through botocore.
SAFE_ENV = frozenset({
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE", "AWS_DEFAULT_OUTPUT", "AWS_PAGER", "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS", "AWS_CA_BUNDLE",
})
#: Profile settings (config or credentials file) likewise; role_arn, sso_*, credential_process,
#: endpoint_url, services, s3 (addressing_style, ...), use_fips_endpoint etc. are not here.
SAFE_PROFILE_KEYS = frozenset({
    "region", "output", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
    "aws_security_token", "retry_mode", "max_attempts", "cli_pager", "ca_bundle",
})
_PROXY_ENV = ("http_proxy", "https_proxy", "all_proxy")
#: Commercial-partition regions (amazonaws.com); cn-*, us-gov-*, ISO and others use botocore.
_AWS_REGION = re.compile(r"^(?!cn-)[a-z]{2}-[a-z]+-\d{1,2}$")
#: A bucket botocore addresses as a virtual host: no dots (TLS wildcard certificates).
_VIRTUAL_HOST_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
#: botocore's defaults for the clients cdnpack makes (cdn.s3.client).
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0


@dataclass(frozen=True)
class DirectListing:
    """How to reach one bucket without botocore: requests to `base_url` signed with these
    credentials (the listing's GETs, cdn/s3put.py's PUTs)."""

    base_url: str  # scheme://host[:port][/path] up to and excluding the query
    credentials: Credentials
    region: str
    ca_bundle: str | None = None  # certificates trusted for https (botocore's choice)


def direct_listing(
    conn: Connection, location: S3Location, environ: Mapping[str, str] | None = None
) -> DirectListing | None:
    """Credentials, region and address exactly as botocore would use them, or None when
    only botocore can tell (see the module's docstring)."""
    env = os.environ if environ is None else environ
    if any(k.startswith("AWS_") and k not in SAFE_ENV for k in env):
        return None
    if any(env.get(name) or env.get(name.upper()) for name in _PROXY_ENV):
        return None
    profile_name = conn.profile or env.get("AWS_DEFAULT_PROFILE") or env.get("AWS_PROFILE")
    sections = _profiles(env, profile_name or "default")
    if sections is None:
        return None
    if profile_name and sections == (None, None):
        return None  # a profile named but defined nowhere: botocore raises ProfileNotFound
    config, creds_file = (dict(section or {}) for section in sections)
    merged = {**config, **creds_file}  # botocore's full_config: the credentials file wins
    if any(not isinstance(v, str) or k not in SAFE_PROFILE_KEYS for k, v in merged.items()):
        return None
    credentials = _credentials(conn, env, config, creds_file)
    region = conn.region or env.get("AWS_DEFAULT_REGION") or merged.get("region")
    if credentials is None or not region:
        return None
    base = _base_url(conn.endpoint_url, location.bucket, region)
    if base is None:
        return None
    ca_bundle = env.get("AWS_CA_BUNDLE") or merged.get("ca_bundle") or _botocore_default_ca()
    return DirectListing(base, credentials, region, ca_bundle)


def _botocore_default_ca() -> str | None:
    """The bundle botocore verifies https against by default: certifi's, else its own."""
    try:
        import certifi  # noqa: PLC0415
    except ImportError:
        spec = importlib.util.find_spec("botocore")
        if spec is None or spec.origin is None:
            return None
        return str(Path(spec.origin).parent / "cacert.pem")
    return str(certifi.where())


def _profiles(
    env: Mapping[str, str], profile: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None] | None:
    """The profile's section of the config file and of the credentials file (None where the
    file has no such profile), parsed by botocore's own INI loader, imported only when a file
    exists; None when a file cannot be read (botocore's error to report)."""
    config_path = Path(env.get("AWS_CONFIG_FILE") or "~/.aws/config").expanduser()
    creds_path = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials").expanduser()
    if not config_path.exists() and not creds_path.exists():
        return None, None
    from botocore.configloader import load_config, raw_config_parse  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError  # noqa: PLC0415

    config: dict[str, Any] | None = None
    creds: dict[str, Any] | None = None
    try:
        if config_path.exists():
            config = load_config(str(config_path))["profiles"].get(profile)
        if creds_path.exists():
            creds = raw_config_parse(str(creds_path)).get(profile)
    except (BotoCoreError, OSError, ValueError) as exc:
        log.debug("AWS config not read here (%s): botocore decides", exc)
        return None
    return config, creds


def _credentials(
    conn: Connection, env: Mapping[str, str], config: dict[str, Any], creds_file: dict[str, Any]
) -> Credentials | None:
    """botocore's chain, for the links that are plain keys: explicit, environment (unless a
    profile was named explicitly), credentials file, config file. A partial set is botocore's
    to report (None)."""
    if conn.credentials is not None:
        return Credentials(*conn.credentials)
    if not conn.profile and env.get("AWS_ACCESS_KEY_ID"):
        secret = env.get("AWS_SECRET_ACCESS_KEY")
        token = _first(env, ("AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"))
        return Credentials(env["AWS_ACCESS_KEY_ID"], secret, token or None) if secret else None
    for section in (creds_file, config):
        if "aws_access_key_id" in section:
            secret = section.get("aws_secret_access_key")
            token = _first(section, ("aws_security_token", "aws_session_token"))
            if not secret:
                return None
            return Credentials(section["aws_access_key_id"], secret, token or None)
    return None


def _first(values: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    """The first of names that is set at all (even empty), as botocore picks a token."""
    return next((values[name] for name in names if name in values), None)


def _base_url(endpoint_url: str | None, bucket: str, region: str) -> str | None:
    """Where botocore sends ListObjectsV2 (checked against it in tests): path-style under a
    custom endpoint; otherwise the bucket's virtual host, regional except in us-east-1, where
    botocore keeps the legacy global name."""
    if endpoint_url:
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            return None
        return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/{bucket}"
    if not _AWS_REGION.match(region) or not _VIRTUAL_HOST_BUCKET.match(bucket):
        return None
    host = "s3.amazonaws.com" if region == "us-east-1" else f"s3.{region}.amazonaws.com"
    return f"https://{bucket}.{host}/"


class ListingRefused(Exception):
    """The origin answered the direct listing with something other than a listing."""


#: Keys per ListObjectsV2 page (S3's default and maximum).
PAGE_KEYS = 1000
#: Ranges listed side by side at most: each is one connection and one thread.
MAX_RANGES = 8


def page_url(listing: DirectListing, location: S3Location, token: str | None,
             start_after: str | None = None) -> str:
    """One ListObjectsV2 page: keys URL-encoded in the answer (as botocore asks), so that no
    key can break the XML."""
    prefix = f"{location.prefix}/" if location.prefix else ""
    params = [("list-type", "2"), ("prefix", prefix), ("encoding-type", "url")]
    if token:
        params.append(("continuation-token", token))
    elif start_after is not None:
        params.append(("start-after", start_after))
    return f"{listing.base_url}?{query_string(params)}"


def split_points(expected: Iterable[str]) -> list[str]:
    """Keys that cut the listing into ranges of about one page each: every PAGE_KEYS-th of the
    keys expected under the prefix (the release's own), at most MAX_RANGES ranges. S3 lists
    in UTF-8 byte order, which is the code-point order Python sorts str by."""
    keys = sorted(expected)
    step = max(PAGE_KEYS, -(-len(keys) // MAX_RANGES))
    return keys[step - 1:len(keys) - 1:step]


def list_direct(listing: DirectListing, location: S3Location,
                expected: Iterable[str] = ()) -> dict[str, RemoteObject]:
    """Every object under the prefix. A listing is a chain of pages (each continuation token
    comes with the previous answer), so a 2,000-object release costs two round trips in a
    row; the keys the release expects cut it into ranges (`start-after` the previous range's
    last expected key) listed side by side, one kept-alive connection each. Any key at all
    is found: a range goes on past the keys it expects until it passes its upper bound."""
    bounds = split_points(expected)
    ranges = list(zip([None, *bounds], [*bounds, None], strict=True))
    # Daemon threads, not a pool: a pool's threads are joined at exit, and an interrupted
    # push must not wait out a read timeout on an origin that stopped answering.
    results: list[dict[str, RemoteObject] | Exception] = [{} for _ in ranges]

    def run(index: int) -> None:
        try:
            results[index] = _list_range(listing, location, *ranges[index])
        except Exception as exc:  # re-raised in the caller's thread below
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True, name="cdnpack-list")
               for i in range(len(ranges))]
    for thread in threads:
        thread.start()
    # The answers' parser loads while the origin prepares them, not after they came.
    import xml.etree.ElementTree  # noqa: F401, PLC0415
    for thread in threads:
        thread.join()
    found: dict[str, RemoteObject] = {}
    for part in results:
        if isinstance(part, Exception):
            raise part
        found.update(part)
    return found


def _list_range(listing: DirectListing, location: S3Location, after: str | None,
                upto: str | None) -> dict[str, RemoteObject]:
    """The objects with after < key <= upto (open ends for None), page by page over one
    kept-alive connection."""
    connection = open_connection(listing)
    found: dict[str, RemoteObject] = {}
    token: str | None = None
    try:
        while True:
            url = page_url(listing, location, token, after)
            headers = sign_s3("GET", url, listing.credentials, listing.region,
                              datetime.now(UTC))
            target = urlsplit(url)
            answer = connection.request("GET", f"{target.path}?{target.query}", headers)
            if answer.status != 200:
                raise ListingRefused(f"HTTP {answer.status}: {answer.body[:200]!r}")
            objects, token = parse_list_page(answer.body)
            found.update((o.key, o) for o in objects if upto is None or o.key <= upto)
            if token is None or (upto is not None and objects and objects[-1].key >= upto):
                return found
    finally:
        connection.close()


@functools.lru_cache(maxsize=8)
def tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """One context per CA bundle, shared by every connection (contexts are thread-safe):
    loading a bundle costs about 15 ms of CPU, and a push opens a connection per worker."""
    import ssl  # noqa: PLC0415 (https only)

    return ssl.create_default_context(cafile=ca_bundle)


def open_connection(target: DirectListing, connect_timeout: float = CONNECT_TIMEOUT,
                    read_timeout: float = READ_TIMEOUT) -> Http11:
    """A connection to the bucket's host (opened at its first request), connected within
    connect_timeout, then allowing read_timeout per read (botocore's split)."""
    https = target.base_url.startswith("https:")
    return Http11(target.base_url, tls_context(target.ca_bundle) if https else None,
                  connect_timeout, read_timeout)


def try_list_direct(conn: Connection, location: S3Location, expected: Iterable[str] = ()
                    ) -> tuple[DirectListing, dict[str, RemoteObject]] | None:
    """The prefix's objects listed without botocore, with how they were reached (for PUTs
    alike), or None: then botocore must list (its credential chain, retries and error
    reporting take over)."""
    listing = direct_listing(conn, location)
    if listing is None:
        log.debug("listing %s through botocore (credentials or addressing need it)", location)
        return None
    try:
        return listing, list_direct(listing, location, expected)
    except (OSError, ListingRefused, ValueError) as exc:
        log.debug("direct listing of %s failed (%s); botocore lists instead", location, exc)
        return None
