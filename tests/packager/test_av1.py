"""AV1 in CMAF, held to Shaka Packager on the same samples: the codecs string (short form, and
the long one when the sequence header describes its colours), and the protected byte map of
every sample under cbcs and cenc, for three encoders' bitstreams (SVT-AV1 with 2x2 tiles,
libaom with 2x2 tiles, global motion and film grain, rav1e); and what the binding asks of the
samples themselves: no temporal delimiters, sync samples exactly the key frames that carry a
sequence header."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from packager.encryption.spec import EncryptionSpec
from packager.keys.source import parse_key
from packager.output.pipeline import PackageRequest, PackageResult, package
from packager.tools import find_tool
from testbed.clips import ClipSpec, make_clip
from tests.conftest import run
from tests.packager.cmaf_reader import av1_frame_kind, numbered, subsample_maps, track_samples

KID_HEX = "00112233445566778899aabbccddeeff"
KEY_HEX = "0123456789abcdef0123456789abcdef"
IV_HEX = "000102030405060708090a0b0c0d0e0f"

SMALL = ClipSpec(duration=2.0, width=320, height=180, audio=False, keyframe_interval=25)
SOURCES = {
    "svt-tiles": replace(SMALL, video_codec="libsvtav1",
                         video_options=("-svtav1-params", "tile-columns=1:tile-rows=1")),
    "aom-grain": replace(SMALL, video_codec="libaom-av1", tool="ffmpeg-full",
                         video_options=("-tiles", "2x2", "-enable-global-motion", "1",
                                        "-denoise-noise-level", "10")),
    "rav1e": replace(SMALL, video_codec="librav1e", tool="ffmpeg-full"),
    # Tagged BT.709 throughout: SVT-AV1 describes the colours in its sequence header, ffmpeg
    # writes a 'colr' box, and both tools write the long form.
    "svt-bt709": replace(SMALL, video_codec="libsvtav1", video_options=(
        "-vf", "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv")),
}
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=list(SOURCES))
def av1_source(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    name: str = request.param
    return make_clip(tmp_path_factory.mktemp("av1") / f"{name}.mp4", SOURCES[name])


def shaka(source: Path, out: Path, scheme: str | None) -> Path:
    """Shaka Packager's CMAF track of the source's video (and its HLS playlists)."""
    args: list[str | Path] = [
        find_tool("packager").path,
        f"in={source},stream=video,init_segment={out}/init.mp4,"
        f"segment_template={out}/$Number$.m4s,playlist_name=video.m3u8",
        "--segment_duration", "2", "--hls_master_playlist_output", f"{out}/master.m3u8",
    ]
    if scheme is not None:
        args += ["--enable_raw_key_encryption", "--keys", f"key_id={KID_HEX}:key={KEY_HEX}",
                 "--protection_scheme", scheme, "--clear_lead", "0"]
        if scheme == "cbcs":
            args += ["--iv", IV_HEX]
    result = run(*args)
    assert result.returncode == 0, result.stderr[-500:]
    return out


def ours(source: Path, out: Path, scheme: str | None) -> PackageResult:
    encryption = None
    if scheme is not None:
        iv = bytes.fromhex(IV_HEX) if scheme == "cbcs" else None
        encryption = EncryptionSpec(scheme, parse_key(f"{KID_HEX}:{KEY_HEX}"), iv)
    return package(PackageRequest(source=source, output=out, copy=True, segment_duration=2,
                                  encryption=encryption))


def shaka_codecs(master: Path) -> str:
    match = re.search(r'CODECS="([^"]+)"', master.read_text())
    assert match is not None
    return match.group(1)


def test_codecs_string_equals_shaka_packagers_and_ffprobes_level(
    av1_source: Path, tmp_path: Path
) -> None:
    release = ours(av1_source, tmp_path / "ours", None).release
    (video,) = [r for r in release.renditions if r.kind == "video"]
    theirs = shaka_codecs(shaka(av1_source, tmp_path / "shaka", None) / "master.m3u8")
    assert video.codec == theirs
    long_form = "bt709" in av1_source.name
    assert video.codec.count(".") == (9 if long_form else 3), video.codec
    if long_form:  # 4:2:0 (chroma position unknown), BT.709 primaries, transfer, matrix
        assert video.codec.endswith(".0.110.01.01.01.0")
    probe = run(find_tool("ffprobe").path, "-v", "error", "-select_streams", "v:0",
                "-show_entries", "stream=level,profile", "-of", "json", av1_source)
    stream = json.loads(probe.stdout)["streams"][0]
    assert int(video.codec.split(".")[2][:2]) == stream["level"]
    assert stream["profile"] == "Main"
    assert video.codec.startswith("av01.0.")


def test_hevc_codecs_string_equals_shaka_packagers(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "hevc.mp4", replace(SMALL, video_codec="libx265"))
    release = ours(source, tmp_path / "ours", None).release
    (video,) = [r for r in release.renditions if r.kind == "video"]
    assert video.codec == shaka_codecs(shaka(source, tmp_path / "shaka", None) / "master.m3u8")
    assert video.codec.startswith("hvc1.1.6.L")


def cenc_from_tiles(tiles: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The cenc map the binding v1.2.0 ("Common Encryption") asks for, from a sample's tiles
    given as Shaka's cbcs map (one protected run per tile, exactly its decode_tile bytes):
    whole blocks ending on each tile's last byte, a tile under 16 bytes clear, clear runs
    merged."""
    out: list[tuple[int, int]] = []
    clear = 0
    for before, tile in tiles:
        protect = tile - tile % 16
        clear += before + tile - protect
        if protect:
            out.append((clear, protect))
            clear = 0
    if clear or not out:
        out.append((clear, 0))
    return out


def test_protected_byte_maps_equal_shaka_packagers(av1_source: Path, tmp_path: Path) -> None:
    """cbcs: sample for sample the same map as Shaka Packager (one protected run per tile,
    from its first byte to its last). cenc: Shaka Packager v3.8 protects whole blocks from
    a tile's first byte; the binding wants them to end on its last, so ours are its blocks
    moved to the tile's end (tiles taken from Shaka's cbcs map, not from our parser)."""
    maps = {}
    for scheme in ("cbcs", "cenc"):
        iv_size = 8 if scheme == "cenc" else 0
        result = ours(av1_source, tmp_path / f"ours-{scheme}", scheme)
        rid = next(r.id for r in result.release.renditions if r.kind == "video")
        mine = subsample_maps(numbered(result.output / rid, "seg_*.m4s"), iv_size)
        theirs = subsample_maps(
            numbered(shaka(av1_source, tmp_path / f"shaka-{scheme}", scheme), "*.m4s"), iv_size)
        assert len(mine) == len(theirs) == 50
        maps[scheme] = (mine, theirs)
    mine, theirs = maps["cbcs"]
    assert mine == theirs
    assert max(len(m) for m in mine) >= 2 or "rav1e" in av1_source.name  # tiles seen
    expected = [cenc_from_tiles(tiles) for tiles in theirs]
    mine, theirs = maps["cenc"]
    assert mine == expected
    # Shaka's cenc protects the same number of bytes in every sample.
    assert [sum(p for _, p in m) for m in mine] == [sum(p for _, p in t) for t in theirs]


def test_samples_have_no_temporal_delimiters_and_sync_means_key_frame_with_sequence_header(
    av1_source: Path, tmp_path: Path
) -> None:
    result = ours(av1_source, tmp_path / "ours", None)
    rid = next(r.id for r in result.release.renditions if r.kind == "video")
    directory = result.output / rid
    samples = track_samples(directory / "init.mp4", numbered(directory, "seg_*.m4s"))
    assert len(samples) == 50
    syncs = 0
    for sample, data in samples:
        delimiter, sequence, key = av1_frame_kind(data)
        assert not delimiter
        assert sample.is_sync == (sequence and key)
        assert sample.composition_offset == 0
        syncs += sample.is_sync
    assert syncs == 2  # a key frame every 25 frames
