"""`cdnpack package` with keys and DRM systems: keys stored before use and never in the tree,
one key per track class that Shaka Packager decrypts with, and per-system pssh boxes, DASH
ContentProtection and HLS EXT-X-KEY / EXT-X-SESSION-KEY signaling equal to drm.py's."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import m3u8
import pytest
from lxml import etree

from packager.drm import pssh as drm
from packager.drm.systems import PSSH_SYSTEMS
from packager.encryption.spec import EncryptionSpec
from packager.errors import InputError
from packager.keys.keystore import Keystore
from packager.keys.model import ClassThresholds, ContentKey, KeySet
from packager.mp4.isobmff import iter_boxes
from packager.output.pipeline import PackageRequest, PackageResult, package
from packager.output.release import read_release
from packager.tools import find_tool
from tests.conftest import cdnpack_cli, concat, run

NS = {
    "d": "urn:mpeg:dash:schema:mpd:2011",
    "cenc": "urn:mpeg:cenc:2013",
    "mspr": "urn:microsoft:playready",
}
WIDEVINE_URN = "urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"
PLAYREADY_URN = "urn:uuid:9a04f079-9840-4286-ab92-e65be0885f95"
COMMON_URN = "urn:uuid:1077efec-c0b2-4d02-ace3-3c1e52e2fb4b"
CLEARKEY_URN = "urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e"
MP4PROTECTION = "urn:mpeg:dash:mp4protection:2011"
#: 360p is HD under these thresholds, so the copy of the 360p source gets an HD key and its
#: audio an AUDIO key: two KIDs from one small clip.
THRESHOLDS = ClassThresholds(sd_max_height=240, hd_max_height=1080)


@pytest.fixture(scope="session")
def drm_clear(source_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> PackageResult:
    out = tmp_path_factory.mktemp("drm-clear") / "out"
    return package(PackageRequest(source=source_clip, output=out, copy=True, segment_duration=2))


@pytest.fixture(scope="session")
def keyset() -> KeySet:
    return KeySet.generate("drm-test", per_class=True, thresholds=THRESHOLDS)


@pytest.fixture(scope="session")
def drm_cenc(
    source_clip: Path, keyset: KeySet, tmp_path_factory: pytest.TempPathFactory
) -> PackageResult:
    spec = EncryptionSpec(
        "cenc", keyset.distinct_keys[0], keyset=keyset,
        systems=("widevine", "playready", "clearkey"),
    )
    out = tmp_path_factory.mktemp("drm-cenc") / "out"
    return package(
        PackageRequest(source=source_clip, output=out, copy=True, segment_duration=2,
                       encryption=spec)
    )


@pytest.fixture(scope="session")
def drm_cli(
    source_clip: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    """`--keys generate --per-class --encrypt cbcs` through the real CLI (all four systems)."""
    base = tmp_path_factory.mktemp("drm-cli")
    out, store = base / "out", base / "keystore"
    result = cdnpack_cli("package", source_clip, "-o", out, "--copy", "--segment-duration", "2",
                         "--encrypt", "cbcs", "--keys", "generate", "--per-class",
                         "--keystore", store, "--json")
    assert result.returncode == 0, result.stderr
    return out, store, result


def track_key(keyset: KeySet, result: PackageResult, rid: str) -> ContentKey:
    r = next(r for r in result.release.renditions if r.id == rid)
    return keyset.key_for(r.kind, r.height)


def init_pssh(init: Path) -> list[bytes]:
    data = init.read_bytes()
    moov = next(b for b in iter_boxes(data) if b.type == b"moov")
    return [data[b.offset : b.end] for b in iter_boxes(data, moov.body, moov.end)
            if b.type == b"pssh"]


def framemd5(path: Path) -> list[str]:
    result = run(find_tool("ffmpeg").path, "-v", "error", "-nostdin", "-i", path,
                 "-map", "0", "-f", "framemd5", "-")
    assert result.returncode == 0, result.stderr[-300:]
    return [line for line in result.stdout.splitlines() if not line.startswith("#")]


def joined(directory: Path, target: Path) -> Path:
    return concat([directory / "init.mp4", *sorted(directory.glob("seg_*.m4s"))], target)


def test_generated_keys_are_in_the_keystore_and_nowhere_in_the_tree(
    drm_cli: tuple[Path, Path, subprocess.CompletedProcess[str]],
) -> None:
    out, store, result = drm_cli
    stored = list(Keystore(store))
    assert len(stored) == 4  # one key per class: AUDIO, SD, HD, UHD
    release = read_release(out)
    assert release.protection is not None
    assert release.protection.scheme == "cbcs"
    # The release uses two of them: AUDIO and SD (the 360p video, default thresholds).
    assert len(release.protection.kids) == 2
    assert set(release.protection.kids) <= {s.key.kid_uuid for s in stored}
    assert release.protection.systems == ["widevine", "playready", "clearkey", "fairplay"]
    assert len(set(release.protection.rendition_kids.values())) == 2
    assert json.loads(result.stdout)["protection"]["kids"] == release.protection.kids
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 5
    blobs = [p.read_bytes() for p in files] + [result.stdout.encode(), result.stderr.encode()]
    for entry in stored:
        key = entry.key.key
        forms = [key, key.hex().encode(), key.hex().upper().encode(), base64.b64encode(key),
                 base64.urlsafe_b64encode(key).rstrip(b"=")]
        for blob in blobs:
            assert not any(form in blob for form in forms), "a key leaked into the output"


def test_keystore_inside_the_output_is_refused(source_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cdnpack_cli("package", source_clip, "-o", out, "--copy", "--encrypt", "cenc",
                         "--keys", "generate", "--keystore", out / "keys")
    assert result.returncode == 2, result.stderr
    assert "outside the output tree" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_fairplay_with_cenc_is_refused(source_clip: Path, tmp_path: Path) -> None:
    result = cdnpack_cli("package", source_clip, "-o", tmp_path / "out", "--copy",
                         "--encrypt", "cenc", "--keys", "generate", "--keystore", tmp_path / "k",
                         "--drm", "widevine,fairplay")
    assert result.returncode == 2
    assert "FairPlay needs --encrypt cbcs" in result.stderr
    assert not (tmp_path / "k").exists() or not list(Keystore(tmp_path / "k"))


def test_per_class_keys_differ_and_shaka_decrypts_each_track_with_its_own(
    drm_cenc: PackageResult, drm_clear: PackageResult, keyset: KeySet, tmp_path: Path
) -> None:
    assert drm_cenc.release.protection is not None
    kids = drm_cenc.release.protection.rendition_kids
    assert len(kids) == 2
    assert len(set(kids.values())) == 2
    for r in drm_cenc.release.renditions:
        key = track_key(keyset, drm_cenc, r.id)
        assert kids[r.id] == key.kid_uuid
        encrypted = joined(drm_cenc.output / r.id, tmp_path / f"{r.id}-enc.mp4")
        clear = framemd5(joined(drm_clear.output / r.id, tmp_path / f"{r.id}-clear.mp4"))
        decrypted = tmp_path / f"{r.id}-dec.mp4"
        result = run(find_tool("packager").path,
                     f"in={encrypted},stream={r.kind},output={decrypted}",
                     "--enable_raw_key_decryption",
                     "--keys", f"key_id={key.kid.hex()}:key={key.key.hex()}")
        assert result.returncode == 0, result.stderr[-500:]
        assert framemd5(decrypted) == clear, f"{r.id}: frames differ after decryption"
        assert len(clear) >= 75


def test_init_segments_carry_the_tracks_pssh_boxes_in_shaka_order(
    drm_cenc: PackageResult, keyset: KeySet
) -> None:
    for r in drm_cenc.release.renditions:
        key = track_key(keyset, drm_cenc, r.id)
        expected = drm.pssh_boxes(keyset.distinct_keys, "cenc", PSSH_SYSTEMS, for_track=key)
        assert [p.system for p in expected] == ["common", "playready", "widevine"]
        assert init_pssh(drm_cenc.output / r.id / "init.mp4") == [p.box for p in expected]


def test_mpd_has_content_protection_per_system(
    drm_cenc: PackageResult, keyset: KeySet
) -> None:
    root = etree.parse(str(drm_cenc.output / "manifest.mpd")).getroot()
    sets = root.findall("d:Period/d:AdaptationSet", NS)
    assert len(sets) == 2
    for adaptation in sets:
        rid = adaptation.find("d:Representation", NS).get("id")
        key = track_key(keyset, drm_cenc, rid)
        boxes = {p.system: p for p in drm.pssh_boxes(
            keyset.distinct_keys, "cenc", PSSH_SYSTEMS, for_track=key)}
        protections = adaptation.findall("d:ContentProtection", NS)
        assert [p.get("schemeIdUri") for p in protections] == [
            MP4PROTECTION, COMMON_URN, CLEARKEY_URN, PLAYREADY_URN, WIDEVINE_URN]
        assert protections[0].get(f"{{{NS['cenc']}}}default_KID") == key.kid_uuid

        def pssh(element: etree._Element) -> bytes:
            return base64.b64decode(element.findtext("cenc:pssh", namespaces=NS) or "")

        assert pssh(protections[1]) == pssh(protections[2]) == boxes["common"].box
        assert pssh(protections[3]) == boxes["playready"].box
        pro = base64.b64decode(protections[3].findtext("mspr:pro", namespaces=NS) or "")
        assert pro == boxes["playready"].data
        assert pssh(protections[4]) == boxes["widevine"].box
        assert protections[4].find("mspr:pro", NS) is None


def test_hls_carries_a_key_line_per_system(drm_cenc: PackageResult, keyset: KeySet) -> None:
    session = m3u8.load(str(drm_cenc.output / "master.m3u8")).session_keys
    assert session
    for r in drm_cenc.release.renditions:
        key = track_key(keyset, drm_cenc, r.id)
        boxes = {p.system: p for p in drm.pssh_boxes(
            keyset.distinct_keys, "cenc", PSSH_SYSTEMS, for_track=key)}
        playlist = m3u8.load(str(drm_cenc.output / r.id / "playlist.m3u8"))
        keys = [k for k in playlist.keys if k is not None]
        assert [k.keyformat for k in keys] == [
            WIDEVINE_URN, "com.microsoft.playready", "identity", "org.w3.clearkey"]
        assert {k.method for k in keys} == {"SAMPLE-AES-CTR"}
        text = (drm_cenc.output / r.id / "playlist.m3u8").read_text()
        assert text.count(f"KEYID=0x{key.kid.hex()}") == 3  # identity has none (Shaka Packager)
        widevine, playready, identity, clearkey = keys
        assert widevine.uri == f"data:text/plain;base64,{b64(boxes['widevine'].box)}"
        assert playready.uri == (
            f"data:text/plain;charset=UTF-16;base64,{b64(boxes['playready'].data)}")
        # ClearKey: KEYFORMAT="identity" (shaka-player) and "org.w3.clearkey" (hls.js), with
        # the KID (never the key) as a data: URI.
        assert identity.uri == clearkey.uri == f"data:text/plain;base64,{b64(key.kid)}"
        for k in keys:
            assert any(s.uri == k.uri and s.keyformat == k.keyformat for s in session)


def test_hls_fairplay_lines_for_cbcs(
    drm_cli: tuple[Path, Path, subprocess.CompletedProcess[str]],
) -> None:
    out, _, _ = drm_cli
    release = read_release(out)
    assert release.protection is not None
    master = m3u8.load(str(out / "master.m3u8"))
    for rid, kid in release.protection.rendition_kids.items():
        playlist = m3u8.load(str(out / rid / "playlist.m3u8"))
        keys = [k for k in playlist.keys if k is not None]
        # No identity line for cbcs beside other systems: hls.js cannot play fMP4 under one
        # (tests/packager/test_hls_clearkey.py).
        assert [k.keyformat for k in keys] == [
            WIDEVINE_URN, "com.microsoft.playready", "org.w3.clearkey",
            "com.apple.streamingkeydelivery"]
        fairplay = keys[-1]
        assert fairplay.method == "SAMPLE-AES"
        assert fairplay.uri == f"skd://{kid.replace('-', '')}"
        assert fairplay.keyformatversions == "1"
        assert any(s.uri == fairplay.uri for s in master.session_keys)


def test_drm_with_a_raw_key_signals_only_the_chosen_systems(
    source_clip: Path, tmp_path: Path
) -> None:
    kid, key = "00112233445566778899aabbccddeeff", "0123456789abcdef0123456789abcdef"
    out = tmp_path / "out"
    result = cdnpack_cli("package", source_clip, "-o", out, "--copy", "--format", "dash",
                         "--encrypt", "cenc", "--keys", "raw", "--key", f"{kid}:{key}",
                         "--drm", "playready")
    assert result.returncode == 0, result.stderr
    release = read_release(out)
    assert release.protection is not None
    assert release.protection.kids == ["00112233-4455-6677-8899-aabbccddeeff"]
    assert release.protection.systems == ["playready"]
    expected = drm.pssh_boxes([ContentKey(bytes.fromhex(kid), bytes.fromhex(key))], "cenc",
                              ["playready"])
    for r in release.renditions:
        assert init_pssh(out / r.id / "init.mp4") == [p.box for p in expected]
    root = etree.parse(str(out / "manifest.mpd")).getroot()
    schemes = [p.get("schemeIdUri") for p in root.iter(f"{{{NS['d']}}}ContentProtection")]
    assert schemes == [MP4PROTECTION, PLAYREADY_URN] * 2


def test_keys_raw_needs_a_key(source_clip: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CDNPACK_KEY"}
    result = cdnpack_cli("package", source_clip, "-o", tmp_path / "out", "--copy",
                         "--encrypt", "cenc", "--keys", "raw", env=env)
    assert result.returncode == 2
    assert "--keys raw needs --key" in result.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_drm_system_is_refused() -> None:
    key = ContentKey.generate()
    with pytest.raises(InputError, match="unknown DRM system"):
        EncryptionSpec("cenc", key, systems=("marlin",))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_repackaging_a_title_keeps_its_keys_and_a_new_title_gets_new_ones(
    source_clip: Path, tmp_path: Path
) -> None:
    store = tmp_path / "keystore"

    def kids(out: str, *extra: str) -> list[str]:
        result = cdnpack_cli(
            "package", source_clip, "-o", tmp_path / out, "--copy", "--encrypt", "cenc",
            "--keys", "generate", "--keystore", store, "--json", *extra,
        )
        assert result.returncode == 0, result.stderr
        protection = read_release(tmp_path / out).protection
        assert protection is not None
        return list(protection.kids)

    first = kids("a", "--content-id", "title-1")
    assert kids("b", "--content-id", "title-1") == first
    assert kids("c", "--content-id", "title-2") != first
    refused = cdnpack_cli(
        "package", source_clip, "-o", tmp_path / "d", "--copy", "--encrypt", "cenc",
        "--keys", "generate", "--per-class", "--keystore", store, "--content-id", "title-1",
    )
    assert refused.returncode == 2
    assert "content id 'title-1' already has a single key" in refused.stderr
    assert not (tmp_path / "d").exists()
