"""CPIX 2.3 documents (DASH-IF Content Protection Information Exchange): export and import keys.

CPIX is how keys and DRM signaling travel between a packager and a licence vendor. Export writes
a deterministic document (same keys, same bytes): ContentKeyList with each key in plain
(pskc:PlainValue: the document is as secret as the keys and is written mode 0600),
DRMSystemList with each key's pssh box per DRM system (from drm.pssh_boxes), and
ContentKeyUsageRuleList tagging keys by track class with intendedTrackType plus
AudioFilter/VideoFilter (CPIX 2.3 §5.3.5; the filter forms SPEKE v2 uses). Import reads the keys
back and maps usage rules to track classes, and reads each DRMSystem's signaling (PSSH,
URIExtXKey, HLSSignalingData); encrypted documents (pskc:EncryptedValue, CPIX §4.3.2) are not
supported and say so. request_cpix writes the key-less request a SPEKE v2 client POSTs. Error
messages name the file and the element, never a key's bytes.
"""

from __future__ import annotations

import base64
import binascii
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from xml.sax.saxutils import escape, quoteattr

from packager.drm import pssh as drm
from packager.drm.systems import PSSH_SYSTEMS
from packager.errors import InputError
from packager.files import read_bytes, write_durably
from packager.keys.model import KEY_BYTES, ClassThresholds, ContentKey, KeySet, TrackClass

CPIX_NS = "urn:dashif:org:cpix"
PSKC_NS = "urn:ietf:params:xml:ns:keyprov:pskc"
CPIX_VERSION = "2.3"
#: intendedTrackType of a key that protects every track (SPEKE v2 encryption contract).
ALL_TRACKS = "ALL"
_VIDEO_CLASSES = (TrackClass.SD, TrackClass.HD, TrackClass.UHD)


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


@dataclass(frozen=True)
class CpixDrmSystem:
    """One cpix:DRMSystem: a DRM system's signaling for one KID, decoded from base64. Every
    field is optional: a document carries what its producer chose (SPEKE v2: what was asked)."""

    kid: bytes
    system_id: bytes
    #: cpix:PSSH: a whole pssh box.
    pssh: bytes | None = None
    #: cpix:URIExtXKey: the EXT-X-KEY URI (FairPlay: its skd:// URI).
    uri_ext_x_key: str | None = None
    #: cpix:HLSSignalingData by playlist ("media", "master"): whole #EXT-X-KEY lines.
    hls_signaling: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class CpixDocument:
    """What an imported CPIX document holds: its keys, in document order, and the track classes
    its usage rules assign to each KID (empty when it has no rule for a key)."""

    source: str
    content_id: str | None
    keys: tuple[ContentKey, ...]
    classes: Mapping[bytes, tuple[TrackClass, ...]] = field(hash=False)
    thresholds: ClassThresholds = field(default_factory=ClassThresholds)
    drm_systems: tuple[CpixDrmSystem, ...] = ()

    @property
    def keyset(self) -> KeySet | None:
        """A KeySet when the document has a content id and its rules give every class exactly
        one key (or it holds a single key and no rules): otherwise the keys are loose keys."""
        if self.content_id is None or not self.content_id.strip():
            return None
        by_kid = {k.kid: k for k in self.keys}
        if not any(self.classes.values()):
            if len(self.keys) == 1:
                return KeySet.single(self.content_id, self.keys[0], self.thresholds)
            return None
        per_class: dict[TrackClass, ContentKey] = {}
        for kid, classes in self.classes.items():
            for c in classes:
                if per_class.setdefault(c, by_kid[kid]).kid != kid:
                    return None  # two keys for one class: finer than a KeySet can say
        if len(per_class) != len(TrackClass):
            return None
        return KeySet(self.content_id, per_class, self.thresholds)


# --- export -----------------------------------------------------------------------------------


def export_cpix(
    keyset: KeySet,
    scheme: str = "cenc",
    systems: Sequence[str] = PSSH_SYSTEMS,
    la_url: str | None = None,
    widevine_content_id: bytes | None = None,
) -> bytes:
    """The CPIX 2.3 document of a key set: UTF-8, canonical (no whitespace, fixed attribute and
    element order), so the same keys always give the same bytes. Its pssh boxes are the ones
    `package` writes for the same options (a Widevine content_id only when one is given)."""
    keys = keyset.distinct_keys
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<cpix:CPIX xmlns:cpix="{CPIX_NS}" xmlns:pskc="{PSKC_NS}" '
        f"contentId={quoteattr(keyset.content_id)} version=\"{CPIX_VERSION}\">",
        "<cpix:ContentKeyList>",
    ]
    for key in keys:
        iv = "" if key.iv is None else f' explicitIV="{_b64(key.iv)}"'
        parts.append(
            f'<cpix:ContentKey kid="{key.kid_uuid}"{iv} commonEncryptionScheme="{scheme}">'
            f"<cpix:Data><pskc:Secret><pskc:PlainValue>{_b64(key.key)}</pskc:PlainValue>"
            "</pskc:Secret></cpix:Data></cpix:ContentKey>"
        )
    parts.append("</cpix:ContentKeyList><cpix:DRMSystemList>")
    for key in keys:
        for pssh in drm.pssh_boxes([key], scheme, systems, content_id=widevine_content_id,
                                   la_url=la_url):
            parts.append(
                f'<cpix:DRMSystem kid="{key.kid_uuid}" '
                f'systemId="{uuid.UUID(bytes=pssh.system_id)}">'
                f"<cpix:PSSH>{_b64(pssh.box)}</cpix:PSSH></cpix:DRMSystem>"
            )
    parts.append("</cpix:DRMSystemList><cpix:ContentKeyUsageRuleList>")
    for key in keys:
        classes = keyset.classes_of(key.kid)
        parts.append(_usage_rule(key.kid_uuid, classes, keyset.thresholds))
    parts.append("</cpix:ContentKeyUsageRuleList></cpix:CPIX>")
    return ("".join(parts) + "\n").encode("utf-8")


def _usage_rule(kid_uuid: str, classes: tuple[TrackClass, ...], t: ClassThresholds) -> str:
    """One ContentKeyUsageRule: intendedTrackType names the classes ('ALL' for every track) and
    one filter per class says which tracks they are, by pixel count (CPIX VideoFilter has
    minPixels/maxPixels, not heights: a class's bound is its max height at 16:9)."""
    if len(classes) == len(TrackClass):
        return (f'<cpix:ContentKeyUsageRule kid="{kid_uuid}" intendedTrackType="{ALL_TRACKS}">'
                "<cpix:AudioFilter/><cpix:VideoFilter/></cpix:ContentKeyUsageRule>")
    sd, hd = _pixels(t.sd_max_height), _pixels(t.hd_max_height)
    filters = {
        TrackClass.AUDIO: "<cpix:AudioFilter/>",
        TrackClass.SD: f'<cpix:VideoFilter maxPixels="{sd}"/>',
        TrackClass.HD: f'<cpix:VideoFilter minPixels="{sd + 1}" maxPixels="{hd}"/>',
        TrackClass.UHD: f'<cpix:VideoFilter minPixels="{hd + 1}"/>',
    }
    track_type = "+".join(c.value for c in classes)
    return (f'<cpix:ContentKeyUsageRule kid="{kid_uuid}" '
            f"intendedTrackType={quoteattr(track_type)}>"
            f"{''.join(filters[c] for c in classes)}</cpix:ContentKeyUsageRule>")


def request_cpix(
    content_id: str,
    kids: Mapping[TrackClass, bytes],
    scheme: str,
    signaling: Mapping[bytes, Sequence[str]],
    thresholds: ClassThresholds,
) -> bytes:
    """A SPEKE v2.0 request: the CPIX 2.3 document an encryptor POSTs to a key server.

    The encryptor chooses the KIDs (one per track class, or one for all) and says what it
    wants filled in (SPEKE v2 "standard payload components"): cpix:ContentKey elements without
    cpix:Data, one cpix:DRMSystem per KID and asked system (systemId → the names of the empty
    child elements to fill: PSSH, URIExtXKey, HLSSignalingData for each playlist), and the
    encryption contract: one ContentKeyUsageRule per KID with a unique intendedTrackType and one
    filter per sub-component ("ALL" with an empty AudioFilter and VideoFilter for one key).
    """
    distinct = list(dict.fromkeys(kids[c] for c in TrackClass))
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<cpix:CPIX xmlns:cpix="{CPIX_NS}" xmlns:pskc="{PSKC_NS}" '
        f"contentId={quoteattr(content_id)} version=\"{CPIX_VERSION}\">",
        "<cpix:ContentKeyList>",
    ]
    parts += [f'<cpix:ContentKey kid="{_uuid(kid)}" commonEncryptionScheme="{scheme}"/>'
              for kid in distinct]
    parts.append("</cpix:ContentKeyList><cpix:DRMSystemList>")
    for kid in distinct:
        for system_id, wanted in signaling.items():
            children = "".join(
                f'<cpix:HLSSignalingData playlist="{playlist}"/>' if name == "HLSSignalingData"
                else f"<cpix:{name}/>"
                for name in wanted
                for playlist in (("media", "master") if name == "HLSSignalingData" else ("",))
            )
            parts.append(f'<cpix:DRMSystem kid="{_uuid(kid)}" '
                         f'systemId="{uuid.UUID(bytes=system_id)}">{children}</cpix:DRMSystem>')
    parts.append("</cpix:DRMSystemList><cpix:ContentKeyUsageRuleList>")
    for kid in distinct:
        classes = tuple(c for c in TrackClass if kids[c] == kid)
        parts.append(_usage_rule(_uuid(kid), classes, thresholds))
    parts.append("</cpix:ContentKeyUsageRuleList></cpix:CPIX>")
    return ("".join(parts) + "\n").encode("utf-8")


def _pixels(height: int) -> int:
    """Pixels of a 16:9 frame of this height (576 → 1024x576, 1080 → 1920x1080)."""
    return height * ((height * 16 + 8) // 9)


def write_cpix(path: Path, document: bytes) -> None:
    """Write a CPIX document atomically and privately (mode 0600): it holds keys in the clear.
    A reader sees the old file or the whole new one."""
    try:
        write_durably(path, document, temp_prefix=f".{path.name}.")
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror})") from exc


# --- import -----------------------------------------------------------------------------------


def read_cpix(path: Path, thresholds: ClassThresholds | None = None) -> CpixDocument:
    return parse_cpix(read_bytes(path, "CPIX document"), str(path), thresholds)


def parse_cpix(
    data: bytes, source: str = "<cpix>", thresholds: ClassThresholds | None = None
) -> CpixDocument:
    """The keys of a CPIX document and the track classes its usage rules give them.

    DRMSystem data is not imported: it is derived from the keys again when packaging."""
    t = thresholds or ClassThresholds()
    try:
        # expat >= 2.4 bounds entity expansion, and ElementTree fetches no external entities.
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        line = exc.position[0]
        raise InputError(f"{source}: not a CPIX document (XML error at line {line})") from None
    if root.tag != _q(CPIX_NS, "CPIX"):
        raise InputError(f"{source}: not a CPIX document (root element {_name(root.tag)}, "
                         f"expected cpix:CPIX in {CPIX_NS})")
    content_id = root.get("contentId")
    elements = root.findall(f"{_q(CPIX_NS, 'ContentKeyList')}/{_q(CPIX_NS, 'ContentKey')}")
    if not elements:
        raise InputError(f"{source}: cpix:ContentKeyList holds no cpix:ContentKey")
    keys: dict[bytes, ContentKey] = {}
    for n, element in enumerate(elements, 1):
        key = _content_key(element, f"{source}: cpix:ContentKey #{n}")
        if keys.setdefault(key.kid, key) != key:
            raise InputError(f"{source}: cpix:ContentKey #{n}: KID {key.kid_uuid} is given "
                             "twice with different keys")
    classes: dict[bytes, tuple[TrackClass, ...]] = dict.fromkeys(keys, ())
    rules = root.findall(
        f"{_q(CPIX_NS, 'ContentKeyUsageRuleList')}/{_q(CPIX_NS, 'ContentKeyUsageRule')}"
    )
    for n, rule in enumerate(rules, 1):
        where = f"{source}: cpix:ContentKeyUsageRule #{n}"
        kid = _kid(rule, where)
        if kid not in keys:
            raise InputError(f"{where}: KID {_uuid(kid)} is not in cpix:ContentKeyList")
        found = set(classes[kid]) | set(_rule_classes(rule, t, where))
        classes[kid] = tuple(c for c in TrackClass if c in found)
    systems = tuple(
        _drm_system(element, f"{source}: cpix:DRMSystem #{n}")
        for n, element in enumerate(
            root.findall(f"{_q(CPIX_NS, 'DRMSystemList')}/{_q(CPIX_NS, 'DRMSystem')}"), 1)
    )
    return CpixDocument(source, content_id, tuple(keys.values()),
                        MappingProxyType(classes), t, systems)


def _drm_system(element: ET.Element, where: str) -> CpixDrmSystem:
    """A DRMSystem's base64 children, decoded; the box or line itself is checked by whoever
    uses it. Empty elements (a request's placeholders) count as absent."""
    kid = _kid(element, where)
    text = element.get("systemId")
    try:
        system_id = uuid.UUID((text or "").strip()).bytes
    except ValueError:
        raise InputError(f"{where}: systemId {escape(text or '')!r} is not a UUID") from None

    def decoded(child: ET.Element, name: str) -> bytes | None:
        if not (child.text or "").strip():
            return None
        data = _unb64(child.text or "")
        if data is None:
            raise InputError(f"{where}: cpix:{name} is not base64")
        return data

    pssh = uri = None
    lines: dict[str, str] = {}
    for child in element:
        if child.tag == _q(CPIX_NS, "PSSH"):
            pssh = decoded(child, "PSSH")
        elif child.tag == _q(CPIX_NS, "URIExtXKey"):
            raw = decoded(child, "URIExtXKey")
            uri = None if raw is None else _text(raw, where, "URIExtXKey")
        elif child.tag == _q(CPIX_NS, "HLSSignalingData"):
            raw = decoded(child, "HLSSignalingData")
            if raw is not None:
                lines[child.get("playlist") or "media"] = _text(raw, where, "HLSSignalingData")
    return CpixDrmSystem(kid, system_id, pssh, uri, MappingProxyType(lines))


def _text(raw: bytes, where: str, name: str) -> str:
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InputError(f"{where}: cpix:{name} is not UTF-8 text") from None


def _content_key(element: ET.Element, where: str) -> ContentKey:
    kid = _kid(element, where)
    where = f"{where} (kid {_uuid(kid)})"
    secret = element.find(f"{_q(CPIX_NS, 'Data')}/{_q(PSKC_NS, 'Secret')}")
    if secret is not None and secret.find(_q(PSKC_NS, "EncryptedValue")) is not None:
        raise InputError(f"{where}: encrypted content keys (pskc:EncryptedValue) are not "
                         "supported; export the document with pskc:PlainValue keys")
    plain = secret.find(_q(PSKC_NS, "PlainValue")) if secret is not None else None
    if plain is None or not (plain.text or "").strip():
        raise InputError(f"{where}: no key (cpix:Data/pskc:Secret/pskc:PlainValue)")
    key = _unb64(plain.text or "")
    if key is None or len(key) != KEY_BYTES:
        raise InputError(f"{where}: pskc:PlainValue is not a 16-byte key in base64")
    iv_text = element.get("explicitIV")
    iv = None
    if iv_text is not None:
        iv = _unb64(iv_text)
        if iv is None or len(iv) not in (8, 16):
            raise InputError(f"{where}: explicitIV is not 8 or 16 bytes in base64")
    return ContentKey(kid, key, iv)


def _rule_classes(rule: ET.Element, t: ClassThresholds, where: str) -> set[TrackClass]:
    """The classes a usage rule covers: from intendedTrackType when it names our classes
    ('ALL' or e.g. 'SD+HD'), else from its filters (AudioFilter → AUDIO; a VideoFilter → every
    video class whose pixel range meets the filter's minPixels..maxPixels)."""
    track_type = (rule.get("intendedTrackType") or "").strip().upper()
    if track_type == ALL_TRACKS:
        return set(TrackClass)
    names = {c.value for c in TrackClass}
    tokens = track_type.split("+") if track_type else []
    if tokens and all(tok in names for tok in tokens):
        return {TrackClass(tok) for tok in tokens}
    found: set[TrackClass] = set()
    if rule.find(_q(CPIX_NS, "AudioFilter")) is not None:
        found.add(TrackClass.AUDIO)
    sd, hd = _pixels(t.sd_max_height), _pixels(t.hd_max_height)
    ranges = {TrackClass.SD: (0, sd), TrackClass.HD: (sd + 1, hd),
              TrackClass.UHD: (hd + 1, 1 << 62)}
    for video in rule.findall(_q(CPIX_NS, "VideoFilter")):
        lo = _int_attr(video, "minPixels", 0, where)
        hi = _int_attr(video, "maxPixels", 1 << 62, where)
        found |= {c for c, (a, b) in ranges.items() if a <= hi and lo <= b}
    return found


def _int_attr(element: ET.Element, name: str, default: int, where: str) -> int:
    text = element.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{where}: cpix:VideoFilter@{name} is not an integer") from None


def _kid(element: ET.Element, where: str) -> bytes:
    text = element.get("kid")
    if text is None:
        raise InputError(f"{where}: no kid attribute")
    try:
        return uuid.UUID(text.strip()).bytes
    except ValueError:
        raise InputError(f"{where}: kid {escape(text)!r} is not a UUID") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes | None:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _name(tag: str) -> str:
    ns, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return f"{local} in {ns}" if ns else local


def _uuid(kid: bytes) -> str:
    return str(uuid.UUID(bytes=kid))
