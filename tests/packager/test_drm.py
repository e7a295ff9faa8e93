"""Per-system PSSH boxes: byte for byte what Shaka Packager writes for the same keys, and the
PlayReady header checked as UTF-16 XML against an independently computed CHECKSUM."""

from __future__ import annotations

import base64
import re
import struct
import subprocess
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from packager.drm.protection import TrackProtection
from packager.drm.pssh import (
    PLAYREADY_HEADER_NS,
    SystemPssh,
    common_pssh,
    kid_guid_bytes,
    playready_checksum,
    playready_header,
    playready_object,
    playready_pssh,
    pssh_boxes,
    widevine_pssh,
    widevine_pssh_data,
)
from packager.drm.signalling import track_key_attributes
from packager.drm.systems import COMMON_SYSTEM_ID, PLAYREADY_SYSTEM_ID, WIDEVINE_SYSTEM_ID
from packager.drm.systems import PSSH_SYSTEMS as SYSTEMS
from packager.errors import InputError
from packager.keys.model import ContentKey
from packager.mp4.isobmff import iter_boxes
from packager.tools import find_tool
from testbed.clips import ClipSpec, make_clip

SD = ContentKey(
    bytes.fromhex("00112233445566778899aabbccddeeff"),
    bytes.fromhex("0123456789abcdef0123456789abcdef"),
)
AUDIO = ContentKey(
    bytes.fromhex("ffeeddccbbaa99887766554433221100"),
    bytes.fromhex("fedcba9876543210fedcba9876543210"),
)
LA_URL = "https://licence.example/rightsmanager.asmx?a=1&b=2"
NS = {"pr": PLAYREADY_HEADER_NS}
MPD_NS = {
    "d": "urn:mpeg:dash:schema:mpd:2011",
    "cenc": "urn:mpeg:cenc:2013",
    "mspr": "urn:microsoft:playready",
}


@dataclass(frozen=True)
class ShakaRun:
    """Shaka Packager's pssh boxes per track (its init segment's moov), and what it was given."""

    scheme: str
    #: label -> key, in Shaka Packager's KID order (by label: AUDIO before SD).
    keys: dict[str, ContentKey]
    la_url: str | None
    boxes: dict[str, list[bytes]]  # label -> pssh boxes in moov
    mpd: Path


@pytest.fixture(scope="session")
def drm_clip(clips: Path) -> Path:
    return make_clip(clips / "drm.mp4", ClipSpec(duration=1.0, width=128, height=72))


@pytest.fixture(
    scope="session",
    params=[("cenc", 1), ("cbcs", 1), ("cenc", 2), ("cbcs", 2)],
    ids=["cenc-one-key", "cbcs-one-key", "cenc-two-keys-la-url", "cbcs-two-keys-la-url"],
)
def shaka(
    request: pytest.FixtureRequest, drm_clip: Path, tmp_path_factory: pytest.TempPathFactory
) -> ShakaRun:
    """One key for the video track alone, or a key per track (AUDIO, SD) with an LA_URL given
    as --playready_extra_header_data (Shaka Packager's way to add header elements)."""
    scheme, count = request.param
    out = tmp_path_factory.mktemp(f"shaka-drm-{scheme}-{count}")
    keys = {"SD": SD} if count == 1 else {"AUDIO": AUDIO, "SD": SD}
    streams = {"SD": "video", "AUDIO": "audio"}
    args = [str(find_tool("packager").path)]
    args += [f"in={drm_clip},stream={streams[label]},output={out}/{label}.mp4,drm_label={label}"
             for label in keys]
    args += [
        "--enable_raw_key_encryption",
        "--keys", ",".join(f"label={label}:key_id={k.kid.hex()}:key={k.key.hex()}"
                           for label, k in keys.items()),
        "--protection_systems", "Widevine,PlayReady,CommonSystem",
        "--protection_scheme", scheme, "--clear_lead", "0", "--mpd_output", f"{out}/m.mpd",
    ]
    la_url = None
    if count == 2:
        la_url = LA_URL
        args += ["--playready_extra_header_data",
                 f"<LA_URL>{LA_URL.replace('&', '&amp;')}</LA_URL>"]
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-500:]
    boxes = {label: _moov_pssh((out / f"{label}.mp4").read_bytes()) for label in keys}
    return ShakaRun(scheme, keys, la_url, boxes, out / "m.mpd")


def _moov_pssh(mp4: bytes) -> list[bytes]:
    moov = next(b for b in iter_boxes(mp4) if b.type == b"moov")
    children = iter_boxes(mp4, moov.body, moov.end)
    return [mp4[b.offset : b.end] for b in children if b.type == b"pssh"]


def _theirs(run: ShakaRun, label: str, system_id: bytes) -> list[bytes]:
    return [box for box in run.boxes[label] if box[12:28] == system_id]


def _ours(run: ShakaRun, label: str, system: str) -> list[bytes]:
    found = pssh_boxes(list(run.keys.values()), run.scheme, (system,), la_url=run.la_url,
                       for_track=run.keys[label])
    return [p.box for p in found]


# --- equal to Shaka Packager ------------------------------------------------------------------


def test_widevine_pssh_equals_shaka_packagers(shaka: ShakaRun) -> None:
    for label in shaka.keys:
        assert _ours(shaka, label, "widevine") == _theirs(shaka, label, WIDEVINE_SYSTEM_ID)


def test_playready_pssh_equals_shaka_packagers(shaka: ShakaRun) -> None:
    """One box per track holding that track's own KID (a WRMHEADER signals one key)."""
    for label in shaka.keys:
        assert _ours(shaka, label, "playready") == _theirs(shaka, label, PLAYREADY_SYSTEM_ID)


def test_common_pssh_equals_shaka_packagers(shaka: ShakaRun) -> None:
    for label in shaka.keys:
        assert _ours(shaka, label, "common") == _theirs(shaka, label, COMMON_SYSTEM_ID)


def test_a_track_carries_exactly_our_boxes_in_shaka_packagers_order(shaka: ShakaRun) -> None:
    """Nothing Shaka Packager adds is missing from ours, and the moov order is the same."""
    for label, key in shaka.keys.items():
        ours = pssh_boxes(list(shaka.keys.values()), shaka.scheme, la_url=shaka.la_url,
                          for_track=key)
        assert [p.box for p in ours] == shaka.boxes[label]


def test_manifest_pssh_and_mspr_pro_equal_shaka_packagers(shaka: ShakaRun) -> None:
    """What the DASH writer will take from SystemPssh: `cenc:pssh` is the whole box in base64,
    `mspr:pro` the PlayReady Object (the box's Data), per AdaptationSet and its track's key."""
    mpd = ET.parse(shaka.mpd).getroot()
    labels = {"video": "SD", "audio": "AUDIO"}
    seen = 0
    for adaptation_set in mpd.iterfind(".//d:AdaptationSet", MPD_NS):
        label = labels[adaptation_set.get("contentType", "")]
        ours = {p.system_urn: p for p in pssh_boxes(
            list(shaka.keys.values()), shaka.scheme, la_url=shaka.la_url,
            for_track=shaka.keys[label])}
        for element in adaptation_set.iterfind("d:ContentProtection", MPD_NS):
            urn = element.get("schemeIdUri", "")
            if not urn.startswith("urn:uuid:"):
                continue
            system = ours.pop(urn)
            assert element.findtext("cenc:pssh", namespaces=MPD_NS) == _b64(system.box)
            pro = element.findtext("mspr:pro", namespaces=MPD_NS)
            assert pro == (_b64(system.data) if system.system == "playready" else None)
            seen += 1
        assert not ours, f"Shaka Packager signals no {sorted(ours)} for {label}"
    assert seen == 3 * len(shaka.keys)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- the PlayReady header ---------------------------------------------------------------------


def _wrmheader(pro: bytes) -> ET.Element:
    """Read a PlayReady Object as the spec lays it out (little-endian) and parse its XML."""
    length, count = struct.unpack_from("<IH", pro)
    record_type, record_length = struct.unpack_from("<HH", pro, 6)
    assert (length, count, record_type) == (len(pro), 1, 1)
    assert record_length == len(pro) - 10
    text = pro[10:].decode("utf-16-le")
    assert not text.startswith("\ufeff")
    return ET.fromstring(text)


def _independent_checksum(key: ContentKey) -> str:
    guid = uuid.UUID(bytes=key.kid).bytes_le
    encryptor = Cipher(algorithms.AES(key.key), modes.ECB()).encryptor()
    return base64.b64encode((encryptor.update(guid) + encryptor.finalize())[:8]).decode()


@pytest.mark.parametrize("key", [SD, AUDIO], ids=["sd", "audio"])
def test_cenc_header_is_4_0_aesctr_with_the_checksum_of_the_kid(key: ContentKey) -> None:
    root = _wrmheader(playready_object(key, "cenc"))
    assert root.tag == f"{{{PLAYREADY_HEADER_NS}}}WRMHEADER"
    assert root.get("version") == "4.0.0.0"
    assert root.findtext("pr:DATA/pr:PROTECTINFO/pr:ALGID", namespaces=NS) == "AESCTR"
    assert root.findtext("pr:DATA/pr:PROTECTINFO/pr:KEYLEN", namespaces=NS) == "16"
    kid = root.findtext("pr:DATA/pr:KID", namespaces=NS)
    assert kid is not None
    assert uuid.UUID(bytes_le=base64.b64decode(kid)).bytes == key.kid
    assert root.findtext("pr:DATA/pr:CHECKSUM", namespaces=NS) == _independent_checksum(key)
    assert root.find("pr:DATA/pr:LA_URL", NS) is None


def test_checksum_known_vectors() -> None:
    """Vectors from Shaka Packager v3.8's headers for these keys (and the AES-ECB rule)."""
    assert playready_checksum(SD) == "QuKmVjK8B3k="
    assert playready_checksum(AUDIO) == "zkTY7u5kk1A="


def test_kid_is_a_little_endian_guid() -> None:
    assert kid_guid_bytes(SD.kid).hex() == "33221100554477668899aabbccddeeff"
    assert base64.b64encode(kid_guid_bytes(SD.kid)) == b"MyIRAFVEd2aImaq7zN3u/w=="


def test_cbcs_header_is_4_3_aescbc_without_checksum() -> None:
    root = _wrmheader(playready_object(SD, "cbcs"))
    assert root.get("version") == "4.3.0.0"
    kids = root.findall("pr:DATA/pr:PROTECTINFO/pr:KIDS/pr:KID", NS)
    assert [k.get("ALGID") for k in kids] == ["AESCBC"]
    assert uuid.UUID(bytes_le=base64.b64decode(kids[0].get("VALUE", ""))).bytes == SD.kid
    assert "CHECKSUM" not in ET.tostring(root, encoding="unicode")
    assert kids[0].get("CHECKSUM") is None


@pytest.mark.parametrize("scheme", ["cenc", "cbcs"])
def test_la_url_is_escaped_xml_text(scheme: str) -> None:
    header = playready_header(SD, scheme, LA_URL)
    assert "a=1&amp;b=2" in header
    root = ET.fromstring(header)
    assert root.findtext("pr:DATA/pr:LA_URL", namespaces=NS) == LA_URL


def test_playready_pssh_is_version_0_with_the_object_as_data() -> None:
    box = playready_pssh(SD, "cenc")
    (size,) = struct.unpack_from(">I", box)
    assert (size, box[4:8], box[8], box[12:28]) == (len(box), b"pssh", 0, PLAYREADY_SYSTEM_ID)
    assert box[32:] == playready_object(SD, "cenc")
    assert struct.unpack_from(">I", box, 28)[0] == len(box) - 32


# --- Widevine protobuf ------------------------------------------------------------------------


def test_widevine_data_fields_in_number_order_with_content_id() -> None:
    """key_id (field 2, bytes) per KID, content_id (4, bytes), protection_scheme (9, varint of
    the fourcc as a big-endian uint32): encoded here by hand from the protobuf wire format."""
    data = widevine_pssh_data([AUDIO.kid, SD.kid], "cbcs", b"movie-1")
    expected = (
        b"\x12\x10" + AUDIO.kid + b"\x12\x10" + SD.kid + b"\x22\x07movie-1"
        + b"\x48" + bytes.fromhex("f3c6899b06")
    )
    assert data == expected
    # 0x63626373 ('cbcs') in 7-bit groups, least significant first.
    value = sum((b & 0x7F) << (7 * i) for i, b in enumerate(bytes.fromhex("f3c6899b06")))
    assert value == int.from_bytes(b"cbcs", "big")


def test_widevine_pssh_has_no_kid_list_in_the_box() -> None:
    box = widevine_pssh([SD.kid], "cenc")
    assert box[8] == 0
    assert box[32:] == widevine_pssh_data([SD.kid], "cenc")


# --- the system table and its refusals --------------------------------------------------------


def test_common_pssh_is_the_cenc_module_builder() -> None:
    [common] = pssh_boxes([SD, AUDIO], "cenc", ("common",))
    assert common.box == common_pssh([SD.kid, AUDIO.kid])
    assert common.box[8] == 1


def test_systems_come_in_shaka_packagers_order_with_scheme_urns() -> None:
    found = pssh_boxes([SD, AUDIO], "cenc", ("widevine", "common", "playready"))
    assert [p.system for p in found] == ["common", "playready", "playready", "widevine"]
    assert [p.kids for p in found if p.system == "playready"] == [(SD.kid,), (AUDIO.kid,)]
    assert found[0].system_urn == "urn:uuid:1077efec-c0b2-4d02-ace3-3c1e52e2fb4b"
    assert found[1].system_urn == "urn:uuid:9a04f079-9840-4286-ab92-e65be0885f95"
    assert found[3].system_urn == "urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"
    assert found[1].data == playready_object(SD, "cenc")
    assert found[3].data == widevine_pssh_data([SD.kid, AUDIO.kid], "cenc")
    assert set(SYSTEMS) == {p.system for p in found}


def test_no_key_byte_is_in_any_box() -> None:
    for scheme in ("cenc", "cbcs"):
        for p in pssh_boxes([SD, AUDIO], scheme, la_url=LA_URL, content_id=b"c"):
            assert isinstance(p, SystemPssh)
            for key in (SD, AUDIO):
                assert key.key not in p.box
                assert key.key.hex() not in p.box.decode("latin-1").lower()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: pssh_boxes([SD], "cens"), "scheme"),
        (lambda: pssh_boxes([SD], "cenc", ("fairplay",)), "unknown DRM system"),
        (lambda: pssh_boxes([], "cenc"), "at least one"),
        (lambda: pssh_boxes([SD, ContentKey(SD.kid, AUDIO.key)], "cenc"), "two different"),
        (lambda: pssh_boxes([SD], "cenc", for_track=AUDIO), "not among"),
        (lambda: widevine_pssh([b"short"], "cenc"), "16 bytes"),
        (lambda: playready_header(SD, "cenc", " "), "LA_URL"),
        (lambda: playready_object(SD, "cenc", "https://x/" + "a" * 40000), "too long"),
    ],
)
def test_bad_input_is_refused_with_a_reason(call: Callable[[], object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        call()


# --- HLS key lines against Shaka Packager's ----------------------------------------------------


IV = bytes.fromhex("611b9b1d1466eb96e8be48d47d65a3fd")  # a cbcs constant IV for both packagers


def _attributes(attribute_list: str) -> dict[str, str]:
    """An HLS attribute list (RFC 8216 §4.2) as a dict; quoted values keep their quotes."""
    return dict(re.findall(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)', attribute_list))


def _shaka_key_lines(drm_clip: Path, out: Path, systems: str, *extra: str) -> list[str]:
    """The EXT-X-KEY attribute lists Shaka Packager writes for one cbcs video track."""
    result = subprocess.run([
        str(find_tool("packager").path),
        f"in={drm_clip},stream=video,output={out}/v.mp4,playlist_name=v.m3u8",
        "--enable_raw_key_encryption", "--protection_scheme", "cbcs", "--clear_lead", "0",
        "--keys", f"label=:key_id={SD.kid.hex()}:key={SD.key.hex()}", "--iv", IV.hex(),
        "--protection_systems", systems, "--hls_master_playlist_output", f"{out}/m.m3u8", *extra,
    ], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-500:]
    return [line.removeprefix("#EXT-X-KEY:") for line in (out / "v.m3u8").read_text().splitlines()
            if line.startswith("#EXT-X-KEY:")]


def test_fairplay_key_line_is_shaka_packagers_plus_keyid(drm_clip: Path, tmp_path: Path) -> None:
    """Shaka Packager writes FairPlay's EXT-X-KEY without KEYID and IV; ours adds KEYID (hls.js
    reads a FairPlay KID only from it) and is otherwise the same line."""
    uri = f"skd://{SD.kid.hex()}"
    [line] = _shaka_key_lines(drm_clip, tmp_path, "FairPlay", "--hls_key_uri", uri)
    theirs = _attributes(line)
    protection = TrackProtection("cbcs", SD.kid, 0, IV, 1, 9, b"", ("fairplay",))
    [ours_line] = track_key_attributes(protection)
    ours = _attributes(ours_line)
    assert ours == {**theirs, "KEYID": f"0x{SD.kid.hex()}"}
    assert "IV" not in ours


def test_clearkey_identity_line_is_shaka_packagers(drm_clip: Path, tmp_path: Path) -> None:
    """Shaka Packager signals ClearKey (the common system) in cbcs HLS as one KEYFORMAT="identity"
    line; ours is the same line, then the org.w3.clearkey one hls.js reads."""
    [theirs] = _shaka_key_lines(drm_clip, tmp_path, "CommonSystem")
    protection = TrackProtection("cbcs", SD.kid, 0, IV, 1, 9, b"", ("clearkey",))
    identity, clearkey = track_key_attributes(protection)
    assert _attributes(identity) == _attributes(theirs)
    assert _attributes(clearkey)["KEYFORMAT"] == '"org.w3.clearkey"'
