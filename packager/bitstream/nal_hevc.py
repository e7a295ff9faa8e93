"""HEVC slice segment headers: where slice data starts, for NAL-aware sample encryption.

ITU-T H.265 §7.3.6.1: the header's length depends on the SPS (reference picture sets, long-term
pictures, SAO, temporal MVP) and the PPS (extra header bits, weighted prediction, tiles and
wavefront entry points, deblocking overrides), so both are parsed and kept by id. Bits are
counted over the RBSP and mapped back to escaped bytes (nal.escaped_length).
"""

from __future__ import annotations

from dataclasses import dataclass

from packager.bitstream.nal import BitReader, escaped_length, unescape
from packager.errors import BitstreamError, InputError

HEVC_VPS = 32
HEVC_SPS = 33
HEVC_PPS = 34
#: H.265 Table 7-1: VCL slice segment types that carry coded pictures (RSV types excluded).
HEVC_SLICE_TYPES = frozenset({*range(0, 10), *range(16, 22)})
_IDR_W_RADL, _IDR_N_LP = 19, 20
_B, _P, _I = 0, 1, 2


@dataclass(frozen=True)
class HevcSps:
    sps_id: int
    chroma_array_type: int
    separate_colour_plane: bool
    log2_max_poc_lsb: int
    pic_size_in_ctbs: int
    sample_adaptive_offset: bool
    #: Per short-term RPS in the SPS: (NumDeltaPocs, number of pictures used by the current one).
    short_term_rps: tuple[tuple[int, int], ...]
    long_term_refs_present: bool
    num_long_term_ref_pics_sps: int
    #: used_by_curr_pic_lt_sps_flag of each candidate long-term picture in the SPS.
    long_term_used: tuple[bool, ...]
    temporal_mvp: bool


@dataclass(frozen=True)
class HevcPps:
    pps_id: int
    sps_id: int
    dependent_slice_segments: bool
    output_flag_present: bool
    num_extra_slice_header_bits: int
    cabac_init_present: bool
    num_ref_idx_l0_default: int
    num_ref_idx_l1_default: int
    slice_chroma_qp_offsets_present: bool
    weighted_pred: bool
    weighted_bipred: bool
    tiles_or_wavefront: bool
    loop_filter_across_slices: bool
    deblocking_override_enabled: bool
    deblocking_disabled: bool
    lists_modification_present: bool
    slice_header_extension_present: bool
    chroma_qp_offset_list_enabled: bool


def _ceil_log2(n: int) -> int:
    return (n - 1).bit_length() if n > 1 else 0


def _skip_profile_tier_level(r: BitReader, max_sub_layers_minus1: int) -> None:
    r.u(88)  # general profile space/tier/idc, compatibility flags, constraint flags
    r.u(8)  # general_level_idc
    present = [(r.flag(), r.flag()) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1 > 0:
        r.u(2 * (8 - max_sub_layers_minus1))
    for profile, level in present:
        if profile:
            r.u(88)
        if level:
            r.u(8)


def _skip_scaling_list_data(r: BitReader) -> None:
    for size_id in range(4):
        for _ in range(0, 6, 3 if size_id == 3 else 1):
            if not r.flag():  # scaling_list_pred_mode_flag
                r.ue()
                continue
            if size_id > 1:
                r.se()
            for _ in range(min(64, 1 << (4 + (size_id << 1)))):
                r.se()


def _st_ref_pic_set(
    r: BitReader, index: int, count: int, sets: list[tuple[int, int]]
) -> tuple[int, int]:
    """Parse st_ref_pic_set(index) (§7.3.7); returns (NumDeltaPocs, used-by-current count)."""
    if index != 0 and r.flag():  # inter_ref_pic_set_prediction_flag
        delta_idx = r.ue() + 1 if index == count else 1
        r.u(1)  # delta_rps_sign
        r.ue()  # abs_delta_rps_minus1
        ref = index - delta_idx
        if not 0 <= ref < len(sets):
            raise BitstreamError("short-term RPS predicts from a set that does not exist")
        entries = used = 0
        for _ in range(sets[ref][0] + 1):
            used_by_curr = r.flag()
            use_delta = True if used_by_curr else r.flag()
            entries += use_delta
            used += used_by_curr
        return entries, used
    negative, positive = r.ue(), r.ue()
    used = 0
    for _ in range(negative + positive):
        r.ue()  # delta_poc_sX_minus1
        used += r.flag()
    return negative + positive, used


def parse_hevc_sps(nal: bytes) -> HevcSps:
    r = BitReader(unescape(nal[2:])[0])
    r.u(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = r.u(3)
    r.u(1)
    _skip_profile_tier_level(r, max_sub_layers_minus1)
    sps_id = r.ue()
    chroma_format_idc = r.ue()
    separate = r.flag() if chroma_format_idc == 3 else False
    width, height = r.ue(), r.ue()
    if r.flag():  # conformance_window_flag
        for _ in range(4):
            r.ue()
    r.ue()  # bit_depth_luma_minus8
    r.ue()  # bit_depth_chroma_minus8
    log2_max_poc_lsb = r.ue() + 4
    ordering_all = r.flag()
    for _ in range(0 if ordering_all else max_sub_layers_minus1, max_sub_layers_minus1 + 1):
        r.ue()
        r.ue()
        r.ue()
    min_cb_log2 = r.ue() + 3
    ctb_log2 = min_cb_log2 + r.ue()
    r.ue()  # log2_min_luma_transform_block_size_minus2
    r.ue()  # log2_diff_max_min_luma_transform_block_size
    r.ue()  # max_transform_hierarchy_depth_inter
    r.ue()  # max_transform_hierarchy_depth_intra
    if r.flag() and r.flag():  # scaling_list_enabled_flag, sps_scaling_list_data_present_flag
        _skip_scaling_list_data(r)
    r.u(1)  # amp_enabled_flag
    sao = r.flag()
    if r.flag():  # pcm_enabled_flag
        r.u(8)
        r.ue()
        r.ue()
        r.u(1)
    count = r.ue()
    rps: list[tuple[int, int]] = []
    for i in range(count):
        rps.append(_st_ref_pic_set(r, i, count, rps))
    long_term = r.flag()
    lt_used: list[bool] = []
    if long_term:
        for _ in range(r.ue()):
            r.u(log2_max_poc_lsb)
            lt_used.append(r.flag())
    temporal_mvp = r.flag()
    ctb = 1 << ctb_log2
    return HevcSps(
        sps_id=sps_id,
        chroma_array_type=0 if separate else chroma_format_idc,
        separate_colour_plane=separate,
        log2_max_poc_lsb=log2_max_poc_lsb,
        pic_size_in_ctbs=((width + ctb - 1) // ctb) * ((height + ctb - 1) // ctb),
        sample_adaptive_offset=sao,
        short_term_rps=tuple(rps),
        long_term_refs_present=long_term,
        num_long_term_ref_pics_sps=len(lt_used),
        long_term_used=tuple(lt_used),
        temporal_mvp=temporal_mvp,
    )


def parse_hevc_pps(nal: bytes) -> HevcPps:
    r = BitReader(unescape(nal[2:])[0])
    pps_id, sps_id = r.ue(), r.ue()
    dependent = r.flag()
    output_flag = r.flag()
    extra_bits = r.u(3)
    r.u(1)  # sign_data_hiding_enabled_flag
    cabac_init = r.flag()
    l0, l1 = r.ue() + 1, r.ue() + 1
    r.se()  # init_qp_minus26
    r.u(1)  # constrained_intra_pred_flag
    transform_skip = r.flag()
    if r.flag():  # cu_qp_delta_enabled_flag
        r.ue()
    r.se()  # pps_cb_qp_offset
    r.se()  # pps_cr_qp_offset
    chroma_offsets = r.flag()
    weighted_pred, weighted_bipred = r.flag(), r.flag()
    r.u(1)  # transquant_bypass_enabled_flag
    tiles, wavefront = r.flag(), r.flag()
    if tiles:
        columns, rows = r.ue(), r.ue()
        if not r.flag():  # uniform_spacing_flag
            for _ in range(columns + rows):
                r.ue()
        r.u(1)  # loop_filter_across_tiles_enabled_flag
    across_slices = r.flag()
    override_enabled = disabled = False
    if r.flag():  # deblocking_filter_control_present_flag
        override_enabled = r.flag()
        disabled = r.flag()
        if not disabled:
            r.se()
            r.se()
    if r.flag():  # pps_scaling_list_data_present_flag
        _skip_scaling_list_data(r)
    lists_modification = r.flag()
    r.ue()  # log2_parallel_merge_level_minus2
    header_extension = r.flag()
    chroma_qp_offset_list = False
    if r.flag():  # pps_extension_present_flag
        range_extension = r.flag()
        if r.u(3):  # multilayer, 3d, scc extensions change the slice header further
            raise InputError("HEVC multilayer/3D/SCC extensions are not supported for encryption")
        r.u(4)
        if range_extension:
            if transform_skip:
                r.ue()
            r.u(1)  # cross_component_prediction_enabled_flag
            chroma_qp_offset_list = r.flag()
    return HevcPps(
        pps_id=pps_id, sps_id=sps_id, dependent_slice_segments=dependent,
        output_flag_present=output_flag, num_extra_slice_header_bits=extra_bits,
        cabac_init_present=cabac_init, num_ref_idx_l0_default=l0, num_ref_idx_l1_default=l1,
        slice_chroma_qp_offsets_present=chroma_offsets, weighted_pred=weighted_pred,
        weighted_bipred=weighted_bipred, tiles_or_wavefront=tiles or wavefront,
        loop_filter_across_slices=across_slices, deblocking_override_enabled=override_enabled,
        deblocking_disabled=disabled, lists_modification_present=lists_modification,
        slice_header_extension_present=header_extension,
        chroma_qp_offset_list_enabled=chroma_qp_offset_list,
    )


@dataclass
class HevcParameterSets:
    """SPS/PPS by id, from hvcC and then from in-band units (hev1) in decode order."""

    sps: dict[int, HevcSps]
    pps: dict[int, HevcPps]

    def update(self, kind: int, nal: bytes) -> None:
        if kind == HEVC_SPS:
            sps = parse_hevc_sps(nal)
            self.sps[sps.sps_id] = sps
        elif kind == HEVC_PPS:
            pps = parse_hevc_pps(nal)
            self.pps[pps.pps_id] = pps


def hevc_parameter_sets(hvcc: bytes) -> tuple[int, HevcParameterSets]:
    """NAL length prefix size and parameter sets of an HEVCDecoderConfigurationRecord
    (ISO/IEC 14496-15 §8.3.3.1)."""
    prefix = (hvcc[21] & 0x03) + 1
    sets = HevcParameterSets({}, {})
    pos = 23
    for _ in range(hvcc[22]):
        kind = hvcc[pos] & 0x3F
        count = int.from_bytes(hvcc[pos + 1 : pos + 3], "big")
        pos += 3
        for _ in range(count):
            size = int.from_bytes(hvcc[pos : pos + 2], "big")
            sets.update(kind, hvcc[pos + 2 : pos + 2 + size])
            pos += 2 + size
    return prefix, sets


def hevc_slice_header_size(nal: bytes | memoryview, sets: HevcParameterSets) -> int:
    """Bytes from the start of a slice segment NAL unit (2-byte header included) to its slice
    data, in escaped bytes as stored; the header ends with byte_alignment() (§7.3.2.12)."""
    try:
        return _header_size(nal, sets, 320)
    except BitstreamError:
        if len(nal) <= 322:
            raise
        return _header_size(nal, sets, len(nal))


def _header_size(nal: bytes | memoryview, sets: HevcParameterSets, limit: int) -> int:
    kind = (nal[0] >> 1) & 0x3F
    rbsp, removed = unescape(nal[2 : 2 + limit])
    r = BitReader(rbsp)
    first_slice = r.flag()
    if 16 <= kind <= 23:
        r.u(1)  # no_output_of_prior_pics_flag
    pps = sets.pps.get(r.ue())
    if pps is None or pps.sps_id not in sets.sps:
        raise BitstreamError("slice refers to a parameter set that was never sent")
    sps = sets.sps[pps.sps_id]
    dependent = False
    if not first_slice:
        if pps.dependent_slice_segments:
            dependent = r.flag()
        r.u(_ceil_log2(sps.pic_size_in_ctbs))  # slice_segment_address
    if not dependent:
        _independent_header(r, kind, sps, pps)
    if pps.tiles_or_wavefront:
        entry_points = r.ue()
        if entry_points:
            r.u((r.ue() + 1) * entry_points)  # offset_len_minus1, entry_point_offset_minus1
    if pps.slice_header_extension_present:
        r.u(8 * r.ue())
    r.u(1)  # alignment_bit_equal_to_one, then zero bits to the byte boundary
    return 2 + escaped_length((r.position + 7) // 8, removed)


def _independent_header(r: BitReader, kind: int, sps: HevcSps, pps: HevcPps) -> None:
    r.u(pps.num_extra_slice_header_bits)
    slice_type = r.ue()
    if pps.output_flag_present:
        r.u(1)
    if sps.separate_colour_plane:
        r.u(2)
    temporal_mvp = False
    pics_used = 0
    if kind not in (_IDR_W_RADL, _IDR_N_LP):
        r.u(sps.log2_max_poc_lsb)  # slice_pic_order_cnt_lsb
        count = len(sps.short_term_rps)
        if not r.flag():  # short_term_ref_pic_set_sps_flag
            pics_used = _st_ref_pic_set(r, count, count, list(sps.short_term_rps))[1]
        else:
            index = r.u(_ceil_log2(count)) if count > 1 else 0
            if index >= count:
                raise BitstreamError("short_term_ref_pic_set_idx out of range")
            pics_used = sps.short_term_rps[index][1]
        if sps.long_term_refs_present:
            lt_sps = r.ue() if sps.num_long_term_ref_pics_sps > 0 else 0
            lt_pics = r.ue()
            for i in range(lt_sps + lt_pics):
                if i < lt_sps:
                    index = (
                        r.u(_ceil_log2(sps.num_long_term_ref_pics_sps))
                        if sps.num_long_term_ref_pics_sps > 1 else 0
                    )
                    pics_used += sps.long_term_used[index]
                else:
                    r.u(sps.log2_max_poc_lsb)
                    pics_used += r.flag()
                if r.flag():  # delta_poc_msb_present_flag
                    r.ue()
        if sps.temporal_mvp:
            temporal_mvp = r.flag()
    sao_luma = sao_chroma = False
    if sps.sample_adaptive_offset:
        sao_luma = r.flag()
        if sps.chroma_array_type:
            sao_chroma = r.flag()
    if slice_type in (_P, _B):
        l0, l1 = pps.num_ref_idx_l0_default, pps.num_ref_idx_l1_default
        if r.flag():  # num_ref_idx_active_override_flag
            l0 = r.ue() + 1
            if slice_type == _B:
                l1 = r.ue() + 1
        if pps.lists_modification_present and pics_used > 1:
            bits = _ceil_log2(pics_used)
            if r.flag():
                r.u(bits * l0)
            if slice_type == _B and r.flag():
                r.u(bits * l1)
        if slice_type == _B:
            r.u(1)  # mvd_l1_zero_flag
        if pps.cabac_init_present:
            r.u(1)
        if temporal_mvp:
            from_l0 = r.flag() if slice_type == _B else True
            if (from_l0 and l0 > 1) or (not from_l0 and l1 > 1):
                r.ue()  # collocated_ref_idx
        if (pps.weighted_pred and slice_type == _P) or (pps.weighted_bipred and slice_type == _B):
            _skip_pred_weight_table(r, sps.chroma_array_type, l0, l1 if slice_type == _B else 0)
        r.ue()  # five_minus_max_num_merge_cand
    r.se()  # slice_qp_delta
    if pps.slice_chroma_qp_offsets_present:
        r.se()
        r.se()
    if pps.chroma_qp_offset_list_enabled:
        r.u(1)  # cu_chroma_qp_offset_enabled_flag
    deblocking_disabled = pps.deblocking_disabled
    if pps.deblocking_override_enabled and r.flag():  # deblocking_filter_override_flag
        deblocking_disabled = r.flag()
        if not deblocking_disabled:
            r.se()
            r.se()
    if pps.loop_filter_across_slices and (sao_luma or sao_chroma or not deblocking_disabled):
        r.u(1)


def _skip_pred_weight_table(r: BitReader, chroma_array_type: int, l0: int, l1: int) -> None:
    """§7.3.6.3: luma flags, then chroma flags, then the weights, per list (single layer: every
    reference picture has another POC, so every flag is present)."""
    r.ue()  # luma_log2_weight_denom
    if chroma_array_type:
        r.se()  # delta_chroma_log2_weight_denom
    for count in (l0, l1):
        if not count:
            continue
        luma = [r.flag() for _ in range(count)]
        chroma = [r.flag() for _ in range(count)] if chroma_array_type else [False] * count
        for has_luma, has_chroma in zip(luma, chroma, strict=True):
            if has_luma:
                r.se()
                r.se()
            if has_chroma:
                for _ in range(4):
                    r.se()
