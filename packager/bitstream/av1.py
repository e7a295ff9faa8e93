"""AV1 OBUs of ISO-BMFF samples: the sequence header, and where each tile's data lies.

Common Encryption of AV1 protects tile data only (AV1 ISOBMFF binding v1.2.0, "Common
Encryption"): OBU headers and sizes, sequence headers, frame headers (inside a Frame OBU
too) and tile group headers stay clear. Finding the first byte of tile data in a Frame OBU
takes the whole uncompressed frame header (AV1 §5.9), whose length depends on the sequence
header and, for inter frames, on the reference frames' sizes and order hints: so a parser
follows the reference state from sample to sample (§7.20, §7.21), from a sync sample on.
References: AV1 Bitstream & Decoding Process Specification 1.0.0 with Errata 1 (section
numbers below), and the binding's "Codecs Parameter String" for the RFC 6381 value.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from packager.errors import BitstreamError

# §6.2.2 obu_type.
OBU_SEQUENCE_HEADER = 1
OBU_TEMPORAL_DELIMITER = 2
OBU_FRAME_HEADER = 3
OBU_TILE_GROUP = 4
OBU_METADATA = 5
OBU_FRAME = 6
OBU_REDUNDANT_FRAME_HEADER = 7
OBU_TILE_LIST = 8
OBU_PADDING = 15

# §6.8.2 frame_type.
KEY_FRAME, INTER_FRAME, INTRA_ONLY_FRAME, SWITCH_FRAME = 0, 1, 2, 3

NUM_REF_FRAMES = 8
REFS_PER_FRAME = 7
ALL_FRAMES = (1 << NUM_REF_FRAMES) - 1
PRIMARY_REF_NONE = 7
SELECT_SCREEN_CONTENT_TOOLS = 2
SELECT_INTEGER_MV = 2
MAX_SEGMENTS = 8
SEG_LVL_ALT_Q = 0
# §5.9.14: bits, signedness and maximum of each segmentation feature.
_SEG_BITS = (8, 6, 6, 6, 6, 3, 0, 0)
_SEG_SIGNED = (True, True, True, True, True, False, False, False)
_SEG_MAX = (255, 63, 63, 63, 63, 7, 0, 0)
# §6.4.2 colour values with a meaning in the syntax.
CP_BT_709, CP_UNSPECIFIED = 1, 2
TC_UNSPECIFIED, TC_SRGB = 2, 13
MC_IDENTITY, MC_UNSPECIFIED = 0, 2


@dataclass(frozen=True)
class Obu:
    """One OBU of a sample: where its header starts, and its payload."""

    type: int
    offset: int  # of the OBU header
    payload: int  # offset of the payload (after the header and the leb128 size)
    size: int  # payload bytes
    temporal_id: int = 0
    spatial_id: int = 0

    @property
    def end(self) -> int:
        return self.payload + self.size


def read_leb128(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """§4.10.5 leb128(): the value and the offset after it."""
    value = 0
    for i in range(8):
        if pos >= len(data):
            raise BitstreamError("leb128 runs past the end of the data")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            break
    if value > 0xFFFFFFFF:
        raise BitstreamError("leb128 value over 2^32 - 1")
    return value, pos


def iter_obus(data: bytes | memoryview) -> Iterator[Obu]:
    """The OBUs of a sample or of configOBUs (§5.3, Low Overhead Bitstream Format); the last
    one may omit its size and run to the end (AV1 ISOBMFF binding, "AV1 Sample Format")."""
    pos, end = 0, len(data)
    while pos < end:
        header = data[pos]
        if header & 0x80:
            raise BitstreamError(f"OBU at {pos}: forbidden bit set")
        kind = (header >> 3) & 0x0F
        extension = bool(header & 0x04)
        has_size = bool(header & 0x02)
        at = pos + 1
        temporal = spatial = 0
        if extension:
            if at >= end:
                raise BitstreamError(f"OBU at {pos}: extension header past the end")
            temporal, spatial = data[at] >> 5, (data[at] >> 3) & 0x03
            at += 1
        if has_size:
            size, at = read_leb128(data, at)
        else:
            size = end - at
        if at + size > end:
            raise BitstreamError(f"OBU at {pos} of {size} bytes overruns the sample")
        yield Obu(kind, pos, at, size, temporal, spatial)
        pos = at + size


class _Bits:
    """MSB-first bit reader over a byte buffer (§4.10, §8.1), reading byte by byte so a
    header at the start of a large Frame OBU costs only what is read."""

    def __init__(self, data: bytes | memoryview, start: int, end: int) -> None:
        self._data = data
        self.position = start * 8  # in bits, from the start of `data`
        self._end = end * 8

    def u(self, n: int) -> int:
        if self.position + n > self._end:
            raise BitstreamError("AV1 header ends early")
        value = 0
        for _ in range(n):
            byte = self._data[self.position >> 3]
            value = (value << 1) | ((byte >> (7 - (self.position & 7))) & 1)
            self.position += 1
        return value

    def flag(self) -> bool:
        return self.u(1) == 1

    def su(self, n: int) -> int:
        """§4.10.6."""
        value = self.u(n)
        sign = 1 << (n - 1)
        return value - 2 * sign if value & sign else value

    def ns(self, n: int) -> int:
        """§4.10.7: 0..n-1 in floor(log2(n)) or one more bits."""
        w = n.bit_length()
        m = (1 << w) - n
        v = self.u(w - 1)
        return v if v < m else (v << 1) - m + self.u(1)

    def uvlc(self) -> int:
        """§4.10.3."""
        zeros = 0
        while not self.flag():
            zeros += 1
            if zeros >= 32:
                return (1 << 32) - 1
        return self.u(zeros) + (1 << zeros) - 1

    def byte_alignment(self) -> None:
        """§5.3.5: zero bits up to the next byte."""
        if self.position & 7 and self.u(8 - (self.position & 7)):
            raise BitstreamError("AV1 byte_alignment bits are not zero")

    @property
    def byte(self) -> int:
        return self.position >> 3


@dataclass(frozen=True)
class SequenceHeader:
    """What the frame headers' syntax and the codecs string need of a Sequence Header OBU
    (§5.5)."""

    profile: int
    still_picture: bool
    reduced_still_picture_header: bool
    level: int  # seq_level_idx[0]
    tier: int  # seq_tier[0]
    decoder_model_info_present: bool
    equal_picture_interval: bool
    buffer_removal_time_length: int
    frame_presentation_time_length: int
    #: (operating_point_idc, decoder_model_present_for_this_op) of each operating point.
    operating_points: tuple[tuple[int, bool], ...]
    frame_width_bits: int
    frame_height_bits: int
    max_frame_width: int
    max_frame_height: int
    frame_id_numbers_present: bool
    delta_frame_id_length: int
    additional_frame_id_length: int
    use_128x128_superblock: bool
    enable_warped_motion: bool
    enable_order_hint: bool
    enable_ref_frame_mvs: bool
    seq_force_screen_content_tools: int
    seq_force_integer_mv: int
    order_hint_bits: int
    enable_superres: bool
    enable_cdef: bool
    enable_restoration: bool
    bit_depth: int
    mono_chrome: bool
    color_description_present: bool
    color_primaries: int
    transfer_characteristics: int
    matrix_coefficients: int
    color_range: int
    subsampling_x: int
    subsampling_y: int
    chroma_sample_position: int
    separate_uv_delta_q: bool
    film_grain_params_present: bool

    @property
    def num_planes(self) -> int:
        return 1 if self.mono_chrome else 3

    def codec_string(self, fourcc: str = "av01") -> str:
        """The binding's codecs parameter: `av01.P.LLT.DD`, and the optional fields
        (.M.CCC.cp.tc.mc.F, all or none) when the sequence header describes its colours
        (color_description_present_flag): otherwise they would only restate the defaults
        the short form implies. Shaka Packager writes the same (the long form when the
        sample entry has a 'colr' box, which ffmpeg writes exactly when the colours are
        known)."""
        tier = "H" if self.tier else "M"
        short = f"{fourcc}.{self.profile}.{self.level:02d}{tier}.{self.bit_depth:02d}"
        if not self.color_description_present:
            return short
        position = (self.chroma_sample_position
                    if self.subsampling_x and self.subsampling_y else 0)
        return (f"{short}.{int(self.mono_chrome)}.{self.subsampling_x}{self.subsampling_y}"
                f"{position}.{self.color_primaries:02d}.{self.transfer_characteristics:02d}"
                f".{self.matrix_coefficients:02d}.{self.color_range}")


def parse_sequence_header(data: bytes | memoryview, start: int = 0,
                          end: int | None = None) -> SequenceHeader:
    """§5.5.1 sequence_header_obu() from its payload bytes."""
    r = _Bits(data, start, len(data) if end is None else end)
    profile = r.u(3)
    still_picture = r.flag()
    reduced = r.flag()
    decoder_model_info_present = equal_picture_interval = False
    buffer_delay_length = removal_length = presentation_length = 0
    points: list[tuple[int, bool]] = []
    level = tier = 0
    if reduced:
        level = r.u(5)
        points.append((0, False))
    else:
        if r.flag():  # timing_info_present_flag (§5.5.3)
            r.u(32)  # num_units_in_display_tick
            r.u(32)  # time_scale
            equal_picture_interval = r.flag()
            if equal_picture_interval:
                r.uvlc()  # num_ticks_per_picture_minus_1
            decoder_model_info_present = r.flag()
            if decoder_model_info_present:  # §5.5.4
                buffer_delay_length = r.u(5) + 1
                r.u(32)  # num_units_in_decoding_tick
                removal_length = r.u(5) + 1
                presentation_length = r.u(5) + 1
        initial_display_delay_present = r.flag()
        for i in range(r.u(5) + 1):
            idc = r.u(12)
            seq_level = r.u(5)
            seq_tier = r.u(1) if seq_level > 7 else 0
            if i == 0:
                level, tier = seq_level, seq_tier
            model = False
            if decoder_model_info_present:
                model = r.flag()
                if model:  # §5.5.5 operating_parameters_info
                    r.u(buffer_delay_length)
                    r.u(buffer_delay_length)
                    r.u(1)
            if initial_display_delay_present and r.flag():
                r.u(4)
            points.append((idc, model))
    width_bits = r.u(4) + 1
    height_bits = r.u(4) + 1
    max_width = r.u(width_bits) + 1
    max_height = r.u(height_bits) + 1
    frame_ids = False if reduced else r.flag()
    delta_id_length = additional_id_length = 0
    if frame_ids:
        delta_id_length = r.u(4) + 2
        additional_id_length = r.u(3) + 1
    sb128 = r.flag()
    r.u(2)  # enable_filter_intra, enable_intra_edge_filter
    warped = order_hint = ref_mvs = False
    screen_tools, integer_mv, hint_bits = SELECT_SCREEN_CONTENT_TOOLS, SELECT_INTEGER_MV, 0
    if not reduced:
        r.u(2)  # enable_interintra_compound, enable_masked_compound
        warped = r.flag()
        r.u(1)  # enable_dual_filter
        order_hint = r.flag()
        if order_hint:
            r.u(1)  # enable_jnt_comp
            ref_mvs = r.flag()
        screen_tools = SELECT_SCREEN_CONTENT_TOOLS if r.flag() else r.u(1)
        if screen_tools > 0:
            integer_mv = SELECT_INTEGER_MV if r.flag() else r.u(1)
        if order_hint:
            hint_bits = r.u(3) + 1
    superres, cdef, restoration = r.flag(), r.flag(), r.flag()
    # §5.5.2 color_config.
    high_bitdepth = r.flag()
    bit_depth = 8
    if profile == 2 and high_bitdepth:
        bit_depth = 12 if r.flag() else 10
    elif profile <= 2:
        bit_depth = 10 if high_bitdepth else 8
    mono = False if profile == 1 else r.flag()
    described = r.flag()
    cp, tc, mc = (r.u(8), r.u(8), r.u(8)) if described else (
        CP_UNSPECIFIED, TC_UNSPECIFIED, MC_UNSPECIFIED)
    separate_uv = False
    position = 0
    if mono:
        color_range, sx, sy = r.u(1), 1, 1
    elif cp == CP_BT_709 and tc == TC_SRGB and mc == MC_IDENTITY:
        color_range, sx, sy = 1, 0, 0
        separate_uv = r.flag()
    else:
        color_range = r.u(1)
        if profile == 0:
            sx, sy = 1, 1
        elif profile == 1:
            sx, sy = 0, 0
        elif bit_depth == 12:
            sx = r.u(1)
            sy = r.u(1) if sx else 0
        else:
            sx, sy = 1, 0
        if sx and sy:
            position = r.u(2)
        separate_uv = r.flag()
    grain = r.flag()
    return SequenceHeader(
        profile=profile, still_picture=still_picture, reduced_still_picture_header=reduced,
        level=level, tier=tier, decoder_model_info_present=decoder_model_info_present,
        equal_picture_interval=equal_picture_interval,
        buffer_removal_time_length=removal_length,
        frame_presentation_time_length=presentation_length, operating_points=tuple(points),
        frame_width_bits=width_bits, frame_height_bits=height_bits, max_frame_width=max_width,
        max_frame_height=max_height, frame_id_numbers_present=frame_ids,
        delta_frame_id_length=delta_id_length, additional_frame_id_length=additional_id_length,
        use_128x128_superblock=sb128, enable_warped_motion=warped, enable_order_hint=order_hint,
        enable_ref_frame_mvs=ref_mvs, seq_force_screen_content_tools=screen_tools,
        seq_force_integer_mv=integer_mv, order_hint_bits=hint_bits, enable_superres=superres,
        enable_cdef=cdef, enable_restoration=restoration, bit_depth=bit_depth, mono_chrome=mono,
        color_description_present=described, color_primaries=cp, transfer_characteristics=tc,
        matrix_coefficients=mc, color_range=color_range, subsampling_x=sx, subsampling_y=sy,
        chroma_sample_position=position, separate_uv_delta_q=separate_uv,
        film_grain_params_present=grain,
    )


@dataclass(frozen=True)
class Av1Config:
    """An AV1CodecConfigurationRecord (the binding's "AV1 Codec Configuration Box"): its
    fixed fields and configOBUs."""

    profile: int
    level: int
    tier: int
    bit_depth: int
    mono_chrome: bool
    subsampling_x: int
    subsampling_y: int
    chroma_sample_position: int
    config_obus: bytes

    @property
    def sequence_header(self) -> SequenceHeader | None:
        """The Sequence Header OBU of configOBUs (at most one, first when present)."""
        for obu in iter_obus(self.config_obus):
            if obu.type == OBU_SEQUENCE_HEADER:
                return parse_sequence_header(self.config_obus, obu.payload, obu.end)
        return None

    def codec_string(self, fourcc: str = "av01") -> str:
        """From the sequence header when configOBUs carries one (its colours too), else the
        short form from the record's own fields."""
        header = self.sequence_header
        if header is not None:
            return header.codec_string(fourcc)
        tier = "H" if self.tier else "M"
        return f"{fourcc}.{self.profile}.{self.level:02d}{tier}.{self.bit_depth:02d}"


def parse_av1_config(record: bytes) -> Av1Config:
    """The av1C box body (marker 1, version 1, then the record's fields)."""
    if len(record) < 4 or record[0] != 0x81:
        raise BitstreamError("av1C is not an AV1CodecConfigurationRecord version 1")
    b1, b2 = record[1], record[2]
    high, twelve = b2 >> 6 & 1, b2 >> 5 & 1
    return Av1Config(
        profile=b1 >> 5, level=b1 & 0x1F, tier=b2 >> 7,
        bit_depth=12 if twelve else 10 if high else 8, mono_chrome=bool(b2 >> 4 & 1),
        subsampling_x=b2 >> 3 & 1, subsampling_y=b2 >> 2 & 1,
        chroma_sample_position=b2 & 3, config_obus=bytes(record[4:]),
    )


@dataclass
class _Frame:
    """The frame header being parsed (and, for Tile Group OBUs after a Frame Header OBU, the
    tile layout they need); a copy of it is what §7.20 saves of a reference frame for later
    headers to read (sizes, type, order hint, segmentation for load_previous, §7.21)."""

    show_existing_frame: bool = False
    frame_to_show: int = 0
    frame_type: int = KEY_FRAME
    refresh_frame_flags: int = 0
    order_hint: int = 0
    upscaled_width: int = 0
    frame_width: int = 0
    frame_height: int = 0
    render_width: int = 0
    render_height: int = 0
    mi_cols: int = 0
    mi_rows: int = 0
    ref_frame_idx: list[int] = field(default_factory=lambda: [0] * REFS_PER_FRAME)
    tile_cols: int = 1
    tile_rows: int = 1
    tile_cols_log2: int = 0
    tile_rows_log2: int = 0
    tile_size_bytes: int = 4
    base_q_idx: int = 0
    deltas: tuple[int, ...] = (0, 0, 0, 0, 0)  # DeltaQYDc, UDc, UAc, VDc, VAc
    segmentation_enabled: bool = False
    feature_enabled: tuple[tuple[bool, ...], ...] = ()
    feature_data: tuple[tuple[int, ...], ...] = ()


_NO_FEATURES = tuple((False,) * 8 for _ in range(MAX_SEGMENTS))
_NO_DATA = tuple((0,) * 8 for _ in range(MAX_SEGMENTS))


class TileFinder:
    """Finds the decode_tile() byte ranges of each sample of an AV1 track, in decode order.

    Starts from the configOBUs' sequence header (a sample may bring a new one) and must see
    the samples in order from a sync sample: inter frame headers read the saved state of
    their reference frames.
    """

    def __init__(self, config_obus: bytes = b"") -> None:
        self._seq: SequenceHeader | None = None
        self._refs = [_Frame() for _ in range(NUM_REF_FRAMES)]
        self._frame = _Frame()
        self._seen_frame_header = False
        if config_obus:
            self.tiles(config_obus)

    def tiles(self, sample: bytes | memoryview) -> list[tuple[int, int]]:
        """(offset, size) of every tile's data in the sample, in order."""
        out: list[tuple[int, int]] = []
        for obu in iter_obus(sample):
            if obu.type == OBU_SEQUENCE_HEADER:
                self._seq = parse_sequence_header(sample, obu.payload, obu.end)
            elif obu.type in (OBU_FRAME_HEADER, OBU_REDUNDANT_FRAME_HEADER):
                self._frame_header_obu(sample, obu)
            elif obu.type == OBU_FRAME:
                r = self._frame_header_obu(sample, obu)
                r.byte_alignment()
                self._tile_group(sample, r.byte, obu.end, out)
            elif obu.type == OBU_TILE_GROUP:
                self._tile_group(sample, obu.payload, obu.end, out)
            elif obu.type == OBU_TILE_LIST:
                raise BitstreamError("AV1 Tile List OBUs are not allowed in ISO-BMFF samples")
        return out

    # --- §5.9 frame header ------------------------------------------------------------------

    def _frame_header_obu(self, data: bytes | memoryview, obu: Obu) -> _Bits:
        r = _Bits(data, obu.payload, obu.end)
        if self._seen_frame_header:  # frame_header_copy(): identical to the one seen
            if obu.type == OBU_FRAME:
                raise BitstreamError("AV1 Frame OBU after a frame header of the same frame")
            return r
        self._seen_frame_header = True
        self._uncompressed_header(r, obu)
        if self._frame.show_existing_frame:
            self._wrapup()
            self._seen_frame_header = False
        return r

    def _uncompressed_header(self, r: _Bits, obu: Obu) -> None:
        seq = self._seq
        if seq is None:
            raise BitstreamError("AV1 frame header before any sequence header")
        f = _Frame()
        self._frame = f
        id_len = (seq.additional_frame_id_length + seq.delta_frame_id_length
                  if seq.frame_id_numbers_present else 0)
        if seq.reduced_still_picture_header:
            f.frame_type, show_frame, showable, error_resilient = KEY_FRAME, True, False, True
        else:
            f.show_existing_frame = r.flag()
            if f.show_existing_frame:
                f.frame_to_show = r.u(3)
                if seq.decoder_model_info_present and not seq.equal_picture_interval:
                    r.u(seq.frame_presentation_time_length)
                if seq.frame_id_numbers_present:
                    r.u(id_len)  # display_frame_id
                f.frame_type = self._refs[f.frame_to_show].frame_type
                f.refresh_frame_flags = ALL_FRAMES if f.frame_type == KEY_FRAME else 0
                return
            f.frame_type = r.u(2)
            show_frame = r.flag()
            if show_frame and seq.decoder_model_info_present and not seq.equal_picture_interval:
                r.u(seq.frame_presentation_time_length)
            showable = f.frame_type != KEY_FRAME if show_frame else r.flag()
            error_resilient = (True if f.frame_type == SWITCH_FRAME
                               or (f.frame_type == KEY_FRAME and show_frame) else r.flag())
        intra = f.frame_type in (KEY_FRAME, INTRA_ONLY_FRAME)
        if f.frame_type == KEY_FRAME and show_frame:
            for ref in self._refs:
                ref.order_hint = 0
        disable_cdf_update = r.flag()
        screen_tools = (r.u(1) if seq.seq_force_screen_content_tools
                        == SELECT_SCREEN_CONTENT_TOOLS else seq.seq_force_screen_content_tools)
        force_integer_mv = 0
        if screen_tools:
            force_integer_mv = (r.u(1) if seq.seq_force_integer_mv == SELECT_INTEGER_MV
                                else seq.seq_force_integer_mv)
        if intra:
            force_integer_mv = 1
        if seq.frame_id_numbers_present:
            r.u(id_len)  # current_frame_id
        if f.frame_type == SWITCH_FRAME:
            size_override = True
        elif seq.reduced_still_picture_header:
            size_override = False
        else:
            size_override = r.flag()
        f.order_hint = r.u(seq.order_hint_bits)
        primary_ref = PRIMARY_REF_NONE if intra or error_resilient else r.u(3)
        if seq.decoder_model_info_present and r.flag():  # buffer_removal_time_present_flag
            for idc, model in seq.operating_points:
                if model:
                    in_temporal = (idc >> obu.temporal_id) & 1
                    in_spatial = (idc >> (obu.spatial_id + 8)) & 1
                    if idc == 0 or (in_temporal and in_spatial):
                        r.u(seq.buffer_removal_time_length)
        allow_high_precision_mv = allow_intrabc = False
        f.refresh_frame_flags = (ALL_FRAMES if f.frame_type == SWITCH_FRAME
                                 or (f.frame_type == KEY_FRAME and show_frame) else r.u(8))
        if (not intra or f.refresh_frame_flags != ALL_FRAMES) and (
            error_resilient and seq.enable_order_hint
        ):
            for ref in self._refs:
                ref.order_hint = r.u(seq.order_hint_bits)  # ref_order_hint[i]
        if intra:
            self._frame_size(r, size_override)
            self._render_size(r)
            if screen_tools and f.upscaled_width == f.frame_width:
                allow_intrabc = r.flag()
        else:
            short_signaling = False
            if seq.enable_order_hint:
                short_signaling = r.flag()
                if short_signaling:
                    self._set_frame_refs(r.u(3), r.u(3))
            for i in range(REFS_PER_FRAME):
                if not short_signaling:
                    f.ref_frame_idx[i] = r.u(3)
                if seq.frame_id_numbers_present:
                    r.u(seq.delta_frame_id_length)  # delta_frame_id_minus_1
            if size_override and not error_resilient:
                self._frame_size_with_refs(r, size_override)
            else:
                self._frame_size(r, size_override)
                self._render_size(r)
            allow_high_precision_mv = False if force_integer_mv else r.flag()
            if not r.flag():  # is_filter_switchable
                r.u(2)  # interpolation_filter
            r.u(1)  # is_motion_mode_switchable
            if not error_resilient and seq.enable_ref_frame_mvs:
                r.u(1)  # use_ref_frame_mvs
        if not seq.reduced_still_picture_header and not disable_cdf_update:
            r.u(1)  # disable_frame_end_update_cdf
        if primary_ref != PRIMARY_REF_NONE:  # load_previous(): segmentation (§7.21)
            ref = self._refs[f.ref_frame_idx[primary_ref]]
            f.feature_enabled = ref.feature_enabled or _NO_FEATURES
            f.feature_data = ref.feature_data or _NO_DATA
        else:
            f.feature_enabled, f.feature_data = _NO_FEATURES, _NO_DATA
        self._tile_info(r)
        self._quantization_params(r)
        self._segmentation_params(r, primary_ref)
        delta_q_present = r.flag() if f.base_q_idx > 0 else False
        if delta_q_present:
            r.u(2)  # delta_q_res
            if not allow_intrabc and r.flag():  # delta_lf_present
                r.u(3)  # delta_lf_res, delta_lf_multi
        coded_lossless = all(self._qindex(s) == 0 for s in range(MAX_SEGMENTS)) and not any(
            f.deltas)
        all_lossless = coded_lossless and f.frame_width == f.upscaled_width
        self._loop_filter_params(r, coded_lossless or allow_intrabc)
        if not (coded_lossless or allow_intrabc) and seq.enable_cdef:  # §5.9.19
            r.u(2)  # cdef_damping_minus_3
            for _ in range(1 << r.u(2)):
                r.u(6)
                if seq.num_planes > 1:
                    r.u(6)
        if not (all_lossless or allow_intrabc) and seq.enable_restoration:
            self._lr_params(r)
        if not coded_lossless:
            r.u(1)  # tx_mode_select
        reference_select = False if intra else r.flag()
        if self._skip_mode_allowed(intra, reference_select):
            r.u(1)  # skip_mode_present
        if not (intra or error_resilient or not seq.enable_warped_motion):
            r.u(1)  # allow_warped_motion
        r.u(1)  # reduced_tx_set
        if not intra:
            self._global_motion_params(r, allow_high_precision_mv)
        if seq.film_grain_params_present and (show_frame or showable):
            self._film_grain_params(r)

    def _frame_size(self, r: _Bits, override: bool) -> None:
        """§5.9.5, with superres_params (§5.9.8) and compute_image_size (§5.9.9)."""
        seq, f = self._seq, self._frame
        assert seq is not None
        if override:
            f.frame_width = r.u(seq.frame_width_bits) + 1
            f.frame_height = r.u(seq.frame_height_bits) + 1
        else:
            f.frame_width, f.frame_height = seq.max_frame_width, seq.max_frame_height
        self._superres(r)

    def _superres(self, r: _Bits) -> None:
        seq, f = self._seq, self._frame
        assert seq is not None
        f.upscaled_width = f.frame_width
        if seq.enable_superres and r.flag():
            denominator = r.u(3) + 9
            f.frame_width = (f.upscaled_width * 8 + denominator // 2) // denominator
        f.mi_cols = 2 * ((f.frame_width + 7) >> 3)
        f.mi_rows = 2 * ((f.frame_height + 7) >> 3)

    def _render_size(self, r: _Bits) -> None:
        """§5.9.6."""
        f = self._frame
        if r.flag():
            f.render_width, f.render_height = r.u(16) + 1, r.u(16) + 1
        else:
            f.render_width, f.render_height = f.upscaled_width, f.frame_height

    def _frame_size_with_refs(self, r: _Bits, override: bool) -> None:
        """§5.9.7."""
        f = self._frame
        for i in range(REFS_PER_FRAME):
            if r.flag():  # found_ref
                ref = self._refs[f.ref_frame_idx[i]]
                f.upscaled_width, f.frame_width = ref.upscaled_width, ref.upscaled_width
                f.frame_height = ref.frame_height
                f.render_width, f.render_height = ref.render_width, ref.render_height
                self._superres(r)
                return
        self._frame_size(r, override)
        self._render_size(r)

    def _relative_dist(self, a: int, b: int) -> int:
        """§5.9.3 get_relative_dist."""
        seq = self._seq
        assert seq is not None
        if not seq.enable_order_hint:
            return 0
        diff = a - b
        m = 1 << (seq.order_hint_bits - 1)
        return (diff & (m - 1)) - (diff & m)

    def _set_frame_refs(self, last: int, gold: int) -> None:
        """§7.8: the references of frame_refs_short_signaling."""
        seq, f = self._seq, self._frame
        assert seq is not None
        idx = [-1] * REFS_PER_FRAME
        idx[0], idx[3] = last, gold  # LAST_FRAME, GOLDEN_FRAME
        used = [False] * NUM_REF_FRAMES
        used[last] = used[gold] = True
        current = 1 << (seq.order_hint_bits - 1)
        hints = [current + self._relative_dist(ref.order_hint, f.order_hint)
                 for ref in self._refs]
        if hints[last] >= current or hints[gold] >= current:
            raise BitstreamError("AV1 short-signalled reference is not a past frame")

        def pick(backward: bool, latest: bool) -> int:
            best, best_hint = -1, 0
            for i, hint in enumerate(hints):
                if used[i] or (hint >= current) != backward:
                    continue
                if best < 0 or (hint >= best_hint if latest else hint < best_hint):
                    best, best_hint = i, hint
            return best

        for slot, backward, latest in ((6, True, True), (4, True, False), (5, True, False)):
            ref = pick(backward, latest)
            if ref >= 0:
                idx[slot], used[ref] = ref, True
        for slot in (1, 2, 4, 5, 6):  # LAST2, LAST3, BWDREF, ALTREF2, ALTREF
            if idx[slot] < 0:
                ref = pick(False, True)
                if ref >= 0:
                    idx[slot], used[ref] = ref, True
        earliest = min(range(NUM_REF_FRAMES), key=lambda i: (hints[i], i))
        f.ref_frame_idx = [earliest if i < 0 else i for i in idx]

    def _tile_info(self, r: _Bits) -> None:
        """§5.9.15."""
        seq, f = self._seq, self._frame
        assert seq is not None
        shift = 5 if seq.use_128x128_superblock else 4
        sb_cols = (f.mi_cols + (1 << shift) - 1) >> shift
        sb_rows = (f.mi_rows + (1 << shift) - 1) >> shift
        sb_size = shift + 2
        max_width_sb = 4096 >> sb_size
        max_area_sb = (4096 * 2304) >> (2 * sb_size)
        min_log2_cols = _tile_log2(max_width_sb, sb_cols)
        max_log2_cols = _tile_log2(1, min(sb_cols, 64))
        max_log2_rows = _tile_log2(1, min(sb_rows, 64))
        min_log2_tiles = max(min_log2_cols, _tile_log2(max_area_sb, sb_rows * sb_cols))
        if r.flag():  # uniform_tile_spacing_flag
            f.tile_cols_log2 = min_log2_cols
            while f.tile_cols_log2 < max_log2_cols and r.flag():
                f.tile_cols_log2 += 1
            width_sb = (sb_cols + (1 << f.tile_cols_log2) - 1) >> f.tile_cols_log2
            f.tile_cols = -(-sb_cols // width_sb)
            f.tile_rows_log2 = max(min_log2_tiles - f.tile_cols_log2, 0)
            while f.tile_rows_log2 < max_log2_rows and r.flag():
                f.tile_rows_log2 += 1
            height_sb = (sb_rows + (1 << f.tile_rows_log2) - 1) >> f.tile_rows_log2
            f.tile_rows = -(-sb_rows // height_sb)
        else:
            widest = start = cols = 0
            while start < sb_cols:
                size = r.ns(min(sb_cols - start, max_width_sb)) + 1
                widest = max(widest, size)
                start += size
                cols += 1
            f.tile_cols, f.tile_cols_log2 = cols, _tile_log2(1, cols)
            area = (sb_rows * sb_cols) >> (min_log2_tiles + 1) if min_log2_tiles else (
                sb_rows * sb_cols)
            max_height_sb = max(area // widest, 1)
            start = rows = 0
            while start < sb_rows:
                start += r.ns(min(sb_rows - start, max_height_sb)) + 1
                rows += 1
            f.tile_rows, f.tile_rows_log2 = rows, _tile_log2(1, rows)
        if f.tile_cols_log2 or f.tile_rows_log2:
            r.u(f.tile_rows_log2 + f.tile_cols_log2)  # context_update_tile_id
            f.tile_size_bytes = r.u(2) + 1

    def _quantization_params(self, r: _Bits) -> None:
        """§5.9.12 (and §5.9.13 read_delta_q)."""
        seq, f = self._seq, self._frame
        assert seq is not None
        f.base_q_idx = r.u(8)

        def delta_q() -> int:
            return r.su(7) if r.flag() else 0

        ydc = delta_q()
        udc = uac = vdc = vac = 0
        if seq.num_planes > 1:
            diff_uv = r.flag() if seq.separate_uv_delta_q else False
            udc, uac = delta_q(), delta_q()
            vdc, vac = (delta_q(), delta_q()) if diff_uv else (udc, uac)
        f.deltas = (ydc, udc, uac, vdc, vac)
        if r.flag():  # using_qmatrix
            r.u(8)  # qm_y, qm_u
            if seq.separate_uv_delta_q:
                r.u(4)  # qm_v

    def _segmentation_params(self, r: _Bits, primary_ref: int) -> None:
        """§5.9.14."""
        f = self._frame
        f.segmentation_enabled = r.flag()
        if not f.segmentation_enabled:
            f.feature_enabled, f.feature_data = _NO_FEATURES, _NO_DATA
            return
        update = True
        if primary_ref != PRIMARY_REF_NONE:
            if r.flag():  # segmentation_update_map
                r.u(1)  # segmentation_temporal_update
            update = r.flag()
        if not update:
            return
        enabled: list[tuple[bool, ...]] = []
        values: list[tuple[int, ...]] = []
        for _ in range(MAX_SEGMENTS):
            seg_enabled, seg_data = [], []
            for j in range(8):
                on = r.flag()
                value = 0
                if on:
                    limit = _SEG_MAX[j]
                    raw = r.su(1 + _SEG_BITS[j]) if _SEG_SIGNED[j] else r.u(_SEG_BITS[j])
                    value = max(-limit if _SEG_SIGNED[j] else 0, min(limit, raw))
                seg_enabled.append(on)
                seg_data.append(value)
            enabled.append(tuple(seg_enabled))
            values.append(tuple(seg_data))
        f.feature_enabled, f.feature_data = tuple(enabled), tuple(values)

    def _qindex(self, segment: int) -> int:
        """§7.12.2 get_qindex(1, segment)."""
        f = self._frame
        if f.segmentation_enabled and f.feature_enabled[segment][SEG_LVL_ALT_Q]:
            return max(0, min(255, f.base_q_idx + f.feature_data[segment][SEG_LVL_ALT_Q]))
        return f.base_q_idx

    def _loop_filter_params(self, r: _Bits, skip: bool) -> None:
        """§5.9.11."""
        seq = self._seq
        assert seq is not None
        if skip:
            return
        level0, level1 = r.u(6), r.u(6)
        if seq.num_planes > 1 and (level0 or level1):
            r.u(12)  # loop_filter_level[2], [3]
        r.u(3)  # loop_filter_sharpness
        if r.flag() and r.flag():  # loop_filter_delta_enabled, loop_filter_delta_update
            for _ in range(8 + 2):  # ref deltas, then mode deltas
                if r.flag():
                    r.u(7)

    def _lr_params(self, r: _Bits) -> None:
        """§5.9.20."""
        seq = self._seq
        assert seq is not None
        uses_lr = uses_chroma_lr = False
        for plane in range(seq.num_planes):
            if r.u(2):  # lr_type != RESTORE_NONE
                uses_lr = True
                uses_chroma_lr = uses_chroma_lr or plane > 0
        if uses_lr:
            if seq.use_128x128_superblock:
                r.u(1)  # lr_unit_shift
            elif r.flag():  # lr_unit_shift
                r.u(1)  # lr_unit_extra_shift
            if seq.subsampling_x and seq.subsampling_y and uses_chroma_lr:
                r.u(1)  # lr_uv_shift

    def _skip_mode_allowed(self, intra: bool, reference_select: bool) -> bool:
        """§5.9.22: skipModeAllowed, from the references' order hints."""
        seq, f = self._seq, self._frame
        assert seq is not None
        if intra or not reference_select or not seq.enable_order_hint:
            return False
        forward = backward = -1
        forward_hint = backward_hint = 0
        hints = [self._refs[f.ref_frame_idx[i]].order_hint for i in range(REFS_PER_FRAME)]
        for i, hint in enumerate(hints):
            if self._relative_dist(hint, f.order_hint) < 0:
                if forward < 0 or self._relative_dist(hint, forward_hint) > 0:
                    forward, forward_hint = i, hint
            elif self._relative_dist(hint, f.order_hint) > 0 and (
                backward < 0 or self._relative_dist(hint, backward_hint) < 0
            ):
                backward, backward_hint = i, hint
        if forward < 0:
            return False
        if backward >= 0:
            return True
        return any(self._relative_dist(hint, forward_hint) < 0 for hint in hints)

    def _global_motion_params(self, r: _Bits, high_precision: bool) -> None:
        """§5.9.24-§5.9.28: only the bits are needed (the values read with a reference
        take the same number of bits whatever the reference)."""
        for _ in range(REFS_PER_FRAME):
            if not r.flag():  # is_global
                continue
            # is_rot_zoom, else is_translation: ROTZOOM 2, TRANSLATION 1, AFFINE 3
            kind = 2 if r.flag() else 1 if r.flag() else 3
            params = {1: (0, 1), 2: (2, 3, 0, 1), 3: (2, 3, 4, 5, 0, 1)}[kind]
            for idx in params:
                # GM_ABS_TRANS_ONLY_BITS (9, less one without high precision) for a pure
                # translation, else GM_ABS_TRANS_BITS / GM_ABS_ALPHA_BITS (12).
                bits = 9 - (not high_precision) if idx < 2 and kind == 1 else 12
                _skip_subexp(r, 2 * (1 << bits) + 1)

    def _film_grain_params(self, r: _Bits) -> None:
        """§5.9.30."""
        seq, f = self._seq, self._frame
        assert seq is not None
        if not r.flag():  # apply_grain
            return
        r.u(16)  # grain_seed
        update = r.flag() if f.frame_type == INTER_FRAME else True
        if not update:
            r.u(3)  # film_grain_params_ref_idx
            return
        y_points = r.u(4)
        r.u(16 * y_points)
        from_luma = False if seq.mono_chrome else r.flag()
        cb_points = cr_points = 0
        if not (seq.mono_chrome or from_luma or (
                seq.subsampling_x and seq.subsampling_y and y_points == 0)):
            cb_points = r.u(4)
            r.u(16 * cb_points)
            cr_points = r.u(4)
            r.u(16 * cr_points)
        r.u(2)  # grain_scaling_minus_8
        lag = r.u(2)
        luma_positions = 2 * lag * (lag + 1)
        chroma_positions = luma_positions + 1 if y_points else luma_positions
        if y_points:
            r.u(8 * luma_positions)
        if from_luma or cb_points:
            r.u(8 * chroma_positions)
        if from_luma or cr_points:
            r.u(8 * chroma_positions)
        r.u(4)  # ar_coeff_shift_minus_6, grain_scale_shift
        if cb_points:
            r.u(25)
        if cr_points:
            r.u(25)
        r.u(2)  # overlap_flag, clip_restricted_range

    # --- §5.11.1 tile group, §7.4 wrap-up -----------------------------------------------------

    def _tile_group(self, data: bytes | memoryview, start: int, end: int,
                    out: list[tuple[int, int]]) -> None:
        if not self._seen_frame_header:
            raise BitstreamError("AV1 tile group without a frame header")
        f = self._frame
        r = _Bits(data, start, end)
        tiles = f.tile_cols * f.tile_rows
        tg_start, tg_end = 0, tiles - 1
        if tiles > 1 and r.flag():  # tile_start_and_end_present_flag
            bits = f.tile_cols_log2 + f.tile_rows_log2
            tg_start, tg_end = r.u(bits), r.u(bits)
        r.byte_alignment()
        pos = r.byte
        for tile in range(tg_start, tg_end + 1):
            if tile == tg_end:
                size = end - pos
            else:
                size = int.from_bytes(bytes(data[pos : pos + f.tile_size_bytes]), "little") + 1
                pos += f.tile_size_bytes
            if size <= 0 or pos + size > end:
                raise BitstreamError("AV1 tile size overruns its tile group")
            out.append((pos, size))
            pos += size
        if tg_end == tiles - 1:
            self._wrapup()
            self._seen_frame_header = False

    def _wrapup(self) -> None:
        """§7.4 decode_frame_wrapup: a shown existing key frame is loaded (§7.21), then the
        reference frame update (§7.20)."""
        f = self._frame
        if f.show_existing_frame and f.frame_type == KEY_FRAME:
            f = replace(self._refs[f.frame_to_show], refresh_frame_flags=f.refresh_frame_flags)
        for i in range(NUM_REF_FRAMES):
            if (f.refresh_frame_flags >> i) & 1:
                self._refs[i] = replace(f, ref_frame_idx=list(f.ref_frame_idx))


def _tile_log2(block: int, target: int) -> int:
    """§5.9.16: the smallest k with block << k >= target."""
    k = 0
    while (block << k) < target:
        k += 1
    return k


def _skip_subexp(r: _Bits, num_syms: int) -> None:
    """§5.9.28 decode_subexp(numSyms), value discarded."""
    i, mk, k = 0, 0, 3
    while True:
        b2 = k + i - 1 if i else k
        a = 1 << b2
        if num_syms <= mk + 3 * a:
            r.ns(num_syms - mk)
            return
        if not r.flag():  # subexp_more_bits
            r.u(b2)
            return
        i += 1
        mk += a
