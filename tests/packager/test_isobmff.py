"""Box-level rules: codec strings from decoder configs, fragment write/read, HLS target duration."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from packager.mp4.isobmff import (
    SAMPLE_NON_SYNC,
    Fragment,
    Sample,
    codec_string,
    iter_boxes,
    media_segment,
    parse_fragment,
)
from packager.output.hls import target_duration


def test_avc_codec_string_is_profile_constraints_level_in_hex() -> None:
    avcc = bytes([1, 0x64, 0x00, 0x28, 0xFF])  # High, no constraints, level 4.0
    assert codec_string("avc1", {b"avcC": avcc}) == "avc1.640028"


def test_hevc_codec_string_follows_14496_15_annex_e() -> None:
    # Main profile, tier L, compat flag bits 1 and 2 set (0x60000000), level 93 (3.1),
    # constraint byte 0xB0 then zeros: the spec's own example "hvc1.1.6.L93.B0".
    hvcc = bytes([1, 0x01]) + struct.pack(">I", 0x60000000) + bytes([0xB0, 0, 0, 0, 0, 0, 93])
    assert codec_string("hvc1", {b"hvcC": hvcc}) == "hvc1.1.6.L93.B0"


def test_hevc_high_tier_and_profile_space_are_spelled_out() -> None:
    hvcc = bytes([1, 0x40 | 0x20 | 0x02]) + struct.pack(">I", 0x20000000) + bytes(6) + bytes([153])
    assert codec_string("hev1", {b"hvcC": hvcc}) == "hev1.A2.4.H153"


def esds(audio_specific_config: bytes) -> bytes:
    dsi = bytes([0x05, len(audio_specific_config)]) + audio_specific_config
    dcd_body = bytes([0x40, 0x15]) + bytes(11) + dsi
    dcd = bytes([0x04, len(dcd_body)]) + dcd_body
    es_body = bytes([0, 1, 0]) + dcd
    return bytes(4) + bytes([0x03, len(es_body)]) + es_body


def test_aac_lc_codec_string_reads_the_audio_object_type() -> None:
    assert codec_string("mp4a", {b"esds": esds(bytes([0x11, 0x90]))}) == "mp4a.40.2"


def test_he_aac_codec_string() -> None:
    assert codec_string("mp4a", {b"esds": esds(bytes([0x2B, 0x92, 0x08, 0x00]))}) == "mp4a.40.5"


def test_escaped_audio_object_type_above_31() -> None:
    # aot 31 escape, then 6 bits: 42 - 32 = 10 -> 0b001010 (USAC, xHE-AAC)
    asc = bytes([(31 << 3) | 0b001, 0b010 << 5])
    assert codec_string("mp4a", {b"esds": esds(asc)}) == "mp4a.40.42"


samples_strategy = st.lists(
    st.builds(
        Sample,
        duration=st.integers(1, 10_000),
        size=st.integers(0, 64),
        flags=st.sampled_from([0x02000000, 0x01010000, SAMPLE_NON_SYNC]),
        composition_offset=st.integers(-5000, 5000),
    ),
    min_size=1,
    max_size=40,
)


@given(samples=samples_strategy, base=st.integers(0, 2**40), seq=st.integers(1, 2**31))
def test_a_written_segment_reads_back_identically(
    samples: list[Sample], base: int, seq: int
) -> None:
    data = bytes(i % 251 for i in range(sum(s.size for s in samples)))
    fragment = Fragment(base, samples, data)
    segment = media_segment(seq, 1, fragment)
    boxes = {b.type: b for b in iter_boxes(segment)}
    assert list(boxes) == [b"styp", b"moof", b"mdat"]
    moof, mdat = boxes[b"moof"], boxes[b"mdat"]
    again = parse_fragment(segment[moof.offset : moof.end], segment[mdat.body : mdat.end])
    assert again == fragment
    (sequence,) = struct.unpack_from(">I", segment, moof.body + 12)
    assert sequence == seq


def test_target_duration_is_the_largest_duration_rounded_to_nearest() -> None:
    # RFC 8216 §4.3.3.1: EXTINF rounded to the nearest integer <= EXT-X-TARGETDURATION
    assert target_duration([4.0, 4.0107, 3.98]) == 4
    assert target_duration([4.0, 4.5]) == 5
    assert target_duration([2.49]) == 2
    assert target_duration([0.2]) == 1
