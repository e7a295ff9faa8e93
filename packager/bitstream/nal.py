"""NAL units of length-prefixed AVC samples: unit boundaries and where slice data begins.

Sample encryption must leave NAL headers, non-VCL units and slice headers clear (ISO/IEC
23001-7 §9.5 and §10.4 for 'cbcs'; CMAF, ISO/IEC 23000-19), so the byte where a slice's
data starts is found by parsing the slice header (ITU-T H.264 §7.3.3) with the SPS/PPS state
it depends on, over the RBSP (emulation prevention bytes removed) and then mapped back to the
escaped bytes as stored in the sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from packager.errors import BitstreamError, InputError

#: H.264 Table 7-1: coded slice of a non-IDR picture, coded slice of an IDR picture.
AVC_SLICE_NON_IDR = 1
AVC_SLICE_IDR = 5
AVC_SPS = 7
AVC_PPS = 8
#: profile_idc values whose SPS carries chroma_format_idc and scaling lists (§7.3.2.1.1).
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
_P, _B, _I, _SP, _SI = 0, 1, 2, 3, 4


class NalUnit(NamedTuple):
    """One NAL unit of a sample (a tuple: thousands are made per second of video)."""

    offset: int  # of the length prefix, within the buffer iterated over
    prefix: int  # bytes of the length prefix (1, 2 or 4)
    size: int  # NAL unit bytes after the prefix (header included)
    kind: int  # nal_unit_type

    @property
    def end(self) -> int:
        return self.offset + self.prefix + self.size


def iter_nal_units(
    sample: bytes | bytearray | memoryview, prefix: int, hevc: bool = False, start: int = 0,
    end: int | None = None,
) -> Iterator[NalUnit]:
    """The length-prefixed NAL units of one sample (ISO/IEC 14496-15 §5.3.2 / §8.3.2): the
    whole buffer, or the sample at buffer[start:end] (offsets stay the buffer's)."""
    pos = start
    end = len(sample) if end is None else end
    while pos < end:
        if pos + prefix > end:
            raise BitstreamError(f"NAL length prefix overruns the sample at {pos - start}")
        size = int.from_bytes(sample[pos : pos + prefix], "big")
        body = pos + prefix
        if size == 0 or body + size > end:
            raise BitstreamError(
                f"NAL unit of {size} bytes at {pos - start} overruns the sample"
            )
        header = sample[body]
        yield NalUnit(pos, prefix, size, (header >> 1) & 0x3F if hevc else header & 0x1F)
        pos = body + size


def unescape(raw: bytes | memoryview) -> tuple[bytes, list[int]]:
    """RBSP of a NAL unit payload, and the raw offsets where emulation prevention bytes sat.

    H.264 §7.4.1: within a NAL unit, 0x000003 stands for 0x0000; the 0x03 is not part of the
    syntax, so bit positions of the slice header are counted without it.
    """
    data = bytes(raw)
    removed: list[int] = []
    parts: list[bytes] = []
    start = 0
    while (i := data.find(b"\x00\x00\x03", start)) >= 0:
        parts.append(data[start : i + 2])
        removed.append(i + 2)
        start = i + 3
    if not removed:
        return data, removed
    parts.append(data[start:])
    return b"".join(parts), removed


def escaped_length(rbsp_bytes: int, removed: list[int]) -> int:
    """How many raw bytes hold the first `rbsp_bytes` RBSP bytes (EPBs before them counted)."""
    raw = rbsp_bytes
    for position in removed:
        if position < raw:
            raw += 1
        else:
            break
    return raw


class BitReader:
    """MSB-first bit reader with Exp-Golomb codes (H.264 §9.1).

    The bits are one integer with 64 zero bits of padding after the data, so that an
    Exp-Golomb code is read from one 64-bit window (its leading zeros counted with
    bit_length) instead of bit by bit; reads past the data still fail.
    """

    def __init__(self, data: bytes) -> None:
        self._bits = len(data) * 8
        self._value = int.from_bytes(data, "big") << 64
        self._end = self._bits + 64
        self.position = 0

    def u(self, n: int) -> int:
        if n == 0:
            return 0
        position = self.position + n
        if position > self._bits:
            raise BitstreamError("slice header or parameter set ends early")
        self.position = position
        return (self._value >> (self._end - position)) & ((1 << n) - 1)

    def flag(self) -> bool:
        return self.u(1) == 1

    def ue(self) -> int:
        position = self.position
        window = (self._value >> (self._end - position - 64)) & 0xFFFF_FFFF_FFFF_FFFF
        zeros = 64 - window.bit_length()
        if zeros > 31:
            if position + 32 > self._bits:
                raise BitstreamError("slice header or parameter set ends early")
            raise BitstreamError("Exp-Golomb code longer than 32 bits")
        length = 2 * zeros + 1
        if position + length > self._bits:
            raise BitstreamError("slice header or parameter set ends early")
        self.position = position + length
        return (window >> (64 - length)) - 1

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


@dataclass(frozen=True)
class AvcSps:
    """The SPS fields a slice header's layout depends on (H.264 §7.3.2.1.1)."""

    sps_id: int
    chroma_array_type: int
    separate_colour_plane: bool
    log2_max_frame_num: int
    poc_type: int
    log2_max_poc_lsb: int
    delta_pic_order_always_zero: bool
    frame_mbs_only: bool


@dataclass(frozen=True)
class AvcPps:
    """The PPS fields a slice header's layout depends on (H.264 §7.3.2.2)."""

    pps_id: int
    sps_id: int
    entropy_coding_mode: bool
    bottom_field_pic_order_in_frame_present: bool
    num_ref_idx_l0_default: int
    num_ref_idx_l1_default: int
    weighted_pred: bool
    weighted_bipred_idc: int
    deblocking_filter_control_present: bool
    redundant_pic_cnt_present: bool


def parse_avc_sps(nal: bytes) -> AvcSps:
    r = BitReader(unescape(nal[1:])[0])
    profile_idc = r.u(8)
    r.u(16)  # constraint flags, level_idc
    sps_id = r.ue()
    chroma_format_idc, separate = 1, False
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc == 3:
            separate = r.flag()
        r.ue()  # bit_depth_luma_minus8
        r.ue()  # bit_depth_chroma_minus8
        r.u(1)  # qpprime_y_zero_transform_bypass_flag
        if r.flag():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.flag():
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    log2_max_frame_num = r.ue() + 4
    poc_type = r.ue()
    log2_max_poc_lsb = 0
    always_zero = False
    if poc_type == 0:
        log2_max_poc_lsb = r.ue() + 4
    elif poc_type == 1:
        always_zero = r.flag()
        r.se()  # offset_for_non_ref_pic
        r.se()  # offset_for_top_to_bottom_field
        for _ in range(r.ue()):
            r.se()
    r.ue()  # max_num_ref_frames
    r.u(1)  # gaps_in_frame_num_value_allowed_flag
    r.ue()  # pic_width_in_mbs_minus1
    r.ue()  # pic_height_in_map_units_minus1
    frame_mbs_only = r.flag()
    return AvcSps(
        sps_id=sps_id,
        chroma_array_type=0 if separate else chroma_format_idc,
        separate_colour_plane=separate,
        log2_max_frame_num=log2_max_frame_num,
        poc_type=poc_type,
        log2_max_poc_lsb=log2_max_poc_lsb,
        delta_pic_order_always_zero=always_zero,
        frame_mbs_only=frame_mbs_only,
    )


def _skip_scaling_list(r: BitReader, size: int) -> None:
    last, next_scale = 8, 8
    for _ in range(size):
        if next_scale != 0:
            next_scale = (last + r.se() + 256) % 256
        last = next_scale or last


def parse_avc_pps(nal: bytes) -> AvcPps:
    r = BitReader(unescape(nal[1:])[0])
    pps_id = r.ue()
    sps_id = r.ue()
    entropy = r.flag()
    bottom_field = r.flag()
    if r.ue() > 0:
        raise InputError("H.264 slice groups (FMO) are not supported for encryption")
    l0 = r.ue() + 1
    l1 = r.ue() + 1
    weighted_pred = r.flag()
    weighted_bipred = r.u(2)
    r.se()  # pic_init_qp_minus26
    r.se()  # pic_init_qs_minus26
    r.se()  # chroma_qp_index_offset
    deblocking = r.flag()
    r.u(1)  # constrained_intra_pred_flag
    redundant = r.flag()
    return AvcPps(pps_id, sps_id, entropy, bottom_field, l0, l1, weighted_pred, weighted_bipred,
                  deblocking, redundant)


@dataclass
class AvcParameterSets:
    """SPS/PPS by id, from avcC and then from in-band units (avc3) as they arrive in order."""

    sps: dict[int, AvcSps]
    pps: dict[int, AvcPps]

    def update(self, kind: int, nal: bytes) -> None:
        if kind == AVC_SPS:
            sps = parse_avc_sps(nal)
            self.sps[sps.sps_id] = sps
        elif kind == AVC_PPS:
            pps = parse_avc_pps(nal)
            self.pps[pps.pps_id] = pps


def avc_parameter_sets(avcc: bytes) -> tuple[int, AvcParameterSets]:
    """NAL length prefix size and the parameter sets of an AVCDecoderConfigurationRecord
    (ISO/IEC 14496-15 §5.3.3.1)."""
    prefix = (avcc[4] & 0x03) + 1
    sets = AvcParameterSets({}, {})
    pos = 5
    count = avcc[pos] & 0x1F
    pos += 1
    for _ in range(count):
        size = int.from_bytes(avcc[pos : pos + 2], "big")
        sets.update(AVC_SPS, avcc[pos + 2 : pos + 2 + size])
        pos += 2 + size
    count = avcc[pos]
    pos += 1
    for _ in range(count):
        size = int.from_bytes(avcc[pos : pos + 2], "big")
        sets.update(AVC_PPS, avcc[pos + 2 : pos + 2 + size])
        pos += 2 + size
    return prefix, sets


def avc_slice_header_size(nal: bytes | memoryview, sets: AvcParameterSets) -> int:
    """Bytes from the start of a slice NAL unit (header byte included) to its slice data.

    Counted in escaped bytes as stored; a slice header ending mid-byte (CAVLC) rounds up, so
    the byte shared with slice data stays clear. With CABAC the header is followed by
    cabac_alignment_one_bits, so slice data starts on the byte boundary (§7.3.4).
    """
    # A header is a few dozen bytes; unescape a bounded prefix, not the whole slice, and look
    # further only for the rare header (long weight tables) that does not fit.
    try:
        return _avc_slice_header_size(nal, sets, 64)
    except BitstreamError:
        if len(nal) <= 65:
            raise
        return _avc_slice_header_size(nal, sets, len(nal))


def _avc_slice_header_size(nal: bytes | memoryview, sets: AvcParameterSets, limit: int) -> int:
    nal_ref_idc = (nal[0] >> 5) & 3
    kind = nal[0] & 0x1F
    rbsp, removed = unescape(nal[1 : 1 + limit])
    r = BitReader(rbsp)
    r.ue()  # first_mb_in_slice
    slice_type = r.ue() % 5
    pps = sets.pps.get(r.ue())
    if pps is None or pps.sps_id not in sets.sps:
        raise BitstreamError("slice refers to a parameter set that was never sent")
    sps = sets.sps[pps.sps_id]
    if sps.separate_colour_plane:
        r.u(2)  # colour_plane_id
    r.u(sps.log2_max_frame_num)  # frame_num
    field_pic = False
    if not sps.frame_mbs_only:
        field_pic = r.flag()
        if field_pic:
            r.u(1)  # bottom_field_flag
    if kind == AVC_SLICE_IDR:
        r.ue()  # idr_pic_id
    if sps.poc_type == 0:
        r.u(sps.log2_max_poc_lsb)
        if pps.bottom_field_pic_order_in_frame_present and not field_pic:
            r.se()
    elif sps.poc_type == 1 and not sps.delta_pic_order_always_zero:
        r.se()
        if pps.bottom_field_pic_order_in_frame_present and not field_pic:
            r.se()
    if pps.redundant_pic_cnt_present:
        r.ue()
    if slice_type == _B:
        r.u(1)  # direct_spatial_mv_pred_flag
    l0, l1 = pps.num_ref_idx_l0_default, pps.num_ref_idx_l1_default
    if slice_type in (_P, _SP, _B) and r.flag():  # num_ref_idx_active_override_flag
        l0 = r.ue() + 1
        if slice_type == _B:
            l1 = r.ue() + 1
    if slice_type not in (_I, _SI):
        _skip_ref_pic_list_modification(r)
        if slice_type == _B:
            _skip_ref_pic_list_modification(r)
    if (pps.weighted_pred and slice_type in (_P, _SP)) or (
        pps.weighted_bipred_idc == 1 and slice_type == _B
    ):
        _skip_pred_weight_table(r, sps.chroma_array_type, l0, l1 if slice_type == _B else 0)
    if nal_ref_idc:
        _skip_dec_ref_pic_marking(r, kind == AVC_SLICE_IDR)
    if pps.entropy_coding_mode and slice_type not in (_I, _SI):
        r.ue()  # cabac_init_idc
    r.se()  # slice_qp_delta
    if slice_type in (_SP, _SI):
        if slice_type == _SP:
            r.u(1)  # sp_for_switch_flag
        r.se()  # slice_qs_delta
    if pps.deblocking_filter_control_present and r.ue() != 1:
        r.se()  # slice_alpha_c0_offset_div2
        r.se()  # slice_beta_offset_div2
    return 1 + escaped_length((r.position + 7) // 8, removed)


def _skip_ref_pic_list_modification(r: BitReader) -> None:
    if r.flag():
        while (idc := r.ue()) != 3:
            if idc > 5:
                raise BitstreamError(f"modification_of_pic_nums_idc {idc} is invalid")
            r.ue()


def _skip_pred_weight_table(r: BitReader, chroma_array_type: int, l0: int, l1: int) -> None:
    r.ue()  # luma_log2_weight_denom
    if chroma_array_type:
        r.ue()  # chroma_log2_weight_denom
    for count in (l0, l1):
        for _ in range(count):
            if r.flag():
                r.se()
                r.se()
            if chroma_array_type and r.flag():
                for _ in range(4):
                    r.se()


def _skip_dec_ref_pic_marking(r: BitReader, idr: bool) -> None:
    if idr:
        r.u(2)  # no_output_of_prior_pics_flag, long_term_reference_flag
        return
    if r.flag():  # adaptive_ref_pic_marking_mode_flag
        while (op := r.ue()) != 0:
            if op in (1, 3):
                r.ue()
            if op == 2:
                r.ue()
            if op in (3, 6):
                r.ue()
            if op == 4:
                r.ue()
