"""CPIX 2.3 export and import: round trips, a hand-written document, one-line errors."""

from __future__ import annotations

import base64
import stat
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from packager.drm import pssh as drm
from packager.errors import InputError
from packager.keys.cpix import CPIX_NS, PSKC_NS, export_cpix, parse_cpix, read_cpix, write_cpix
from packager.keys.model import ClassThresholds, ContentKey, KeySet, TrackClass

NS = {"cpix": CPIX_NS, "pskc": PSKC_NS}
KID_A = bytes.fromhex("00112233445566778899aabbccddeeff")
KEY_A = bytes.fromhex("0123456789abcdef0123456789abcdef")
KID_V = bytes.fromhex("ffeeddccbbaa99887766554433221100")
KEY_V = bytes.fromhex("fedcba9876543210fedcba9876543210")
KID_U = bytes.fromhex("0f0e0d0c0b0a09080706050403020100")
KEY_U = bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf")


def per_class_set() -> KeySet:
    audio = ContentKey(KID_A, KEY_A, iv=bytes.fromhex("0102030405060708"))
    video = ContentKey(KID_V, KEY_V)
    uhd = ContentKey(KID_U, KEY_U)
    return KeySet("film-1", {TrackClass.AUDIO: audio, TrackClass.SD: video,
                             TrackClass.HD: video, TrackClass.UHD: uhd})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_export_import_round_trips_a_per_class_key_set() -> None:
    keyset = per_class_set()
    doc = parse_cpix(export_cpix(keyset), "film.xml")
    assert doc.content_id == "film-1"
    assert doc.keys == keyset.distinct_keys
    assert doc.keys[0].iv == bytes.fromhex("0102030405060708")
    assert doc.classes[KID_V] == (TrackClass.SD, TrackClass.HD)
    assert doc.keyset == keyset


def test_export_import_round_trips_a_single_key_set_and_generated_keys() -> None:
    for keyset in (KeySet.single("one", ContentKey(KID_A, KEY_A)),
                   KeySet.generate("gen", per_class=True)):
        assert parse_cpix(export_cpix(keyset, "cbcs")).keyset == keyset


def test_export_is_deterministic() -> None:
    assert export_cpix(per_class_set()) == export_cpix(per_class_set())


def test_export_elements_follow_cpix_2_3() -> None:
    root = ET.fromstring(export_cpix(per_class_set(), "cenc"))
    assert root.tag == f"{{{CPIX_NS}}}CPIX"
    assert root.get("version") == "2.3"
    assert root.get("contentId") == "film-1"
    keys = root.findall("cpix:ContentKeyList/cpix:ContentKey", NS)
    assert [k.get("kid") for k in keys] == [str(uuid.UUID(bytes=k)) for k in (KID_A, KID_V, KID_U)]
    assert keys[0].get("explicitIV") == b64(bytes.fromhex("0102030405060708"))
    assert keys[1].get("explicitIV") is None
    assert keys[1].findtext("cpix:Data/pskc:Secret/pskc:PlainValue", namespaces=NS) == b64(KEY_V)
    assert {k.get("commonEncryptionScheme") for k in keys} == {"cenc"}


def test_drm_system_list_holds_each_keys_pssh_boxes() -> None:
    root = ET.fromstring(export_cpix(per_class_set(), "cbcs"))
    systems = root.findall("cpix:DRMSystemList/cpix:DRMSystem", NS)
    got = {(s.get("kid"), s.get("systemId")): s.findtext("cpix:PSSH", namespaces=NS)
           for s in systems}
    assert len(got) == len(systems) == 3 * 3  # common, PlayReady, Widevine for 3 keys
    video = ContentKey(KID_V, KEY_V)
    for box in drm.pssh_boxes([video], "cbcs"):
        assert got[(video.kid_uuid, str(uuid.UUID(bytes=box.system_id)))] == b64(box.box)
    # With a Widevine content_id, the Widevine boxes carry it, as `package` writes them.
    root = ET.fromstring(export_cpix(per_class_set(), "cbcs", widevine_content_id=b"film-1"))
    boxes = {s.findtext("cpix:PSSH", namespaces=NS) for s in
             root.findall("cpix:DRMSystemList/cpix:DRMSystem", NS)}
    for box in drm.pssh_boxes([video], "cbcs", content_id=b"film-1"):
        assert b64(box.box) in boxes


def test_usage_rules_tag_keys_by_class_with_filters() -> None:
    root = ET.fromstring(export_cpix(per_class_set()))
    rules = {r.get("intendedTrackType"): r
             for r in root.findall("cpix:ContentKeyUsageRuleList/cpix:ContentKeyUsageRule", NS)}
    assert set(rules) == {"AUDIO", "SD+HD", "UHD"}
    assert rules["AUDIO"].find("cpix:AudioFilter", NS) is not None
    video = [dict(f.attrib) for f in rules["SD+HD"].findall("cpix:VideoFilter", NS)]
    assert video == [{"maxPixels": "589824"}, {"minPixels": "589825", "maxPixels": "2073600"}]
    assert [dict(f.attrib) for f in rules["UHD"].findall("cpix:VideoFilter", NS)] == [
        {"minPixels": "2073601"}]


def test_a_single_key_is_one_rule_for_all_tracks() -> None:
    root = ET.fromstring(export_cpix(KeySet.single("x", ContentKey(KID_A, KEY_A))))
    (rule,) = root.findall("cpix:ContentKeyUsageRuleList/cpix:ContentKeyUsageRule", NS)
    assert rule.get("intendedTrackType") == "ALL"
    assert rule.find("cpix:AudioFilter", NS) is not None
    assert rule.find("cpix:VideoFilter", NS) is not None


#: As a licence vendor writes it: prefixes of its own, whitespace, a base64 key split over lines,
#: signaling we do not import, and usage rules named its way (classes come from the filters).
HAND_WRITTEN = f"""<?xml version="1.0" encoding="UTF-8"?>
<CPIX xmlns="{CPIX_NS}" xmlns:p="{PSKC_NS}" contentId="vendor-42" version="2.3">
  <ContentKeyList>
    <ContentKey kid="{uuid.UUID(bytes=KID_A)}" commonEncryptionScheme="cbcs"
                explicitIV="{b64(bytes(range(16)))}">
      <Data><p:Secret><p:PlainValue>
        {b64(KEY_A)[:12]}
        {b64(KEY_A)[12:]}
      </p:PlainValue></p:Secret></Data>
    </ContentKey>
    <ContentKey kid="{uuid.UUID(bytes=KID_V)}">
      <Data><p:Secret><p:PlainValue>{b64(KEY_V)}</p:PlainValue></p:Secret></Data>
    </ContentKey>
  </ContentKeyList>
  <DRMSystemList>
    <DRMSystem kid="{uuid.UUID(bytes=KID_V)}" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed">
      <ContentProtectionData>PGNlbmM6cHNzaD4=</ContentProtectionData>
    </DRMSystem>
  </DRMSystemList>
  <ContentKeyUsageRuleList>
    <ContentKeyUsageRule kid="{uuid.UUID(bytes=KID_A)}" intendedTrackType="Audio">
      <AudioFilter/>
    </ContentKeyUsageRule>
    <ContentKeyUsageRule kid="{uuid.UUID(bytes=KID_V)}" intendedTrackType="Video">
      <VideoFilter minPixels="1"/>
    </ContentKeyUsageRule>
  </ContentKeyUsageRuleList>
</CPIX>
"""


def test_a_hand_written_cpix_2_3_document_imports(tmp_path: Path) -> None:
    path = tmp_path / "vendor.xml"
    path.write_text(HAND_WRITTEN)
    doc = read_cpix(path)
    assert doc.content_id == "vendor-42"
    assert doc.keys == (ContentKey(KID_A, KEY_A, bytes(range(16))), ContentKey(KID_V, KEY_V))
    assert doc.classes[KID_A] == (TrackClass.AUDIO,)
    assert doc.classes[KID_V] == (TrackClass.SD, TrackClass.HD, TrackClass.UHD)
    keyset = doc.keyset
    assert keyset is not None
    assert keyset.key_for("audio").kid == KID_A
    assert keyset.key_for("video", 2160).kid == KID_V


def test_video_filters_map_to_classes_by_pixel_count() -> None:
    rules = "".join(
        f'<cpix:ContentKeyUsageRule kid="{uuid.UUID(bytes=kid)}">{f}</cpix:ContentKeyUsageRule>'
        for kid, f in ((KID_A, "<cpix:AudioFilter/>"),
                       (KID_V, '<cpix:VideoFilter maxPixels="409920"/>'),  # 854x480
                       (KID_U, '<cpix:VideoFilter minPixels="921600"/>'))  # 1280x720 and up
    )
    keys = "".join(
        f'<cpix:ContentKey kid="{uuid.UUID(bytes=kid)}"><cpix:Data><pskc:Secret>'
        f"<pskc:PlainValue>{b64(key)}</pskc:PlainValue></pskc:Secret></cpix:Data>"
        "</cpix:ContentKey>"
        for kid, key in ((KID_A, KEY_A), (KID_V, KEY_V), (KID_U, KEY_U))
    )
    doc = parse_cpix(
        f'<cpix:CPIX xmlns:cpix="{CPIX_NS}" xmlns:pskc="{PSKC_NS}" contentId="c">'
        f"<cpix:ContentKeyList>{keys}</cpix:ContentKeyList>"
        f"<cpix:ContentKeyUsageRuleList>{rules}</cpix:ContentKeyUsageRuleList></cpix:CPIX>"
        .encode(), thresholds=ClassThresholds())
    assert doc.classes == {KID_A: (TrackClass.AUDIO,), KID_V: (TrackClass.SD,),
                           KID_U: (TrackClass.HD, TrackClass.UHD)}
    assert doc.keyset is not None


def test_keys_without_usage_rules_are_loose_keys() -> None:
    keys = "".join(
        f'<cpix:ContentKey kid="{uuid.UUID(bytes=kid)}"><cpix:Data><pskc:Secret>'
        f"<pskc:PlainValue>{b64(key)}</pskc:PlainValue></pskc:Secret></cpix:Data>"
        "</cpix:ContentKey>" for kid, key in ((KID_A, KEY_A), (KID_V, KEY_V))
    )
    doc = parse_cpix(f'<cpix:CPIX xmlns:cpix="{CPIX_NS}" xmlns:pskc="{PSKC_NS}">'
                     f"<cpix:ContentKeyList>{keys}</cpix:ContentKeyList></cpix:CPIX>".encode())
    assert len(doc.keys) == 2
    assert doc.keyset is None


def _doc(content_key: str, extra: str = "") -> bytes:
    return (f'<cpix:CPIX xmlns:cpix="{CPIX_NS}" xmlns:pskc="{PSKC_NS}" contentId="c">'
            f"<cpix:ContentKeyList>{content_key}</cpix:ContentKeyList>{extra}"
            "</cpix:CPIX>").encode()


def _key(kid: str, inner: str, attrs: str = "") -> str:
    return f'<cpix:ContentKey kid="{kid}"{attrs}><cpix:Data><pskc:Secret>{inner}' \
           "</pskc:Secret></cpix:Data></cpix:ContentKey>"


KID_TEXT = str(uuid.UUID(bytes=KID_A))
PLAIN = f"<pskc:PlainValue>{b64(KEY_A)}</pskc:PlainValue>"
MALFORMED = {
    "not xml": (b"<cpix:CPIX", "not a CPIX document (XML error at line 1)"),
    "wrong root": (b'<CPIX xmlns="urn:other"/>', "root element CPIX in urn:other"),
    "no keys": (_doc(""), "cpix:ContentKeyList holds no cpix:ContentKey"),
    "no kid": (_doc(f"<cpix:ContentKey>{PLAIN}</cpix:ContentKey>"),
               "cpix:ContentKey #1: no kid attribute"),
    "bad kid": (_doc(_key("not-a-uuid", PLAIN)), "cpix:ContentKey #1: kid 'not-a-uuid' is not"),
    "no key": (_doc(f'<cpix:ContentKey kid="{KID_TEXT}"/>'),
               f"cpix:ContentKey #1 (kid {KID_TEXT}): no key (cpix:Data/pskc:Secret/"),
    "short key": (_doc(_key(KID_TEXT, f"<pskc:PlainValue>{b64(KEY_A[:15])}</pskc:PlainValue>")),
                  "pskc:PlainValue is not a 16-byte key in base64"),
    "not base64": (_doc(_key(KID_TEXT, "<pskc:PlainValue>!!notbase64!!</pskc:PlainValue>")),
                   "pskc:PlainValue is not a 16-byte key in base64"),
    "encrypted": (_doc(_key(KID_TEXT, "<pskc:EncryptedValue><x/></pskc:EncryptedValue>")),
                  "encrypted content keys (pskc:EncryptedValue) are not supported"),
    "bad iv": (_doc(_key(KID_TEXT, PLAIN, ' explicitIV="AAEC"')),
               "explicitIV is not 8 or 16 bytes in base64"),
    "two keys one kid": (
        _doc(_key(KID_TEXT, PLAIN)
             + _key(KID_TEXT, f"<pskc:PlainValue>{b64(KEY_V)}</pskc:PlainValue>")),
        f"cpix:ContentKey #2: KID {KID_TEXT} is given twice with different keys"),
    "rule for unknown kid": (
        _doc(_key(KID_TEXT, PLAIN), '<cpix:ContentKeyUsageRuleList><cpix:ContentKeyUsageRule '
             f'kid="{uuid.UUID(bytes=KID_V)}"/></cpix:ContentKeyUsageRuleList>'),
        "cpix:ContentKeyUsageRule #1: KID ffeeddcc-bbaa-9988-7766-554433221100 is not in"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_documents_give_one_line_errors_naming_file_and_element(
    case: str, tmp_path: Path
) -> None:
    data, expected = MALFORMED[case]
    path = tmp_path / "bad.xml"
    path.write_bytes(data)
    with pytest.raises(InputError) as info:
        read_cpix(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message
    assert b64(KEY_A) not in message
    assert b64(KEY_A[:15]) not in message
    assert b64(KEY_V) not in message


def test_write_cpix_is_private_and_replaces_whole(tmp_path: Path) -> None:
    path = tmp_path / "keys.xml"
    path.write_text("old")
    write_cpix(path, export_cpix(per_class_set()))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_cpix(path).keyset == per_class_set()
    assert [p.name for p in tmp_path.iterdir()] == ["keys.xml"]
