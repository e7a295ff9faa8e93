"""Common Encryption of a CMAF track (ISO/IEC 23001-7): 'cenc' (AES-CTR) and 'cbcs' (AES-CBC).

One fragment at a time: the segmenter hands over each media segment's sample bytes, gets them
back encrypted together with the per-sample auxiliary information (IV, subsamples) that goes
into senc/saiz/saio. Keys never leave this module's objects: they are not logged and not
repr()'d. This module encrypts and describes; it reads and writes no files (keys are stored by
packager/keys/keystore.py, segments written by packager/output/segmenter.py).
"""

from __future__ import annotations

import itertools
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from packager.bitstream.av1 import TileFinder, parse_av1_config
from packager.bitstream.nal import (
    AVC_SLICE_IDR,
    AVC_SLICE_NON_IDR,
    AvcParameterSets,
    avc_parameter_sets,
    avc_slice_header_size,
    iter_nal_units,
)
from packager.drm.protection import TrackProtection
from packager.drm.systems import COMMON_SYSTEM_ID
from packager.encryption.aes import AES, strxor
from packager.encryption.iv import cbcs_constant_iv, cenc_first_iv
from packager.encryption.spec import EncryptionSpec
from packager.errors import BitstreamError, InputError
from packager.mp4 import isobmff
from packager.mp4.isobmff import Fragment

if TYPE_CHECKING:
    from packager.bitstream.nal_hevc import HevcParameterSets

AVC_SLICE_TYPES = (AVC_SLICE_NON_IDR, AVC_SLICE_IDR)
BLOCK = 16
#: senc subsample BytesOfClearData is an unsigned int(16) (ISO/IEC 23001-7 §7.2.2).
MAX_CLEAR = 0xFFFF
#: 'cbcs' video pattern (ISO/IEC 23001-7 §10.4; what Apple, Widevine and PlayReady expect).
CBCS_VIDEO_PATTERN = (1, 9)


class Subsample(NamedTuple):
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
        # The slice header parser of the codec (HEVC's is loaded only for HEVC).
        self._slice_types: frozenset[int] | tuple[int, ...] = ()
        self._header_size: Callable[[memoryview, Any], int] = avc_slice_header_size
        if info.sample_entry in ("avc1", "avc3"):
            config = isobmff.sample_entry_config(moov, b"avcC")
            self._nal_prefix, self._sets = avc_parameter_sets(config)
            self._slice_types = AVC_SLICE_TYPES
        elif self._hevc:
            from packager.bitstream import nal_hevc
            config = isobmff.sample_entry_config(moov, b"hvcC")
            self._nal_prefix, self._sets = nal_hevc.hevc_parameter_sets(config)
            self._slice_types = nal_hevc.HEVC_SLICE_TYPES
            self._header_size = nal_hevc.hevc_slice_header_size
        elif info.sample_entry == "av01":
            config = isobmff.sample_entry_config(moov, b"av1C")
            self._tiles = TileFinder(parse_av1_config(config).config_obus)
        elif info.handler == "vide":
            raise InputError(f"encryption of {info.sample_entry} video is not supported yet")
        # cenc: one step per sample from the track's origin (packager/encryption/iv.py).
        self._next_iv = cenc_first_iv(spec, track_index) if spec.scheme == "cenc" else 0
        self._chains = (_CbcChains(self._key, self.protection.constant_iv)
                        if self.protection.scheme == "cbcs" else None)
        self._ctr = _CtrKeystream(self._key) if self.protection.scheme == "cenc" else None

    def init_segment(self, ftyp: bytes, moov: bytes) -> bytes:
        p = self.protection
        tenc = isobmff.tenc_box(
            p.kid, p.per_sample_iv_size, p.constant_iv, p.crypt_byte_block, p.skip_byte_block
        )
        return ftyp + isobmff.protect_moov(moov, p.scheme, tenc, p.pssh)

    def encrypt(self, fragment: Fragment) -> tuple[Fragment, isobmff.SampleEncryption]:
        """The fragment with its sample data encrypted, and the senc entries describing it."""
        data = bytearray(fragment.data)
        aux = self.encrypt_samples(data, [s.size for s in fragment.samples])
        return Fragment(fragment.base_decode_time, fragment.samples, bytes(data)), aux

    def encrypt_samples(
        self, data: bytearray | memoryview, sizes: Sequence[int]
    ) -> isobmff.SampleEncryption:
        """Encrypt in place the samples that lie back to back in `data` (one segment's, in
        decode order), and describe them: the senc entries (IV, subsamples) of each."""
        if sum(sizes) > len(data):
            raise BitstreamError("sample sizes exceed the fragment's data")
        view = memoryview(data)
        scheme = self.protection.scheme
        entries: list[tuple[bytes, list[Subsample]]] = []
        #: Per sample, the (start, end) byte ranges of `data` that are protected.
        ranges: list[list[tuple[int, int]]] = []
        pos = 0
        for size in sizes:
            end = pos + size
            if self._tiles is not None:
                subsamples: list[Subsample] = split_av1_subsamples(
                    size, self._tiles.tiles(view[pos:end]), scheme)
                ranges.append(_protected_ranges(subsamples, pos))
            elif self._sets is not None:
                subsamples = self._nal_subsamples(view, pos, end)
                ranges.append(_protected_ranges(subsamples, pos))
            else:
                subsamples = []
                ranges.append([(pos, end)])
            iv = b""
            if scheme == "cenc":
                iv = self._next_iv.to_bytes(8, "big")
                self._next_iv = (self._next_iv + 1) % (1 << 64)
            entries.append((iv, subsamples))
            pos = end
        if scheme == "cenc":
            assert self._ctr is not None
            self._ctr.encrypt(view, [iv for iv, _ in entries], ranges)
        else:
            assert self._chains is not None
            crypt, skip = self.protection.crypt_byte_block, self.protection.skip_byte_block
            _cbcs(self._chains, view, [span for r in ranges for span in r], crypt, skip)
        view.release()
        return isobmff.SampleEncryption(
            iv_size=self.protection.per_sample_iv_size,
            use_subsamples=self._sets is not None or self._tiles is not None,
            entries=entries,
        )

    def _nal_subsamples(self, data: memoryview, start: int, end: int) -> list[Subsample]:
        """The subsamples of the sample at data[start:end], from its NAL units."""
        sets = self._sets
        assert sets is not None
        regions: list[tuple[int, int]] = []
        for offset, prefix, size, kind in iter_nal_units(data, self._nal_prefix, self._hevc,
                                                         start, end):
            nal = data[offset + prefix : offset + prefix + size]
            if kind in self._slice_types:
                header = self._header_size(nal, sets)
            else:
                # Non-VCL units (parameter sets, SEI, AUD, ...) stay clear; parameter sets
                # sent in-band (avc3/hev1) update the state later slices are parsed with.
                sets.update(kind, bytes(nal))
                regions.append((prefix + size, 0))
                continue
            regions.append((prefix + header, size - header))
        return split_subsamples(regions, self.protection.scheme)


def _protected_ranges(subsamples: list[Subsample], pos: int = 0) -> list[tuple[int, int]]:
    """(start, end) of each protected run, for a sample that starts at `pos`."""
    ranges = []
    for clear, protected in subsamples:
        pos += clear
        if protected:
            ranges.append((pos, pos + protected))
            pos += protected
    return ranges


class _CtrKeystream:
    """AES-CTR for many samples at once (§9.5; 'cenc', §10.1): every sample's counter blocks
    (its 8-byte IV, then a 64-bit block counter from 0) are laid out in one buffer and
    encrypted with one ECB call, and XORed with the protected bytes in one more: a CTR cipher
    per sample cost more to set up (about 11 microseconds) than an AAC frame takes to encrypt.
    The counter runs on across a sample's subsamples; clear bytes do not advance it.

    The buffers are kept from one call to the next: fresh megabytes for every segment cost
    the kernel more (page faults) than the AES itself."""

    def __init__(self, key: bytes) -> None:
        self._ecb = AES.new(key, AES.MODE_ECB)
        self._template = bytearray()  # block j: 8 zero bytes, then j (big-endian)
        self._counters = bytearray()
        self._gathered = bytearray()

    def _counter_template(self, blocks: int) -> memoryview:
        if len(self._template) < blocks * BLOCK:
            size = max(blocks, 2 * len(self._template) // BLOCK, 1024)
            template = bytearray(size * BLOCK)
            lanes = memoryview(template).cast("Q")
            lanes[1::2] = array("Q", [_native(j) for j in range(size)])
            lanes.release()
            self._template = template
        return memoryview(self._template)[: blocks * BLOCK]

    def encrypt(self, data: memoryview, ivs: list[bytes],
                ranges: list[list[tuple[int, int]]]) -> None:
        lengths = [sum(end - start for start, end in r) for r in ranges]
        blocks = [-(-n // BLOCK) for n in lengths]
        total = sum(blocks) * BLOCK
        if len(self._counters) < total:
            self._counters = bytearray(total)
        counters = memoryview(self._counters)[:total]
        lanes = counters.cast("Q")
        at = 0
        for iv, n in zip(ivs, blocks, strict=True):
            if n:
                counters[at * BLOCK : (at + n) * BLOCK] = self._counter_template(n)
                lanes[2 * at : 2 * (at + n) : 2] = array("Q", [_native_bytes(iv)]) * n
                at += n
        lanes.release()
        keystream = self._ecb.encrypt(counters, output=counters) or counters
        used = sum(lengths)
        if used != total:  # partial last blocks: close up the bytes they leave unused
            to, at = 0, 0
            for n, b in zip(lengths, blocks, strict=True):
                if to != at:
                    keystream[to : to + n] = keystream[at : at + n]
                to += n
                at += b * BLOCK
        keystream = keystream[:used]
        spans = [span for r in ranges for span in r]
        if not spans:
            return
        if all(a[1] == b[0] for a, b in itertools.pairwise(spans)):  # one run (audio)
            run = data[spans[0][0] : spans[-1][1]]
            strxor(run, keystream, output=run)
            return
        if len(self._gathered) < used:
            self._gathered = bytearray(used)
        gathered = memoryview(self._gathered)[:used]
        at = 0
        for start, end in spans:
            gathered[at : at + end - start] = data[start:end]
            at += end - start
        strxor(gathered, keystream, output=gathered)
        at = 0
        for start, end in spans:
            data[start:end] = gathered[at : at + end - start]
            at += end - start


def _native(counter: int) -> int:
    """The 'Q' lane value whose bytes in memory are `counter` big-endian."""
    return int.from_bytes(counter.to_bytes(8, "big"), sys.byteorder)


def _native_bytes(iv: bytes) -> int:
    return int.from_bytes(iv, sys.byteorder)


class _CbcChains:
    """CBC chains that all start from the constant IV (cbcs restarts the chain at every
    subsample, §10.4), on one cipher object and one call per chain.

    Setting a cipher up costs more than encrypting a 400-byte audio frame (about 20 of 28
    microseconds; 43,000 samples in ten minutes of film), so the chain is re-pointed instead:
    a chain is encrypted after one extra first block, D_K(IV) xor C, where C is the last
    ciphertext block the cipher produced (or the IV it was made with): that block comes out as
    E_K(D_K(IV)) = IV, and the chain after it as from a new cipher with that IV.
    """

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._cipher = AES.new(key, AES.MODE_CBC, iv=iv)
        self._ecb = AES.new(key, AES.MODE_ECB)
        self._iv = iv
        self._reset = int.from_bytes(self._ecb.decrypt(iv), "big")
        self._last = int.from_bytes(iv, "big")
        self._rows = bytearray()
        self._column = bytearray()

    def encrypt(self, chain: bytearray) -> memoryview:
        """Encrypt chain[BLOCK:] (whole blocks) as one chain from the IV; chain[:BLOCK] is
        room for the re-pointing block. Returns the encrypted chain (without that block)."""
        chain[:BLOCK] = (self._reset ^ self._last).to_bytes(BLOCK, "big")
        out = self._cipher.encrypt(bytes(chain))  # bytes: pycryptodome's cheapest argument
        self._last = int.from_bytes(out[-BLOCK:], "big")
        return memoryview(out)[BLOCK:]

    def encrypt_side_by_side(self, data: memoryview, chains: list[tuple[int, int]]) -> None:
        """Encrypt in place many short chains, each (start, blocks) in `data`, a block of
        every chain at a time.

        Block k of a chain is E(P_k xor C_k-1), C_-1 the IV: block k of all the chains is one
        XOR and one ECB call, their blocks k-1 done. The chains are copied into the rows of
        a matrix, longest first, so that block k of the chains that have one is a strided
        slice of its first rows; an AAC frame (25 blocks; 190 a segment) then costs two
        copies and a share of 25 calls, instead of a call of its own (3 microseconds)."""
        order = sorted(chains, key=lambda chain: -chain[1])
        longest = order[0][1]
        width = longest * BLOCK
        if len(self._rows) < len(order) * width:
            self._rows = bytearray(len(order) * width)
        if len(self._column) < len(order) * BLOCK:
            self._column = bytearray(len(order) * BLOCK)
        rows = memoryview(self._rows)
        for row, (start, blocks) in enumerate(order):
            rows[row * width : row * width + blocks * BLOCK] = data[start : start + blocks * BLOCK]
        words = rows.cast("Q")
        stride = 2 * longest
        column = memoryview(self._column)
        lanes = column.cast("Q")
        previous = self._iv * len(order)  # C_-1 of every chain
        active = len(order)
        for k in range(longest):
            while order[active - 1][1] <= k:
                active -= 1
            blocks_k = words[2 * k : 2 * k + stride * active : stride]
            lanes[0 : 2 * active : 2] = blocks_k
            lanes[1 : 2 * active : 2] = words[2 * k + 1 : 2 * k + 1 + stride * active : stride]
            # bytes in and out: pycryptodome's ctypes binding costs microseconds per writable
            # buffer it is handed, more than the AES of a column.
            mixed = strxor(bytes(column[: active * BLOCK]), previous[: active * BLOCK])
            previous = self._ecb.encrypt(mixed)
            encrypted = memoryview(previous).cast("Q")
            words[2 * k : 2 * k + stride * active : stride] = encrypted[0::2]
            words[2 * k + 1 : 2 * k + 1 + stride * active : stride] = encrypted[1::2]
            encrypted.release()
        lanes.release()
        words.release()
        for row, (start, blocks) in enumerate(order):
            data[start : start + blocks * BLOCK] = rows[row * width : row * width + blocks * BLOCK]


#: Whole-block chains (cbcs audio) are encrypted side by side when there are at least this
#: many: each takes then a share of one AES call per block position instead of a call.
SIDE_BY_SIDE = 8


def _cbcs(chains: _CbcChains, sample: memoryview, ranges: list[tuple[int, int]], crypt: int,
          skip: int) -> None:
    """AES-CBC with the constant IV, the chain restarting at every subsample (§10.4), on the
    1:9 pattern for video or on every whole block for audio; partial trailing blocks clear.
    `ranges`: the protected ranges of one or more samples, each a chain."""
    if crypt == 0:
        whole = [(start, (end - start) // BLOCK) for start, end in ranges
                 if end - start >= BLOCK]
        longest = max((blocks for _, blocks in whole), default=0)
        if len(whole) >= SIDE_BY_SIDE and 2 * longest <= len(whole):
            chains.encrypt_side_by_side(sample, whole)
            return
    for start, end in ranges:
        blocks = (end - start) // BLOCK
        if not blocks:
            continue
        region = sample[start : start + blocks * BLOCK]
        if crypt == 0:
            chain = bytearray(BLOCK)
            chain += region
            region[:] = chains.encrypt(chain)
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
    gathered = bytearray((count + 1) * BLOCK)
    lanes = memoryview(gathered)[BLOCK:].cast("Q")
    lanes[0::2] = words[0::step]
    lanes[1::2] = words[1::step]
    lanes.release()
    encrypted = chains.encrypt(gathered).cast("Q")
    words[0::step] = encrypted[0::2]
    words[1::step] = encrypted[1::2]
