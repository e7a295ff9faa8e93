"""SPEKE v2.0 and CPIX key sources of `cdnpack package`, against a real local key server.

The happy path packages through the real CLI and decrypts the release with Shaka Packager and
the keys the server handed out; every misbehaviour of the server is one line on stderr with its
documented exit code (2: refused, fix the invocation; 3: the key server or network); SigV4 is
checked by the server recomputing the signature with botocore.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from packager.drm import pssh as drm
from packager.drm.systems import COMMON_SYSTEM_ID, PLAYREADY_SYSTEM_ID, WIDEVINE_SYSTEM_ID
from packager.errors import BitstreamError, InputError
from packager.keys.cpix import CPIX_NS, export_cpix
from packager.keys.keystore import Keystore
from packager.keys.model import ContentKey, KeyConflictError, KeySet, TrackClass
from packager.keys.source import package_encryption, parse_widevine_content_id
from packager.keys.speke import (
    KeyServer,
    KeyServerAnswerError,
    KeyServerRefusedError,
    fetch_keyset,
    new_kids,
    request_keys,
)
from packager.mp4.isobmff import iter_boxes, read_pssh_system_id, read_track_encryption
from packager.output.release import read_release
from packager.tools import find_tool
from tests.conftest import cdnpack_cli, concat, run
from tests.packager.speke_server import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    SpekeServer,
    fairplay_uri,
    key_for,
    speke_server,
)

#: A live SPEKE key server on a thread, and packaging through it.
pytestmark = pytest.mark.slow

C = f"{{{CPIX_NS}}}"
SYSTEMS = ("widevine", "playready", "clearkey", "fairplay")


@pytest.fixture(scope="module")
def server() -> Iterator[SpekeServer]:
    with speke_server() as running:
        yield running


def framemd5(path: Path) -> list[str]:
    result = run(find_tool("ffmpeg").path, "-v", "error", "-nostdin", "-i", path,
                 "-map", "0:v", "-f", "framemd5", "-")
    assert result.returncode == 0, result.stderr[-300:]
    return [line for line in result.stdout.splitlines() if not line.startswith("#")]


def init_moov(init: Path) -> bytes:
    data = init.read_bytes()
    moov = next(b for b in iter_boxes(data) if b.type == b"moov")
    return data[moov.offset : moov.end]


def leaked(blob: bytes, keys: list[bytes]) -> bool:
    forms = [f for k in keys for f in (k, k.hex().encode(), base64.b64encode(k))]
    return any(form in blob for form in forms)


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, **extra)
    return env


# --- the request --------------------------------------------------------------------------------


def test_request_is_a_speke_v2_cpix_document_with_the_speke_headers(
    server: SpekeServer,
) -> None:
    kids = new_kids(per_class=True)
    request_keys(KeyServer(server.url()), "film-7", "cbcs", SYSTEMS, kids)
    sent = server.requests[-1]
    assert sent.headers["X-Speke-Version"] == "2.0"
    assert sent.headers["X-Speke-User-Agent"].startswith("cdnpack/")
    assert sent.headers["Content-Type"] == "application/xml"
    root = ET.fromstring(sent.body)
    assert (root.get("contentId"), root.get("version")) == ("film-7", "2.3")
    content_keys = root.findall(f"{C}ContentKeyList/{C}ContentKey")
    assert [uuid.UUID(k.get("kid", "")).bytes for k in content_keys] == list(kids.values())
    assert {k.get("commonEncryptionScheme") for k in content_keys} == {"cbcs"}
    assert all(k.find(f"{C}Data") is None for k in content_keys)  # keys are asked, not sent
    # One DRMSystem per KID and key-server system (ClearKey needs no key server).
    systems = root.findall(f"{C}DRMSystemList/{C}DRMSystem")
    assert len(systems) == 4 * 3
    fairplay = [s for s in systems if s.get("systemId") == "94ce86fb-07ff-4f43-adb8-93d2fa968ca2"]
    assert [c.tag for c in fairplay[0]] == [f"{C}URIExtXKey", f"{C}HLSSignalingData",
                                            f"{C}HLSSignalingData"]
    widevine = [s for s in systems if s.get("systemId") == str(uuid.UUID(
        bytes=WIDEVINE_SYSTEM_ID))]
    assert widevine[0][0].tag == f"{C}PSSH"
    # The encryption contract: one rule per KID, unique intendedTrackType, one filter each.
    rules = root.findall(f"{C}ContentKeyUsageRuleList/{C}ContentKeyUsageRule")
    assert [r.get("intendedTrackType") for r in rules] == ["AUDIO", "SD", "HD", "UHD"]
    assert all(len(list(r)) == 1 for r in rules)
    single = new_kids(per_class=False)
    request_keys(KeyServer(server.url()), "film-8", "cenc", ("widevine",), single)
    rule = ET.fromstring(server.requests[-1].body).find(
        f"{C}ContentKeyUsageRuleList/{C}ContentKeyUsageRule")
    assert rule is not None
    assert rule.get("intendedTrackType") == "ALL"
    assert [c.tag for c in rule] == [f"{C}AudioFilter", f"{C}VideoFilter"]


def test_answer_keys_and_signaling_are_read_back(server: SpekeServer) -> None:
    kids = new_kids(per_class=True)
    answer = request_keys(KeyServer(server.url()), "film-9", "cenc", SYSTEMS, kids)
    for c in TrackClass:
        assert answer.keyset.keys[c] == ContentKey(kids[c], key_for(kids[c]))
    pssh = {(s.kid, s.system_id): s.pssh for s in answer.drm_systems if s.pssh}
    audio = answer.keyset.keys[TrackClass.AUDIO]
    assert pssh[(audio.kid, PLAYREADY_SYSTEM_ID)] == drm.playready_pssh(audio, "cenc")
    fairplay = [s for s in answer.drm_systems if s.uri_ext_x_key]
    assert fairplay[0].uri_ext_x_key == fairplay_uri(fairplay[0].kid)
    assert fairplay[0].hls_signaling["master"].startswith("#EXT-X-KEY:METHOD=SAMPLE-AES")


# --- package --keys speke:URL through the real CLI ---------------------------------------------


def test_package_with_speke_keys_decrypts_with_the_servers_keys(
    source_clip: Path, server: SpekeServer, tmp_path: Path
) -> None:
    out, store = tmp_path / "out", tmp_path / "keystore"
    result = cdnpack_cli("package", source_clip, "-o", out, "--copy", "--segment-duration", "2",
                         "--encrypt", "cbcs", "--keys", f"speke:{server.url()}", "--per-class",
                         "--content-id", "speke-film", "--keystore", store, "--json")
    assert result.returncode == 0, result.stderr
    assert server.requests[-1].headers["X-Speke-Version"] == "2.0"
    # Every key the server handed out is in the keystore, under the title.
    keyset = Keystore(store).keyset("speke-film")
    assert keyset.per_class
    for key in keyset.distinct_keys:
        assert key.key == key_for(key.kid)
    release = read_release(out)
    assert release.protection is not None
    assert release.protection.systems == list(SYSTEMS)
    for r in release.renditions:
        key = keyset.key_for(r.kind, r.height)
        assert release.protection.rendition_kids[r.id] == key.kid_uuid
        assert read_track_encryption(init_moov(out / r.id / "init.mp4")).kid == key.kid
        # FairPlay's key URI is the server's (its URIExtXKey), not our skd://<KID hex>.
        playlist = (out / r.id / "playlist.m3u8").read_text()
        assert f'URI="{fairplay_uri(key.kid)}",KEYID=0x{key.kid.hex()}' in playlist
        assert f"skd://{key.kid.hex()}" not in playlist
    video = next(r for r in release.renditions if r.kind == "video")
    key = keyset.key_for("video", video.height)
    encrypted = concat([out / video.id / "init.mp4", *sorted((out / video.id).glob("seg_*.m4s"))],
                       tmp_path / "enc.mp4")
    decrypted = tmp_path / "dec.mp4"
    shaka = run(find_tool("packager").path, f"in={encrypted},stream=video,output={decrypted}",
                "--enable_raw_key_decryption",
                "--keys", f"key_id={key.kid.hex()}:key={key_for(key.kid).hex()}")
    assert shaka.returncode == 0, shaka.stderr[-500:]
    clear = framemd5(source_clip)
    assert len(clear) >= 150
    assert framemd5(decrypted) == clear
    # The keys went to the keystore only: not into the tree, stdout or stderr.
    secrets = [k.key for k in keyset.distinct_keys]
    blobs = [p.read_bytes() for p in out.rglob("*") if p.is_file()]
    assert not any(leaked(b, secrets) for b in [*blobs, result.stdout.encode(),
                                                 result.stderr.encode()])


def test_repackaging_a_title_asks_again_with_its_stored_kids(
    server: SpekeServer, tmp_path: Path
) -> None:
    store = Keystore(tmp_path / "keys")
    first = fetch_keyset(KeyServer(server.url()), store, "title-1", "cenc", SYSTEMS[:2],
                         True).keyset
    second = fetch_keyset(KeyServer(server.url()), store, "title-1", "cenc", SYSTEMS[:2],
                          True).keyset
    assert second == first
    asked = ET.fromstring(server.requests[-1].body).findall(f"{C}ContentKeyList/{C}ContentKey")
    assert [uuid.UUID(k.get("kid", "")).bytes for k in asked] == [
        k.kid for k in first.distinct_keys]
    assert len(list(store)) == 4


def test_other_keys_for_stored_kids_are_refused_and_nothing_is_stored(
    server: SpekeServer, tmp_path: Path
) -> None:
    store = Keystore(tmp_path / "keys")
    stored = fetch_keyset(KeyServer(server.url()), store, "title-2", "cenc", ("widevine",),
                          False).keyset
    with pytest.raises(KeyConflictError, match="has another key than the one in keystore"):
        fetch_keyset(KeyServer(server.url("other-seed")), store, "title-2", "cenc",
                     ("widevine",), False)
    assert store.keyset("title-2") == stored


def test_a_malformed_answer_stores_nothing(server: SpekeServer, tmp_path: Path) -> None:
    store = Keystore(tmp_path / "keys")
    with pytest.raises(KeyServerAnswerError):
        fetch_keyset(KeyServer(server.url("wrong-kid")), store, "t", "cenc", ("widevine",), True)
    assert list(store) == []


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/speke"


@pytest.mark.parametrize(("mode", "code", "message"), [
    ("401", 2, "refused the request (401 Unauthorized: {\"message\": \"no keys for you\"}); "
               "check the credentials (API Gateway with IAM auth needs --speke-sigv4-region)"),
    ("500", 3, "failed (500 Internal Server Error: {\"message\": \"no keys for you\"}); "
               "try again later"),
    ("slow", 3, "no answer within 0.5 s (--key-server-timeout)"),
    ("garbage", 3, "not a CPIX document (root element html, expected cpix:CPIX in "
                   "urn:dashif:org:cpix)"),
    ("wrong-kid", 3, "no key for KID "),
    ("wrong-content-id", 3, "answered for content id 'someone-else', not 'err-film'"),
    ("encrypted", 3, "answered with encrypted content keys (pskc:EncryptedValue)"),
    ("bad-pssh", 3, "cpix:PSSH is a pssh of system 1077efec-c0b2-4d02-ace3-3c1e52e2fb4b"),
    ("bad-uri", 3, "is not an skd:// URI that can be quoted in HLS"),
    ("unreachable", 3, "unreachable ("),
])
def test_key_server_errors_are_one_line_with_their_exit_code(
    source_clip: Path, server: SpekeServer, tmp_path: Path, mode: str, code: int, message: str
) -> None:
    url = closed_port_url() if mode == "unreachable" else server.url(mode)
    out, store = tmp_path / "out", tmp_path / "keystore"
    result = cdnpack_cli("package", source_clip, "-o", out, "--copy", "--encrypt", "cbcs",
                         "--keys", f"speke:{url}", "--key-server-timeout", "0.5",
                         "--content-id", "err-film", "--keystore", store, env=cli_env())
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"cdnpack: error: key server {url}: ")
    assert message in lines[0]
    assert not out.exists()
    assert list(Keystore(store)) == []


def test_sigv4_signature_is_verified_by_the_server(
    source_clip: Path, server: SpekeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in cli_env(AWS_ACCESS_KEY_ID=ACCESS_KEY,
                               AWS_SECRET_ACCESS_KEY=SECRET_KEY).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    signed = KeyServer(server.url("sigv4"), sigv4_region=REGION)
    kids = new_kids(per_class=False)
    answer = request_keys(signed, "signed-film", "cenc", ("widevine",), kids)
    assert answer.keyset.keys[TrackClass.SD].key == key_for(kids[TrackClass.SD])
    assert server.requests[-1].headers["Authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    # Unsigned, or signed for another region: 403.
    for other in (KeyServer(server.url("sigv4")),
                  KeyServer(server.url("sigv4"), sigv4_region="us-east-1")):
        with pytest.raises(KeyServerRefusedError, match=re.escape("(403 Forbidden")):
            request_keys(other, "signed-film", "cenc", ("widevine",), kids)
    # Signed with another secret, through the CLI: one line, exit 2.
    result = cdnpack_cli("package", source_clip, "-o", tmp_path / "out", "--copy",
                         "--encrypt", "cenc", "--keys", f"speke:{server.url('sigv4')}",
                         "--keystore", tmp_path / "keys", "--speke-sigv4-region", REGION,
                         env=cli_env(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY="x"))
    assert result.returncode == 2, result.stderr
    assert "refused the request (403 Forbidden" in result.stderr
    assert "check the credentials and --speke-sigv4-region" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    no_credentials = cdnpack_cli(
        "package", source_clip, "-o", tmp_path / "out", "--copy", "--encrypt", "cenc",
        "--keys", f"speke:{server.url('sigv4')}", "--speke-sigv4-region", REGION,
        "--keystore", tmp_path / "keys", env=cli_env())
    assert no_credentials.returncode == 2
    assert "--speke-sigv4-region needs AWS credentials" in no_credentials.stderr


# --- package --keys cpix:FILE and the DRM options ------------------------------------------------


def test_package_with_a_cpix_file_and_drm_options(source_clip: Path, tmp_path: Path) -> None:
    audio, video = ContentKey.generate(), ContentKey.generate()
    keyset = KeySet("cpix-film", {TrackClass.AUDIO: audio, TrackClass.SD: audio,
                                  TrackClass.HD: video, TrackClass.UHD: video})
    document = tmp_path / "film.cpix.xml"
    document.write_bytes(export_cpix(keyset))
    out, store = tmp_path / "out", tmp_path / "keystore"
    la_url = "https://licence.example/rightsmanager.asmx?a=1&b=2"
    # SD ends at 240 lines: the 360p video is HD and gets the HD key.
    result = cdnpack_cli("package", source_clip, "-o", out, "--copy", "--format", "dash",
                         "--encrypt", "cenc", "--keys", f"cpix:{document}",
                         "--class-thresholds", "SD=240,HD=1080", "--drm", "widevine,playready",
                         "--playready-la-url", la_url, "--widevine-content-id", "0x0a0b0c",
                         "--keystore", store)
    assert result.returncode == 0, result.stderr
    assert Keystore(store).keyset("cpix-film") == keyset
    release = read_release(out)
    assert release.protection is not None
    video_rendition = next(r for r in release.renditions if r.kind == "video")
    assert release.protection.rendition_kids[video_rendition.id] == video.kid_uuid
    data = (out / video_rendition.id / "init.mp4").read_bytes()
    expected = drm.pssh_boxes([audio, video], "cenc", ["playready", "widevine"],
                              content_id=bytes.fromhex("0a0b0c"), la_url=la_url,
                              for_track=video)
    for box in expected:
        assert box.box in data
    assert f"<LA_URL>{la_url.replace('&', '&amp;')}</LA_URL>".encode("utf-16-le") in data


@pytest.mark.parametrize(("source", "options", "message"), [
    ("speke", {}, "--keys speke: needs a URL after the colon (speke:URL)"),
    ("speke:ftp://x/", {}, "--keys speke: 'ftp://x/' is not an http(s) URL"),
    ("vault:x", {}, "--keys takes generate, raw, cpix:FILE or speke:URL"),
    ("generate:x", {}, "--keys generate takes no argument"),
    ("generate", {"key_server_timeout": 3.0},
     "--key-server-timeout and --speke-sigv4-region need --keys speke:URL"),
    ("generate", {"class_thresholds": "SD=big"},
     "--class-thresholds: 'big' is not a height in pixels"),
    ("generate", {"class_thresholds": "SD=1080,HD=720"},
     "track class thresholds need 0 < SD max height < HD max height"),
    ("generate", {"drm": "widevine", "la_url": "https://x/"},
     "--playready-la-url needs playready among the --drm systems"),
    ("speke:http://127.0.0.1:9/", {"drm": "widevine,fairplay"},
     "FairPlay needs --encrypt cbcs"),
    ("cpix:/nonexistent/doc.xml", {}, "/nonexistent/doc.xml: cannot read"),
    ("cpix:/nonexistent/doc.xml", {"per_class": True}, "--per-class is for --keys generate"),
])
def test_key_source_usage_errors_come_before_any_request_or_write(
    tmp_path: Path, source: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        package_encryption("cenc", source, tmp_path / "out", keystore=tmp_path / "keys",
                           **options)
    assert not (tmp_path / "keys").exists() or list(Keystore(tmp_path / "keys")) == []


def test_widevine_content_id_is_hex_with_0x_else_text() -> None:
    assert parse_widevine_content_id("0x0A0b0c") == bytes.fromhex("0a0b0c")
    assert parse_widevine_content_id("film-1 (director's cut)") == b"film-1 (director's cut)"
    for bad in ("0xabc", "0x", " "):
        with pytest.raises(InputError, match="--widevine-content-id"):
            parse_widevine_content_id(bad)


def test_a_server_pssh_must_be_one_whole_pssh_box() -> None:
    box = drm.widevine_pssh([bytes(16)], "cenc")
    assert read_pssh_system_id(box) == WIDEVINE_SYSTEM_ID
    assert read_pssh_system_id(drm.common_pssh([bytes(16)])) == COMMON_SYSTEM_ID
    for bad in (box[:-1], box + box, box[:8] + b"\x02" + box[9:], b"garbage!"):
        with pytest.raises(BitstreamError):
            read_pssh_system_id(bad)


def test_a_key_source_usage_error_is_one_line_from_the_cli(
    source_clip: Path, tmp_path: Path
) -> None:
    result = cdnpack_cli("package", source_clip, "-o", tmp_path / "out", "--copy",
                         "--encrypt", "cenc", "--keystore", tmp_path / "keys",
                         "--keys", "speke:ftp://x/")
    assert result.returncode == 2, result.stderr
    assert result.stderr == "cdnpack: error: --keys speke: 'ftp://x/' is not an http(s) URL\n"
    assert not (tmp_path / "out").exists()
