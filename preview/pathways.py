"""A steered release's pathways, read back from its manifests, and those manifests pointed at the
preview's own files.

`package --steering` (packager/output/steering.py) names every CDN in the top manifests by
absolute URL: HLS repeats each variant and rendition once per PATHWAY-ID under that CDN's base
URL, DASH lists one MPD-level BaseURL per serviceLocation; both name a steering server. Before
a push those CDNs do not serve the release yet, and after the demo its edges are gone, so to
play the release from its own files each pathway's base URL becomes `/pathway/<id>/` on the
preview, and the steering server the preview's own (which answers each region's order). The
player then steers between pathways as it would between CDNs, and every byte comes from the
release tree. Media playlists keep relative URIs (one upload serves every CDN): only the top
manifests change.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

from packager.errors import InputError
from packager.output.steering import MEDIA_TAG, VARIANT_TAGS, Pathway, parse_attributes
from preview.contents import Contents

PATHWAY_PREFIX = "/pathway/"
STEERING_PREFIX = "/steering/"
CONTENT_STEERING = "#EXT-X-CONTENT-STEERING:"
#: A pathway id as it can stand in a URL path segment unescaped (CDN ids in regions.yaml).
_PATHWAY_ID = re.compile(r"^[A-Za-z0-9._~-]+$")
_URI_ATTRIBUTE = re.compile(r'URI="([^"]*)"')
_SERVER_URI = re.compile(r'SERVER-URI="[^"]*"')
#: The MPD-level elements steered_mpd writes, ahead of the first Period.
_BASE_URL = re.compile(r'(<BaseURL\b[^>]*\bserviceLocation="([^"]*)"[^>]*>)([^<]*)(</BaseURL>)')
_STEERING_ELEMENT = re.compile(r"(<ContentSteering\b[^>]*>)([^<]*)(</ContentSteering>)")


@dataclass(frozen=True)
class SteeredRelease:
    """What a steered release's manifests name."""

    pathways: tuple[Pathway, ...]  # the default first, then in the manifests' order
    #: Format ("hls", "dash") -> the steering server URI its top manifest names.
    servers: dict[str, str]

    @property
    def default(self) -> str:
        return self.pathways[0].id

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.pathways)


def local_base(pathway: str) -> str:
    return f"{PATHWAY_PREFIX}{quote(pathway, safe='')}/"


def read_steering(contents: Contents) -> SteeredRelease | None:
    """The pathways and steering servers of the release's top manifests; None when the release
    is not steered."""
    found: list[Pathway] = []
    servers: dict[str, str] = {}
    defaults: list[str] = []
    for fmt, path in contents.manifests.items():
        text = (contents.root / path).read_text()
        read = _hls_steering if fmt == "hls" else _dash_steering
        steered = read(text, contents.paths, f"{contents.root / path}")
        if steered is None:
            continue
        server, default, pathways = steered
        servers[fmt] = server
        defaults.append(default)
        found += [p for p in pathways if p.id not in {f.id for f in found}]
    if not found:
        return None
    for pathway in found:
        if not _PATHWAY_ID.match(pathway.id):
            raise InputError(f"{contents.root}: pathway {pathway.id!r} is not a plain CDN id")
    default = defaults[0] if defaults[0] in {p.id for p in found} else found[0].id
    ordered = sorted(found, key=lambda p: p.id != default)  # stable: manifests' order kept
    return SteeredRelease(tuple(ordered), servers)


def _hls_steering(text: str, paths: frozenset[str], where: str
                  ) -> tuple[str, str, list[Pathway]] | None:
    """(server URI, default pathway, pathways) of a steered multivariant playlist."""
    steering = next((line for line in text.splitlines()
                     if line.startswith(CONTENT_STEERING)), None)
    if steering is None:
        return None
    attributes = dict(parse_attributes(steering.removeprefix(CONTENT_STEERING)))
    server = attributes.get("SERVER-URI", "").strip('"')
    default = attributes.get("PATHWAY-ID", "").strip('"')
    bases = _hls_bases(text, paths)
    if not bases:
        raise InputError(f"{where}: content steering without a pathway naming a release file")
    pathways: dict[str, str] = {}
    for base, pathway in bases.items():
        pathways.setdefault(pathway, base)
    return server, default, [Pathway(i, b) for i, b in pathways.items()]


def _hls_bases(text: str, paths: frozenset[str]) -> dict[str, str]:
    """Base URL -> pathway id, from each variant's PATHWAY-ID and its URI (a release file under
    the pathway's base URL)."""
    bases: dict[str, str] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith(VARIANT_TAGS):
            continue
        attributes = dict(parse_attributes(line.partition(":")[2]))
        pathway = attributes.get("PATHWAY-ID", "").strip('"')
        uri = attributes.get("URI", "").strip('"')
        if not uri and i + 1 < len(lines):
            uri = lines[i + 1].strip()
        base = _base_of(uri, paths)
        if pathway and base is not None:
            bases.setdefault(base, pathway)
    return bases


def _base_of(uri: str, paths: frozenset[str]) -> str | None:
    """The base URL under which `uri` names a release file (the longest such file)."""
    matches = [p for p in paths if uri.endswith("/" + p)]
    if not matches:
        return None
    return uri[: len(uri) - len(max(matches, key=len))]


def _dash_steering(text: str, paths: frozenset[str], where: str
                   ) -> tuple[str, str, list[Pathway]] | None:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise InputError(f"{where}: not XML ({exc})") from None
    namespace = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    steering = root.find(f"{namespace}ContentSteering")
    if steering is None:
        return None
    pathways = [Pathway(e.get("serviceLocation", ""), (e.text or "").strip())
                for e in root.findall(f"{namespace}BaseURL") if e.get("serviceLocation")]
    if not pathways:
        raise InputError(f"{where}: content steering without a BaseURL@serviceLocation")
    default = steering.get("defaultServiceLocation", "")
    return (steering.text or "").strip(), default, pathways


def local_multivariant(text: str, steered: SteeredRelease, paths: frozenset[str]) -> str:
    """The multivariant playlist with every pathway's URIs under `/pathway/<id>/` and the
    preview's steering server (module docstring). A URI under no pathway (a key URI) stays."""
    bases = sorted(_hls_bases(text, paths).items(), key=lambda b: -len(b[0]))
    known = set(steered.ids)

    def local(uri: str) -> str:
        for base, pathway in bases:
            if uri.startswith(base) and pathway in known:
                return local_base(pathway) + uri[len(base):]
        return uri

    def rewritten(line: str) -> str:
        if line.startswith(CONTENT_STEERING):
            return _SERVER_URI.sub(f'SERVER-URI="{STEERING_PREFIX}hls.json"', line)
        if line.startswith((*VARIANT_TAGS, MEDIA_TAG)):
            return _URI_ATTRIBUTE.sub(lambda m: f'URI="{local(m.group(1))}"', line)
        if line and not line.startswith("#"):
            return local(line.strip())
        return line

    return "\n".join(rewritten(line) for line in text.splitlines()) + "\n"


def local_mpd(text: str, steered: SteeredRelease) -> str:
    """The MPD with each BaseURL@serviceLocation under `/pathway/<id>/` and ContentSteering
    naming the preview's steering server."""
    at = text.find("<Period")
    head, rest = (text[:at], text[at:]) if at >= 0 else (text, "")
    known = set(steered.ids)

    def base(m: re.Match[str]) -> str:
        pathway = m.group(2)
        url = local_base(pathway) if pathway in known else m.group(3)
        return f"{m.group(1)}{escape(url, quote=False)}{m.group(4)}"

    head = _BASE_URL.sub(base, head)
    head = _STEERING_ELEMENT.sub(lambda m: f"{m.group(1)}{STEERING_PREFIX}dash.json{m.group(3)}",
                                 head)
    return head + rest
