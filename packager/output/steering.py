"""Steered manifests: every variant once per CDN pathway (HLS) and a BaseURL per CDN (DASH).

HLS (RFC 8216bis §4.4.6.6, §7): the multivariant playlist gains
`#EXT-X-CONTENT-STEERING:SERVER-URI=...,PATHWAY-ID=<default>` and its variants and renditions
are repeated once per pathway: each EXT-X-STREAM-INF, EXT-X-I-FRAME-STREAM-INF and
EXT-X-IMAGE-STREAM-INF gets PATHWAY-ID and an absolute URI under that CDN's base URL; each
EXT-X-MEDIA (of any TYPE) is cloned with its GROUP-ID made distinct per pathway
(`audio` -> `audio-<pathway>`), and the pathway's variants refer to their own groups: a player
following one pathway then never fetches a rendition from another CDN. STABLE-VARIANT-ID and
STABLE-RENDITION-ID (same value on every pathway) tell players which entries are one stream.
Each EXT-X-MEDIA also carries its pathway's PATHWAY-ID, an attribute RFC 8216bis does not define
for it (players ignore unknown attributes, §4.2): shaka-player 5.2 knows the pathway of an AUDIO
or VIDEO group from the variants naming it, but of a SUBTITLES group only from this attribute,
and without it fetches the multivariant playlist in place of every subtitle playlist (error
4017, HLS_INVALID_PLAYLIST_HIERARCHY) once a release is steered.
The playlist is transformed line by line, attributes parsed generically, so it works on
whatever renditions the writer lists (audio languages, subtitles, trick play, TS releases).

DASH (DASH-IF CTS 001): `<ContentSteering defaultServiceLocation=... queryBeforeStart="true">`
naming the steering server, and one MPD-level `<BaseURL serviceLocation="<cdn>">` per CDN;
relative SegmentTemplate URLs then resolve under whichever BaseURL the player chooses.

Media playlists keep relative URIs, so one upload serves every CDN.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from packager.errors import InputError
from packager.output.release import ReleaseFile, describe_file

#: Tags repeated once per pathway; every other line of the multivariant playlist stays once.
VARIANT_TAGS = ("#EXT-X-STREAM-INF:", "#EXT-X-I-FRAME-STREAM-INF:", "#EXT-X-IMAGE-STREAM-INF:")
MEDIA_TAG = "#EXT-X-MEDIA:"
#: Attributes that name a rendition group, and the tags they appear on.
GROUP_REFERENCES = ("AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS")
_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^",]*)')
#: RFC 8216bis §4.4.6.2: STABLE-VARIANT-ID / STABLE-RENDITION-ID characters.
_STABLE = re.compile(r"[^A-Za-z0-9+/=._-]")
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class Pathway:
    id: str  # the CDN id: PATHWAY-ID / serviceLocation
    base_url: str  # absolute, ends with "/": where this CDN serves the release


@dataclass(frozen=True)
class SteeringSpec:
    """What a steered release names: the steering documents and the CDN pathways, the default
    (the one players use before their first steering document) first."""

    hls_server_uri: str
    dash_server_uri: str
    pathways: tuple[Pathway, ...]

    def __post_init__(self) -> None:
        if not self.pathways:
            raise InputError("content steering needs at least one CDN pathway")


def steer_files(build: Path, files: list[ReleaseFile], spec: SteeringSpec) -> list[ReleaseFile]:
    """Rewrite the multivariant playlists and MPDs of a release being built, in place, and
    return the listing with their new sizes and digests."""
    out: list[ReleaseFile] = []
    for entry in files:
        if entry.role not in ("multivariant", "mpd"):
            out.append(entry)
            continue
        path = build / entry.path
        steer = steered_multivariant if entry.role == "multivariant" else steered_mpd
        path.write_text(steer(path.read_text(), spec))
        out.append(describe_file(build, entry.path, entry.role, entry.rendition))
    return out


def parse_attributes(text: str) -> list[tuple[str, str]]:
    """An attribute list (RFC 8216 §4.2) as (name, raw value) pairs, in order."""
    return _ATTRIBUTE.findall(text)


def _join(tag: str, attributes: list[tuple[str, str]]) -> str:
    return tag + ",".join(f"{k}={v}" for k, v in attributes)


def _quoted(value: str) -> str:
    return f'"{value}"'


def _unquoted(value: str) -> str:
    return value[1:-1] if value.startswith('"') and value.endswith('"') else value


def steered_multivariant(text: str, spec: SteeringSpec) -> str:
    """The multivariant playlist with content steering (module docstring)."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "#EXTM3U":
        raise InputError("not an HLS playlist: the first line is not #EXTM3U")
    if any(line.startswith(("#EXT-X-CONTENT-STEERING", "#EXTINF")) for line in lines):
        raise InputError("not a multivariant playlist without content steering")
    shared: list[str] = []
    entries: list[tuple[str, str | None]] = []  # (tag line, URI line of a STREAM-INF)
    pending: str | None = None
    for raw in lines:
        line = raw.strip()
        if pending is not None:
            if not line or line.startswith("#"):
                if line:
                    shared.append(line)
                continue
            entries.append((pending, line))
            pending = None
        elif line.startswith("#EXT-X-STREAM-INF:"):
            pending = line
        elif line.startswith((*VARIANT_TAGS, MEDIA_TAG)):
            entries.append((line, None))
        elif line:
            shared.append(line)
    if pending is not None:
        raise InputError("EXT-X-STREAM-INF without a URI line")
    if not any(tag.startswith(VARIANT_TAGS) for tag, _ in entries):
        raise InputError("the multivariant playlist lists no variant")
    default = spec.pathways[0].id
    out = [*shared, f"#EXT-X-CONTENT-STEERING:SERVER-URI={_quoted(spec.hls_server_uri)},"
                    f"PATHWAY-ID={_quoted(default)}"]
    for pathway in spec.pathways:
        out += _pathway_entries(entries, pathway)
    return "\n".join(out) + "\n"


def _pathway_entries(entries: list[tuple[str, str | None]], pathway: Pathway) -> list[str]:
    out: list[str] = []
    seen: dict[str, int] = {}
    for tag_line, uri_line in entries:
        tag, _, rest = tag_line.partition(":")
        tag += ":"
        attributes = parse_attributes(rest)
        names = {k for k, _ in attributes}
        if "PATHWAY-ID" in names:
            raise InputError(f"{tag} already has a PATHWAY-ID: steering twice")
        uri = dict(attributes).get("URI")
        stable_source = _unquoted(uri) if uri is not None else uri_line
        steered = [(name, _steered_value(tag, name, value, pathway))
                   for name, value in attributes]
        if tag == MEDIA_TAG:
            if stable_source is not None and "STABLE-RENDITION-ID" not in names:
                steered.append(("STABLE-RENDITION-ID", _quoted(_stable(stable_source, seen))))
        elif stable_source is not None and "STABLE-VARIANT-ID" not in names:
            steered.append(("STABLE-VARIANT-ID", _quoted(_stable(stable_source, seen))))
        steered.append(("PATHWAY-ID", _quoted(pathway.id)))
        out.append(_join(tag, steered))
        if uri_line is not None:
            out.append(_absolute(pathway, uri_line))
    return out


def _steered_value(tag: str, name: str, value: str, pathway: Pathway) -> str:
    """URIs absolute under the pathway's base URL, group names made the pathway's own."""
    if name == "URI":
        return _quoted(_absolute(pathway, _unquoted(value)))
    if (name == "GROUP-ID" and tag == MEDIA_TAG) or (
            name in GROUP_REFERENCES and tag != MEDIA_TAG and value != "NONE"):
        return _quoted(f"{_unquoted(value)}-{pathway.id}")
    return value


def _absolute(pathway: Pathway, uri: str) -> str:
    """A relative URI under the pathway's base URL; absolute ones (keys, data:) stay."""
    return uri if _ABSOLUTE.match(uri) or uri.startswith("/") else urljoin(pathway.base_url, uri)


def _stable(source: str, seen: dict[str, int]) -> str:
    """A stable id from the entry's own URI (unique within a pathway: repeats get -2, -3...)."""
    base = _STABLE.sub("_", source) or "x"
    seen[base] = seen.get(base, 0) + 1
    return base if seen[base] == 1 else f"{base}-{seen[base]}"


def steered_mpd(text: str, spec: SteeringSpec) -> str:
    """The MPD with ContentSteering and one BaseURL per CDN (module docstring)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise InputError(f"MPD is not XML ({exc})") from exc
    namespace = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    if root.find(f"{namespace}BaseURL") is not None or root.find(
            f"{namespace}ContentSteering") is not None:
        raise InputError("the MPD already has MPD-level BaseURL or ContentSteering")
    at = text.find("<Period")
    if at < 0:
        raise InputError("the MPD has no Period")
    line_start = text.rfind("\n", 0, at) + 1
    indent = text[line_start:at] if not text[line_start:at].strip() else ""
    elements = [ET.Element("BaseURL", {"serviceLocation": p.id}) for p in spec.pathways]
    for element, pathway in zip(elements, spec.pathways, strict=True):
        if not urlsplit(pathway.base_url).scheme:
            raise InputError(f"pathway {pathway.id}: base URL {pathway.base_url!r} is relative")
        element.text = pathway.base_url
    steering = ET.Element("ContentSteering", {"defaultServiceLocation": spec.pathways[0].id,
                                              "queryBeforeStart": "true"})
    steering.text = spec.dash_server_uri
    elements.append(steering)
    block = "".join(ET.tostring(e, encoding="unicode") + "\n" + indent for e in elements)
    return text[:at] + block + text[at:]
