"""HLS I-frame playlists checked by independent tools: every byte range decodes on its own, with
ffmpeg, to exactly the I-frame the whole track shows at that time, clear or encrypted (cenc,
cbcs); m3u8 parses of the playlists agree with release.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import m3u8
import pytest

from packager.encryption.spec import EncryptionSpec
from packager.keys.source import parse_key
from packager.output.pipeline import PackageRequest, PackageResult, package
from packager.tools import find_tool
from tests.conftest import SEGMENT_SECONDS, concat, run

KID_HEX = "00112233445566778899aabbccddeeff"
KEY_HEX = "0123456789abcdef0123456789abcdef"
IV_HEX = "000102030405060708090a0b0c0d0e0f"


@pytest.fixture(scope="session")
def keyframed_source(packaged: PackageResult, clips: Path) -> Path:
    """The packaged top video rendition as one file: a key frame every segment, B-frames."""
    top = max((r for r in packaged.release.renditions if r.kind == "video"),
              key=lambda r: r.height)
    directory = packaged.output / top.id
    return concat([directory / "init.mp4", *sorted(directory.glob("seg_*.m4s"))],
                  clips / "keyframed.mp4")


@pytest.fixture(scope="session", params=["cenc", "cbcs"])
def encrypted_copy(
    request: pytest.FixtureRequest, keyframed_source: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> PackageResult:
    """That source re-packaged as is (--copy: its own key frames) and encrypted."""
    scheme: str = request.param
    iv = bytes.fromhex(IV_HEX) if scheme == "cbcs" else None
    spec = EncryptionSpec(scheme, parse_key(f"{KID_HEX}:{KEY_HEX}"), iv)
    out = tmp_path_factory.mktemp(f"trick-{scheme}") / "out"
    return package(PackageRequest(source=keyframed_source, output=out, copy=True,
                                  segment_duration=SEGMENT_SECONDS, encryption=spec))


@dataclass(frozen=True)
class Frame:
    pts: str
    md5: str


def frames(path: Path, *before_input: str) -> list[Frame]:
    """ffmpeg's decoded video frames (framemd5): presentation time stamp (the file's own, not
    shifted to start at 0: -copyts) and picture hash."""
    result = run(find_tool("ffmpeg").path, "-v", "error", "-nostdin", "-copyts", *before_input,
                 "-i", path,
                 "-map", "0:v", "-f", "framemd5", "-")
    assert result.returncode == 0, result.stderr[-300:]
    rows = [line.split(",") for line in result.stdout.splitlines() if not line.startswith("#")]
    return [Frame(row[2].strip(), row[5].strip()) for row in rows]


def picture_types(path: Path, *before_input: str) -> list[str]:
    result = run(find_tool("ffprobe").path, "-v", "error", *before_input,
                 "-select_streams", "v", "-show_entries", "frame=pict_type,key_frame",
                 "-of", "csv=p=0", path)
    assert result.returncode == 0, result.stderr[-300:]
    return [line.strip().strip(",") for line in result.stdout.splitlines() if line.strip()]


def iframe_playlists(release: Path) -> dict[str, m3u8.M3U8]:
    multivariant = m3u8.load(str(release / "master.m3u8"))
    return {
        entry.uri.split("/")[0]: m3u8.load(str(release / entry.uri))
        for entry in multivariant.iframe_playlists
    }


def check_ranges_decode_alone(release: Path, tmp_path: Path, *decrypt: str) -> list[Frame]:
    """Each range, after its init segment, decodes to one I-frame: the one the whole track
    shows at the same time, bit for bit. Returns the I-frames decoded."""
    checked = []
    playlists = iframe_playlists(release)
    assert playlists
    for rendition, playlist in playlists.items():
        directory = release / rendition
        whole = {f.pts: f.md5 for f in frames(
            concat([directory / "init.mp4", *sorted(directory.glob("seg_*.m4s"))],
                   tmp_path / f"{rendition}.mp4"), *decrypt)}
        init = (directory / "init.mp4").read_bytes()
        for number, segment in enumerate(playlist.segments):
            length, offset = map(int, segment.byterange.split("@"))
            data = (directory / segment.uri).read_bytes()
            assert offset + length <= len(data)
            assert data[offset + 4 : offset + 8] == b"moof"
            alone = tmp_path / f"{rendition}-{number}.mp4"
            alone.write_bytes(init + data[offset : offset + length])
            (frame,) = frames(alone, *decrypt)
            assert picture_types(alone, *decrypt) == ["1,I"], (rendition, segment.uri)
            assert whole[frame.pts] == frame.md5, (rendition, segment.uri)
            checked.append(frame)
    return checked


def test_every_iframe_range_decodes_on_its_own_as_the_tracks_iframe(
    packaged: PackageResult, tmp_path: Path
) -> None:
    segments = sum(r.segments for r in packaged.release.renditions if r.kind == "video")
    assert len(check_ranges_decode_alone(packaged.output, tmp_path)) == segments


def test_encrypted_iframe_ranges_decrypt_and_decode_on_their_own(
    encrypted_copy: PackageResult, tmp_path: Path
) -> None:
    """...to the clear source's pictures: the ranges carry the encrypted samples with their
    senc, and ffmpeg decrypts them with the key alone."""
    segments = sum(r.segments for r in encrypted_copy.release.renditions)
    assert segments > 1
    decoded = check_ranges_decode_alone(encrypted_copy.output, tmp_path,
                                        "-decryption_key", KEY_HEX)
    assert len(decoded) == segments
    clear = {f.md5 for f in frames(encrypted_copy.media.path)}
    assert all(f.md5 in clear for f in decoded)


def test_encrypted_iframe_playlist_carries_the_media_playlists_keys(
    encrypted_copy: PackageResult,
) -> None:
    for rendition, playlist in iframe_playlists(encrypted_copy.output).items():
        media = m3u8.load(str(encrypted_copy.output / rendition / "playlist.m3u8"))
        assert playlist.keys
        assert [str(k) for k in playlist.keys] == [str(k) for k in media.keys]
        assert {k.method for k in playlist.keys} <= {"SAMPLE-AES", "SAMPLE-AES-CTR"}


def test_iframe_playlists_agree_with_release_json(packaged: PackageResult) -> None:
    release = json.loads((packaged.output / "release.json").read_text())
    renditions = {r["id"]: r for r in release["renditions"]}
    listed = {i["rendition"]: i for i in release["iframes"]}
    assert set(listed) == {r for r, v in renditions.items() if v["kind"] == "video"}
    files = {f["path"]: f for f in release["files"]}
    multivariant = m3u8.load(str(packaged.output / "master.m3u8"))
    assert len(multivariant.iframe_playlists) == len(listed)
    for entry in multivariant.iframe_playlists:
        info = entry.iframe_stream_info
        summary = listed[entry.uri.split("/")[0]]
        rendition = renditions[summary["rendition"]]
        assert entry.uri == summary["playlist"]
        assert files[entry.uri]["role"] == "iframe-playlist"
        assert (info.bandwidth, info.average_bandwidth) == (
            summary["bandwidth"], summary["average_bandwidth"])
        assert info.resolution == (rendition["width"], rendition["height"])
        assert info.codecs == rendition["codec"]
        playlist = m3u8.load(str(packaged.output / entry.uri))
        assert playlist.is_i_frames_only
        assert playlist.is_endlist
        assert playlist.version >= 5  # EXT-X-MAP in an I-frames-only playlist (RFC 8216 §7)
        assert len(playlist.segments) == summary["iframes"] == rendition["segments"]
        assert {s.init_section.uri for s in playlist.segments} == {"init.mp4"}
        assert sum(s.duration for s in playlist.segments) == pytest.approx(
            rendition["duration"], abs=1e-3)
        for segment in playlist.segments:
            length, _ = map(int, segment.byterange.split("@"))
            assert length * 8 / segment.duration <= info.bandwidth + 1


def test_each_iframe_lasts_until_the_next_segments_start(packaged: PackageResult) -> None:
    """Transcoded segments start with their only key frame, so the I-frames' EXTINFs are the
    media playlist's segment durations (RFC 8216 §4.3.3.6: until the next I-frame)."""
    for rendition, playlist in iframe_playlists(packaged.output).items():
        media = m3u8.load(str(packaged.output / rendition / "playlist.m3u8"))
        assert [s.uri for s in playlist.segments] == [s.uri for s in media.segments]
        assert [s.duration for s in playlist.segments] == pytest.approx(
            [s.duration for s in media.segments], abs=1e-4)


def iframe_samples(playlist: m3u8.M3U8, directory: Path) -> list[tuple[float, int]]:
    """(EXTINF, bytes of the I-frame itself) per entry: the range less its moof and mdat
    header, whatever boxes a packager puts in the moof."""
    found = []
    for segment in playlist.segments:
        length, offset = map(int, segment.byterange.split("@"))
        data = (directory / segment.uri).read_bytes()[offset : offset + length]
        moof = int.from_bytes(data[:4], "big")
        assert data[4:8] == b"moof"
        assert data[moof + 4 : moof + 8] == b"mdat"
        header = 16 if int.from_bytes(data[moof : moof + 4], "big") == 1 else 8
        found.append((segment.duration, length - moof - header))
    return found


def test_iframes_are_shaka_packagers_iframes(
    keyframed_source: Path, tmp_path: Path
) -> None:
    """Shaka Packager, the reference, making an I-frame playlist of the same source: the same
    I-frames (sample bytes), each lasting as long, and ranges of the same shape (moof, mdat
    header, the one sample)."""
    ours = package(PackageRequest(source=keyframed_source, output=tmp_path / "ours", copy=True,
                                  segment_duration=SEGMENT_SECONDS))
    (rendition, playlist) = next(iter(iframe_playlists(ours.output).items()))
    reference = tmp_path / "shaka"
    result = run(find_tool("packager").path,
                 f"in={keyframed_source},stream=video,init_segment={reference}/v/init.mp4,"
                 f"segment_template={reference}/v/$Number$.m4s,playlist_name=v.m3u8,"
                 "iframe_playlist_name=v_iframe.m3u8",
                 "--hls_master_playlist_output", f"{reference}/master.m3u8",
                 "--segment_duration", str(SEGMENT_SECONDS))
    assert result.returncode == 0, result.stderr[-500:]
    theirs = iframe_samples(m3u8.load(str(reference / "v_iframe.m3u8")), reference)
    mine = iframe_samples(playlist, ours.output / rendition)
    assert len(mine) == len(theirs) > 1
    assert [size for _, size in mine] == [size for _, size in theirs]
    assert [seconds for seconds, _ in mine] == pytest.approx(
        [seconds for seconds, _ in theirs], abs=1e-3)
