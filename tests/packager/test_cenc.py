"""Common Encryption rules that need no tools: subsamples, cipher modes, boxes, key handling."""

from __future__ import annotations

import struct

import pytest
from Crypto.Cipher import AES
from hypothesis import given, settings
from hypothesis import strategies as st

from packager.bitstream.nal import escaped_length, unescape
from packager.encryption.cenc import (
    BLOCK,
    MAX_CLEAR,
    Subsample,
    _CbcChains,
    _cbcs,
    _CtrKeystream,
    _protected_ranges,
    split_subsamples,
)
from packager.encryption.spec import EncryptionSpec
from packager.errors import InputError
from packager.keys.model import ContentKey
from packager.keys.source import encryption_request, parse_iv, parse_key
from packager.mp4.isobmff import (
    Fragment,
    Sample,
    SampleEncryption,
    find_box,
    iter_boxes,
    media_segment,
    parse_fragment,
    pssh_box,
    tenc_box,
)

KEY = bytes.fromhex("0123456789abcdef0123456789abcdef")
KID = bytes.fromhex("00112233445566778899aabbccddeeff")
IV16 = bytes(range(16))

regions = st.lists(
    st.tuples(st.integers(1, 140_000), st.integers(0, 140_000)), min_size=1, max_size=8
)


@settings(max_examples=300, deadline=None)
@given(regions=regions, scheme=st.sampled_from(["cenc", "cbcs"]))
def test_subsamples_cover_the_sample_and_protect_only_slice_data(
    regions: list[tuple[int, int]], scheme: str
) -> None:
    subsamples = split_subsamples(regions, scheme)
    assert sum(s.clear + s.protected for s in subsamples) == sum(a + b for a, b in regions)
    assert all(0 <= s.clear <= MAX_CLEAR for s in subsamples)
    # Where each unit's protectable bytes are: after its clear part, up to its end.
    allowed: list[tuple[int, int]] = []
    pos = 0
    for must_clear, may_protect in regions:
        allowed.append((pos + must_clear, pos + must_clear + may_protect))
        pos += must_clear + may_protect
    pos = 0
    for s in subsamples:
        pos += s.clear
        if s.protected:
            start, end = pos, pos + s.protected
            unit = next(a for a in allowed if a[0] <= start < max(a[1], a[0] + 1))
            assert end <= unit[1], "protected bytes run past the unit's slice data"
            assert start == unit[0], "protection starts at the first byte of slice data"
            assert s.protected >= BLOCK
            if scheme == "cenc":
                assert s.protected % BLOCK == 0
        pos += s.protected


def test_units_smaller_than_a_block_stay_clear() -> None:
    assert split_subsamples([(5, 15), (4, 10)], "cbcs") == [Subsample(34, 0)]


def test_cenc_moves_the_partial_block_into_the_next_clear_run() -> None:
    assert split_subsamples([(10, 40), (4, 0)], "cenc") == [Subsample(10, 32), Subsample(12, 0)]
    assert split_subsamples([(10, 40)], "cbcs") == [Subsample(10, 40)]


def test_long_clear_runs_are_split_at_65535() -> None:
    assert split_subsamples([(70_000, 32)], "cenc") == [
        Subsample(MAX_CLEAR, 0), Subsample(70_000 - MAX_CLEAR, 32),
    ]


def _reference_cbcs(data: bytes, start: int, end: int, crypt: int, skip: int) -> bytes:
    """Block by block, straight from ISO/IEC 23001-7 §9.6/§10.4: the slow, obvious way."""
    out = bytearray(data)
    cipher = AES.new(KEY, AES.MODE_CBC, iv=IV16)
    for block, pos in enumerate(range(start, end - BLOCK + 1, BLOCK)):
        if crypt == 0 or block % (crypt + skip) < crypt:
            out[pos : pos + BLOCK] = cipher.encrypt(bytes(out[pos : pos + BLOCK]))
    return bytes(out)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=0, max_size=2000), clear=st.integers(0, 100))
def test_cbcs_pattern_matches_block_by_block_reference(data: bytes, clear: int) -> None:
    clear = min(clear, len(data))
    buf = bytearray(data)
    _cbcs(_CbcChains(KEY, IV16), memoryview(buf),
          _protected_ranges([Subsample(clear, len(data) - clear)]), 1, 9)
    assert bytes(buf) == _reference_cbcs(data, clear, len(data), 1, 9)


@settings(max_examples=40, deadline=None)
@given(samples=st.lists(st.tuples(st.binary(min_size=0, max_size=600), st.booleans()),
                        min_size=1, max_size=12))
def test_one_cipher_restarted_per_chain_equals_a_new_cipher_per_chain(
    samples: list[tuple[bytes, bool]]
) -> None:
    """The chain re-pointing trick of _CbcChains: many samples (video pattern or audio whole
    blocks, mixed) through one object give what a fresh cipher per sample gives."""
    chains = _CbcChains(KEY, IV16)
    for data, video in samples:
        crypt, skip = (1, 9) if video else (0, 0)
        buf = bytearray(data)
        _cbcs(chains, memoryview(buf), [(0, len(data))], crypt, skip)
        assert bytes(buf) == _reference_cbcs(data, 0, len(data), crypt, skip)


@settings(max_examples=40, deadline=None)
@given(samples=st.lists(st.binary(min_size=0, max_size=700), min_size=1, max_size=60),
       then=st.binary(min_size=16, max_size=300), direct=st.booleans())
def test_audio_chains_side_by_side_equal_a_cipher_per_chain(
    samples: list[bytes], then: bytes, direct: bool
) -> None:
    """Many whole-block chains at once (_CbcChains.encrypt_side_by_side, called here directly
    or taken by _cbcs when there are enough of them), samples back to back as in a segment:
    each sample as a fresh CBC cipher from the IV encrypts it, its partial last block clear;
    and the same object then encrypts a lone chain as a fresh cipher would."""
    chains = _CbcChains(KEY, IV16)
    data = b"".join(samples)
    buf = bytearray(data)
    ranges, pos = [], 0
    for sample in samples:
        ranges.append((pos, pos + len(sample)))
        pos += len(sample)
    whole = [(start, (end - start) // BLOCK) for start, end in ranges if end - start >= BLOCK]
    if direct and whole:
        chains.encrypt_side_by_side(memoryview(buf), whole)
    else:
        _cbcs(chains, memoryview(buf), ranges, 0, 0)
    assert bytes(buf) == b"".join(_reference_cbcs(s, 0, len(s), 0, 0) for s in samples)
    lone = bytearray(then)
    _cbcs(chains, memoryview(lone), [(0, len(then))], 0, 0)
    assert bytes(lone) == _reference_cbcs(then, 0, len(then), 0, 0)


@given(data=st.binary(min_size=0, max_size=500))
def test_cbcs_audio_encrypts_whole_blocks_and_leaves_the_tail_clear(data: bytes) -> None:
    buf = bytearray(data)
    _cbcs(_CbcChains(KEY, IV16), memoryview(buf), [(0, len(data))], 0, 0)
    assert bytes(buf) == _reference_cbcs(data, 0, len(data), 0, 0)
    tail = len(data) % BLOCK
    assert bytes(buf[len(data) - tail :]) == data[len(data) - tail :]


def test_cenc_counter_runs_on_across_subsamples() -> None:
    data = bytes(range(256)) * 2
    subsamples = [Subsample(7, 48), Subsample(9, 32), Subsample(3, 0)]
    buf = bytearray(data)
    iv = bytes(8)
    _CtrKeystream(KEY).encrypt(memoryview(buf), [iv], [_protected_ranges(subsamples)])
    stream = AES.new(KEY, AES.MODE_CTR, nonce=iv, initial_value=0).encrypt(
        data[7:55] + data[64:96]
    )
    assert bytes(buf[7:55]) + bytes(buf[64:96]) == stream
    assert buf[:7] == data[:7]
    assert buf[55:64] == data[55:64]
    assert buf[96:] == data[96:]


@settings(max_examples=60, deadline=None)
@given(samples=st.lists(st.tuples(st.binary(min_size=0, max_size=700), st.integers(0, 60),
                                  st.booleans()), min_size=1, max_size=10),
       iv=st.integers(0, 2**64 - 1))
def test_one_keystream_for_many_samples_equals_a_ctr_cipher_per_sample(
    samples: list[tuple[bytes, int, bool]], iv: int
) -> None:
    """_CtrKeystream: samples back to back, each whole (audio: partial last blocks) or with a
    clear head and whole protected blocks (video subsamples), one ECB pass for all of them,
    twice on one object (its buffers are reused): each sample as a CTR cipher of its own IV
    would encrypt it."""
    ctr = _CtrKeystream(KEY)
    for _ in range(2):
        data = b"".join(d for d, _, _ in samples)
        buf = bytearray(data)
        ranges, ivs, expected, pos = [], [], bytearray(data), 0
        for n, (sample, clear, whole) in enumerate(samples):
            sample_iv = ((iv + n) % 2**64).to_bytes(8, "big")
            if whole:
                subsamples = [Subsample(0, len(sample))]
            else:
                head = min(clear, len(sample))
                protected = (len(sample) - head) // BLOCK * BLOCK
                subsamples = [Subsample(head, protected),
                              Subsample(len(sample) - head - protected, 0)]
            spans = _protected_ranges(subsamples, pos)
            stream = AES.new(KEY, AES.MODE_CTR, nonce=sample_iv, initial_value=0).encrypt(
                b"".join(data[s:e] for s, e in spans))
            at = 0
            for s, e in spans:
                expected[s:e] = stream[at : at + e - s]
                at += e - s
            ranges.append(spans)
            ivs.append(sample_iv)
            pos += len(sample)
        ctr.encrypt(memoryview(buf), ivs, ranges)
        assert buf == expected


def test_tenc_fields_per_scheme() -> None:
    cbcs = tenc_box(KID, 0, IV16, 1, 9)
    assert cbcs[8] == 1  # version 1: pattern fields present
    assert cbcs[13] == 0x19
    assert cbcs[14] == 1
    assert cbcs[15] == 0
    assert cbcs[16:32] == KID
    assert cbcs[32] == 16
    assert cbcs[33:49] == IV16
    cenc = tenc_box(KID, 8, b"", 0, 0)
    assert cenc[8] == 0
    assert cenc[13] == 0
    assert cenc[15] == 8
    assert len(cenc) == 32


def test_common_pssh_is_version_1_with_kids_and_no_data() -> None:
    pssh = pssh_box(bytes.fromhex("1077efecc0b24d02ace33c1e52e2fb4b"), [KID])
    assert pssh[4:8] == b"pssh"
    assert pssh[8] == 1
    assert struct.unpack_from(">I", pssh, 28)[0] == 1
    assert pssh[32:48] == KID
    assert pssh[48:52] == bytes(4)


def test_saio_points_at_the_first_senc_entry_and_trun_past_the_moof() -> None:
    samples = [Sample(1000, 40, 0, 0), Sample(1000, 24, 0, 0)]
    fragment = Fragment(0, samples, bytes(64))
    aux = SampleEncryption(8, True, [(b"A" * 8, [(8, 32)]), (b"B" * 8, [(8, 16)])])
    segment = media_segment(1, 1, fragment, aux)
    moof = next(b for b in iter_boxes(segment) if b.type == b"moof")
    saio = find_box(segment, [b"traf", b"saio"], moof.body, moof.end)
    assert saio is not None
    (offset,) = struct.unpack_from(">I", segment, saio.body + 8)
    assert segment[moof.offset + offset : moof.offset + offset + 8] == b"A" * 8
    mdat = next(b for b in iter_boxes(segment) if b.type == b"mdat")
    parsed = parse_fragment(segment[moof.offset : moof.end], segment[mdat.body : mdat.end])
    assert parsed.samples == samples
    assert parsed.data == fragment.data


def test_emulation_prevention_bytes_are_counted_back() -> None:
    raw = bytes([0x88, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x03, 0x00, 0x42])
    rbsp, removed = unescape(raw)
    assert rbsp == bytes([0x88, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x42])
    assert removed == [3, 7]
    assert escaped_length(3, removed) == 3  # the EPB right after is not needed
    assert escaped_length(4, removed) == 5
    assert escaped_length(7, removed) == 9


def test_key_parsing_and_errors_never_repeat_the_key() -> None:
    key = parse_key(f"{KID.hex()}:{KEY.hex()}")
    assert key == ContentKey(KID, KEY)
    assert KEY.hex() not in repr(key)
    assert KEY.hex() not in repr(EncryptionSpec("cbcs", key))
    with pytest.raises(InputError) as caught:
        parse_key(f"{KID.hex()}:{KEY.hex()[:-1]}")
    assert KEY.hex()[:-1] not in str(caught.value)
    with pytest.raises(InputError):
        parse_iv("abc")
    with pytest.raises(InputError):
        EncryptionSpec("cbcs", key, bytes(8))


def test_encryption_options_must_come_together() -> None:
    assert encryption_request(None, None, None) is None
    assert encryption_request(None, f"{KID.hex()}:{KEY.hex()}", None, key_from_env=True) is None
    with pytest.raises(InputError, match="need --encrypt"):
        encryption_request(None, f"{KID.hex()}:{KEY.hex()}", None)
    with pytest.raises(InputError, match="needs a key"):
        encryption_request("cenc", None, None)
