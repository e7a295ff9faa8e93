"""Common Encryption of a CMAF track (ISO/IEC 23001-7): 'cenc' (AES-CTR) and 'cbcs' (AES-CBC).

One fragment at a time: the segmenter hands over each media segment's sample bytes, gets them
back encrypted together with the per-sample auxiliary information (IV, subsamples) that goes
into senc/saiz/saio. Keys never leave this module's objects: they are not logged and not
repr()'d. This module encrypts and describes; it reads and writes no files (keys are stored by
packager/keys/keystore.py, segments written by packager/output/segmenter.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from Crypto.Cipher import AES

from packager.bitstream.av1 import TileFinder, parse_av1_config
from packager.bitstream.nal import (
    AVC_SLICE_IDR,
    AVC_SLICE_NON_IDR,
    AvcParameterSets,
    avc_parameter_sets,
    avc_slice_header_size,
    iter_nal_units,
)
from packager.bitstream.nal_hevc import (
    HEVC_SLICE_TYPES,
    HevcParameterSets,
    hevc_parameter_sets,
    hevc_slice_header_size,
)
from packager.drm.protection import TrackProtection
from packager.drm.systems import COMMON_SYSTEM_ID
from packager.encryption.iv import cbcs_constant_iv, cenc_first_iv
from packager.encryption.spec import EncryptionSpec
from packager.errors import BitstreamError, InputError
from packager.mp4 import isobmff
from packager.mp4.isobmff import Fragment

AVC_SLICE_TYPES = (AVC_SLICE_NON_IDR, AVC_SLICE_IDR)
BLOCK = 16
#: senc subsample BytesOfClearData is an unsigned int(16) (ISO/IEC 23001-7 §7.2.2).
MAX_CLEAR = 0xFFFF
#: 'cbcs' video pattern (ISO/IEC 23001-7 §10.4; what Apple, Widevine and PlayReady expect).
CBCS_VIDEO_PATTERN = (1, 9)


@dataclass(frozen=True)
class Subsample:
    """A run of clear bytes followed by a run of protected bytes (senc subsample entry)."""

    clear: int
    protected: int


def split_subsamples(regions: Sequence[tuple[int, int]], scheme: str) -> list[Subsample]:
    """Subsamples of one sample from its NAL units, each given as (must stay clear, may be
    protected) byte counts, in order.

    - 'cenc': protected runs are whole 16-byte blocks (a CMAF rule, ISO/IEC 23000-19);
      they start at slice data as for cbcs, and the remainder at the unit's end moves into
      the next clear count (what Shaka Packager v3 writes).
    - 'cbcs': protected runs start at the first byte of slice data (CMAF; 23001-7 §10.4);
      a trailing partial block stays clear by the pattern rule itself (§9.6), so no
      alignment here.
    - A unit with less than one block to protect stays wholly clear.
    - Clear runs longer than 65535 bytes are split into (65535, 0) entries (u16 field).
    """
    def runs() -> Iterator[tuple[int, int]]:
        for must_clear, may_protect in regions:
            protect = may_protect - (may_protect % BLOCK if scheme == "cenc" else 0)
            protect = protect if protect >= BLOCK else 0
            yield must_clear, protect
            yield may_protect - protect, 0

    return _subsamples(runs())


def split_av1_subsamples(
    size: int, tiles: Sequence[tuple[int, int]], scheme: str
) -> list[Subsample]:
    """Subsamples of one AV1 sample of `size` bytes from its tiles' (offset, size), per the AV1
    ISOBMFF binding v1.2.0 ("Common Encryption", its subsample constraints): only decode_tile()
    bytes are protected, everything between (OBU headers, sequence, frame and tile group
    headers, tile size fields) is clear.

    - 'cbcs': each tile is one protected run, from its first byte to its last, whatever its
      size (a subsample per tile, even under 16 bytes: the pattern leaves partial blocks
      clear itself). Byte for byte what Shaka Packager v3.8 writes.
    - 'cenc': protected runs are whole 16-byte blocks that "SHALL end on the last byte of the
      decode_tile structure", so the remainder at the tile's start is clear and a tile under
      16 bytes is clear altogether. (Shaka Packager v3.8 protects the same number of blocks
      from the tile's first byte instead, leaving the remainder at its end clear; the tests
      hold our maps to its maps shifted to the tile's end.)
    - Clear runs longer than 65535 bytes are split into (65535, 0) entries (u16 field).
    """
    def runs() -> Iterator[tuple[int, int]]:
        pos = 0
        for offset, length in tiles:
            if offset < pos or offset + length > size:
                raise BitstreamError("AV1 tiles overlap or overrun the sample")
            protect = length - length % BLOCK if scheme == "cenc" else length
            yield offset - pos + length - protect, protect
            pos = offset + length
        yield size - pos, 0

    return _subsamples(runs())


def _subsamples(runs: Iterable[tuple[int, int]]) -> list[Subsample]:
    """(clear, protected) runs as senc entries: a run protecting nothing joins the next clear
    count, and clear counts over 65535 are split into (65535, 0) entries (u16 field)."""
    out: list[Subsample] = []
    clear = 0
    for run_clear, protect in runs:
        clear += run_clear
        if protect:
            while clear > MAX_CLEAR:
                out.append(Subsample(MAX_CLEAR, 0))
                clear -= MAX_CLEAR
            out.append(Subsample(clear, protect))
            clear = 0
    while clear > MAX_CLEAR:
        out.append(Subsample(MAX_CLEAR, 0))
        clear -= MAX_CLEAR
    if clear or not out:
        out.append(Subsample(clear, 0))
    return out


def protection_for(spec: EncryptionSpec, handler: str) -> TrackProtection:
    """tenc fields for a track: cbcs video 1:9 pattern with a constant IV; cbcs audio whole
    blocks, no pattern (§10.4, §9.7); cenc 8-byte per-sample IVs, no pattern (§10.1)."""
    kid = spec.key.kid
    if spec.systems:
        pssh = b"".join(p.box for p in spec.drm)
    else:
        pssh = isobmff.pssh_box(COMMON_SYSTEM_ID, [kid])
    if spec.scheme == "cbcs":
        crypt, skip = CBCS_VIDEO_PATTERN if handler == "vide" else (0, 0)
        iv = cbcs_constant_iv(spec)
        fairplay_uri = dict(spec.fairplay_uris).get(kid)
        return TrackProtection("cbcs", kid, 0, iv, crypt, skip, pssh, spec.systems, spec.drm,
                               fairplay_uri)
    return TrackProtection("cenc", kid, 8, b"", 0, 0, pssh, spec.systems, spec.drm)


class TrackEncryptor:
    """Encrypts the samples of one track, fragment after fragment, in decode order.

    Holds the only state that spans fragments: the next per-sample IV (cenc IVs must be unique
    per sample across the whole track, §10.1) and, for in-band parameter sets (avc3), the
    latest SPS/PPS.
    """

    def __init__(self, spec: EncryptionSpec, moov: bytes, track_index: int = 0) -> None:
        self._key = spec.key.key
        info = isobmff.parse_track_info(moov)
        self.info = info
        self.protection = protection_for(spec, info.handler)
        self._nal_prefix = 0
        self._sets: AvcParameterSets | HevcParameterSets | None = None
        #: AV1: where each sample's tiles are (the reference state runs on from sample to
        #: sample; every part of a track starts at a sync sample, where it starts afresh).
        self._tiles: TileFinder | None = None
        self._hevc = info.sample_entry in ("hvc1", "hev1")
        if info.sample_entry in ("avc1", "avc3"):
            config = isobmff.sample_entry_config(moov, b"avcC")
            self._nal_prefix, self._sets = avc_parameter_sets(config)
        elif self._hevc:
            config = isobmff.sample_entry_config(moov, b"hvcC")
            self._nal_prefix, self._sets = hevc_parameter_sets(config)
        elif info.sample_entry == "av01":
            config = isobmff.sample_entry_config(moov, b"av1C")
            self._tiles = TileFinder(parse_av1_config(config).config_obus)
        elif info.handler == "vide":
            raise InputError(f"encryption of {info.sample_entry} video is not supported yet")
        # cenc: one step per sample from the track's origin (packager/encryption/iv.py).
        self._next_iv = cenc_first_iv(spec, track_index) if spec.scheme == "cenc" else 0
        self._chains = (_CbcChains(self._key, self.protection.constant_iv)
                        if self.protection.scheme == "cbcs" else None)

    def init_segment(self, ftyp: bytes, moov: bytes) -> bytes:
        p = self.protection
        tenc = isobmff.tenc_box(
            p.kid, p.per_sample_iv_size, p.constant_iv, p.crypt_byte_block, p.skip_byte_block
        )
        return ftyp + isobmff.protect_moov(moov, p.scheme, tenc, p.pssh)

    def encrypt(self, fragment: Fragment) -> tuple[Fragment, isobmff.SampleEncryption]:
        """The fragment with its sample data encrypted, and the senc entries describing it."""
        data = bytearray(fragment.data)
        view = memoryview(data)
        entries: list[tuple[bytes, list[Subsample]]] = []
        pos = 0
        for sample in fragment.samples:
            end = pos + sample.size
            if end > len(data):
                raise BitstreamError("sample sizes exceed the fragment's data")
            sample_view = view[pos:end]
            if self._tiles is not None:
                subsamples = split_av1_subsamples(
                    len(sample_view), self._tiles.tiles(sample_view), self.protection.scheme)
            elif self._sets is not None:
                subsamples = self._subsamples(sample_view)
            else:
                subsamples = []
            iv = b""
            if self.protection.scheme == "cenc":
                iv = self._next_iv.to_bytes(8, "big")
                self._next_iv = (self._next_iv + 1) % (1 << 64)
                _ctr(self._key, iv, sample_view, subsamples)
            else:
                assert self._chains is not None
                _cbcs(self._chains, self.protection, sample_view, subsamples)
            entries.append((iv, subsamples))
            pos = end
        view.release()
        aux = isobmff.SampleEncryption(
            iv_size=self.protection.per_sample_iv_size,
            use_subsamples=self._sets is not None or self._tiles is not None,
            entries=[(iv, [(s.clear, s.protected) for s in subs]) for iv, subs in entries],
        )
        return Fragment(fragment.base_decode_time, fragment.samples, bytes(data)), aux

    def _subsamples(self, sample: memoryview) -> list[Subsample]:
        sets = self._sets
        assert sets is not None
        regions: list[tuple[int, int]] = []
        for unit in iter_nal_units(sample, self._nal_prefix, self._hevc):
            nal = sample[unit.offset + unit.prefix : unit.end]
            if isinstance(sets, HevcParameterSets) and unit.kind in HEVC_SLICE_TYPES:
                header = hevc_slice_header_size(nal, sets)
            elif isinstance(sets, AvcParameterSets) and unit.kind in AVC_SLICE_TYPES:
                header = avc_slice_header_size(nal, sets)
            else:
                # Non-VCL units (parameter sets, SEI, AUD, ...) stay clear; parameter sets
                # sent in-band (avc3/hev1) update the state later slices are parsed with.
                sets.update(unit.kind, bytes(nal))
                regions.append((unit.prefix + unit.size, 0))
                continue
            regions.append((unit.prefix + header, unit.size - header))
        return split_subsamples(regions, self.protection.scheme)


def _ctr(key: bytes, iv: bytes, sample: memoryview, subsamples: list[Subsample]) -> None:
    """AES-CTR over the protected runs of a sample as one keystream (§9.5: the counter runs on
    across subsamples; clear bytes do not advance it). One AES call per sample."""
    cipher = AES.new(key, AES.MODE_CTR, nonce=iv, initial_value=0)
    if not subsamples:
        cipher.encrypt(sample, output=sample)
        return
    ranges = _protected_ranges(subsamples)
    if len(ranges) == 1:
        start, end = ranges[0]
        cipher.encrypt(sample[start:end], output=sample[start:end])
        return
    joined = cipher.encrypt(b"".join(sample[s:e] for s, e in ranges))
    at = 0
    for start, end in ranges:
        sample[start:end] = joined[at : at + end - start]
        at += end - start


class _CbcChains:
    """CBC chains that all start from the constant IV (cbcs restarts the chain at every
    subsample, §10.4), on one cipher object.

    Setting a cipher up costs more than encrypting a 400-byte audio frame (about 20 of 28
    microseconds; 43,000 samples in ten minutes of film), so the chain is re-pointed instead:
    after a chain ending in ciphertext block C, encrypting the block D_K(IV) xor C outputs
    E_K(D_K(IV)) = IV, which leaves the cipher exactly as a new one with that IV.
    """

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._cipher = AES.new(key, AES.MODE_CBC, iv=iv)
        self._reset = int.from_bytes(AES.new(key, AES.MODE_ECB).decrypt(iv), "big")

    def encrypt(self, region: memoryview | bytearray) -> bytes | None:
        """Encrypt whole blocks in place (memoryview) or return them (bytearray), then restart."""
        if isinstance(region, memoryview):
            self._cipher.encrypt(region, output=region)
            last = bytes(region[-BLOCK:])
            out = None
        else:
            out = self._cipher.encrypt(region)
            last = out[-BLOCK:]
        self._cipher.encrypt((self._reset ^ int.from_bytes(last, "big")).to_bytes(BLOCK, "big"))
        return out


def _cbcs(
    chains: _CbcChains, protection: TrackProtection, sample: memoryview,
    subsamples: list[Subsample],
) -> None:
    """AES-CBC with the constant IV, the chain restarting at every subsample (§10.4), on the
    1:9 pattern for video or on every whole block for audio; partial trailing blocks clear."""
    crypt, skip = protection.crypt_byte_block, protection.skip_byte_block
    ranges = _protected_ranges(subsamples) if subsamples else [(0, len(sample))]
    for start, end in ranges:
        blocks = (end - start) // BLOCK
        if not blocks:
            continue
        region = sample[start : start + blocks * BLOCK]
        if crypt == 0:
            chains.encrypt(region)
        else:
            _pattern_encrypt(chains, region, blocks, crypt, skip)


def _pattern_encrypt(
    chains: _CbcChains, region: memoryview, blocks: int, crypt: int, skip: int
) -> None:
    """Encrypt the first block of every 1+skip group as one CBC chain (§9.6 pattern).

    The encrypted blocks are gathered with strided 8-byte copies (two per 16-byte block), so
    one AES call covers the whole subsample instead of one call per block.
    """
    if crypt != 1:
        raise InputError(f"pattern {crypt}:{skip} is not supported; cbcs video uses 1:9")
    step = 2 * (crypt + skip)
    words = region.cast("Q")
    count = len(range(0, blocks * 2, step))
    gathered = bytearray(count * BLOCK)
    lanes = memoryview(gathered).cast("Q")
    lanes[0::2] = words[0::step]
    lanes[1::2] = words[1::step]
    result = chains.encrypt(gathered)
    assert result is not None
    encrypted = memoryview(result).cast("Q")
    words[0::step] = encrypted[0::2]
    words[1::step] = encrypted[1::2]


def _protected_ranges(subsamples: list[Subsample]) -> list[tuple[int, int]]:
    ranges = []
    pos = 0
    for s in subsamples:
        pos += s.clear
        if s.protected:
            ranges.append((pos, pos + s.protected))
            pos += s.protected
    return ranges
