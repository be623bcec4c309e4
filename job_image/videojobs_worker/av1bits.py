"""AV1 sequence headers in pure Python: OBU splitting, sequence header parsing, ``av1C``.

Used by the smart cut to decide *structurally* whether a re-encoded AV1 head can be joined to
a copied part of the source: the two sequence headers must agree on every field that shapes
decoding (:data:`DISPLAY_FIELDS` lists the ones that may differ: timing and decoder-model hints,
levels), whatever their byte layout.

Reference: AV1 Bitstream & Decoding Process Specification (2019) 5.3 (OBU header), 5.5
(sequence header OBU), 4.10.3 (leb128), 4.10.7 (uvlc); AV1 Codec ISO Media File Format Binding
2.3 (``AV1CodecConfigurationRecord``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from videojobs_worker.h264bits import BitReader, BitstreamError

OBU_SEQUENCE_HEADER = 1
OBU_TEMPORAL_DELIMITER = 2
OBU_FRAME_HEADER = 3
OBU_FRAME = 6

DISPLAY_FIELDS = frozenset(
    {
        "timing_info_present_flag",
        "timing_info",
        "decoder_model_info_present_flag",
        "decoder_model_info",
        "initial_display_delay_present_flag",
        "operating_points",
    }
)
"""Fields that only describe timing, buffering and capability (levels): they do not change how
a frame is decoded, so a head may differ from the source there."""


@dataclass(frozen=True)
class Obu:
    type: int
    payload: bytes
    temporal_id: int = 0
    spatial_id: int = 0


def leb128(data: bytes, pos: int) -> tuple[int, int]:
    """Decode an unsigned LEB128 at ``pos``: (value, position after it)."""
    value = 0
    for i in range(8):
        if pos + i >= len(data):
            raise BitstreamError("leb128 truncated")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise BitstreamError("leb128 longer than 8 bytes")


def split_obus(data: bytes) -> list[Obu]:
    """The OBUs of a temporal unit or ``configOBUs`` (low-overhead format: every OBU but the
    last must carry its size)."""
    obus = []
    pos = 0
    while pos < len(data):
        header = data[pos]
        if header & 0x80:
            raise BitstreamError("OBU forbidden bit set")
        obu_type = (header >> 3) & 0xF
        extension, has_size = bool(header & 0x04), bool(header & 0x02)
        pos += 1
        temporal = spatial = 0
        if extension:
            if pos >= len(data):
                raise BitstreamError("OBU extension truncated")
            temporal, spatial = data[pos] >> 5, (data[pos] >> 3) & 3
            pos += 1
        if has_size:
            size, pos = leb128(data, pos)
        else:
            size = len(data) - pos
        if pos + size > len(data):
            raise BitstreamError("OBU truncated")
        obus.append(Obu(obu_type, data[pos : pos + size], temporal, spatial))
        pos += size
    return obus


def _uvlc(r: BitReader) -> int:
    zeros = 0
    while not r.u(1):
        zeros += 1
        if zeros >= 32:
            return (1 << 32) - 1
    return (1 << zeros) - 1 + r.u(zeros)


@dataclass(frozen=True)
class SequenceHeader:
    fields: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]

    @property
    def bit_depth(self) -> int:
        return int(self.fields["bit_depth"])

    def pix_fmt(self) -> str | None:
        """The ffmpeg pixel format this header decodes to (None: not a 4:2:0/4:4:4/4:2:2 one)."""
        f = self.fields
        if f["mono_chrome"]:
            return {8: "gray", 10: "gray10le", 12: "gray12le"}.get(self.bit_depth)
        layout = {(1, 1): "420", (1, 0): "422", (0, 0): "444"}.get(
            (f["subsampling_x"], f["subsampling_y"])
        )
        if layout is None:
            return None
        suffix = "" if self.bit_depth == 8 else f"{self.bit_depth}le"
        return f"yuv{layout}p{suffix}"


def _operating_points(r: BitReader, f: dict[str, Any], reduced: int) -> list[tuple[int, ...]]:
    """Timing and decoder model info, then the operating points (spec 5.5.1), into ``f``."""
    ops: list[tuple[int, ...]] = []
    f["timing_info_present_flag"] = 0
    f["timing_info"] = ()
    f["decoder_model_info_present_flag"] = 0
    f["decoder_model_info"] = ()
    f["initial_display_delay_present_flag"] = 0
    if reduced:
        ops.append((0, r.u(5), 0))
    else:
        f["timing_info_present_flag"] = r.u(1)
        buffer_delay_length = 0
        if f["timing_info_present_flag"]:
            units, scale, equal = r.u(32), r.u(32), r.u(1)
            ticks = _uvlc(r) if equal else 0
            f["timing_info"] = (units, scale, equal, ticks)
            f["decoder_model_info_present_flag"] = r.u(1)
            if f["decoder_model_info_present_flag"]:
                buffer_delay_length = r.u(5) + 1
                f["decoder_model_info"] = (buffer_delay_length, r.u(32), r.u(5), r.u(5))
        f["initial_display_delay_present_flag"] = r.u(1)
        for _ in range(r.u(5) + 1):
            idc, level = r.u(12), r.u(5)
            tier = r.u(1) if level > 7 else 0
            op = [idc, level, tier]
            if f["decoder_model_info_present_flag"] and r.u(1):
                op += [r.u(buffer_delay_length), r.u(buffer_delay_length), r.u(1)]
            if f["initial_display_delay_present_flag"] and r.u(1):
                op += [r.u(4)]
            ops.append(tuple(op))
    return ops


def _coding_tools(r: BitReader, f: dict[str, Any], reduced: int) -> None:
    """The inter coding tools, screen content and order hint fields (spec 5.5.1), into ``f``."""
    tools: tuple[str, ...] = (
        "enable_interintra_compound",
        "enable_masked_compound",
        "enable_warped_motion",
        "enable_dual_filter",
        "enable_order_hint",
        "enable_jnt_comp",
        "enable_ref_frame_mvs",
    )
    for name in tools:
        f[name] = 0
    f["seq_force_screen_content_tools"] = 2
    f["seq_force_integer_mv"] = 2
    f["order_hint_bits"] = 0
    if not reduced:
        for name in tools[:5]:
            f[name] = r.u(1)
        if f["enable_order_hint"]:
            f["enable_jnt_comp"], f["enable_ref_frame_mvs"] = r.u(1), r.u(1)
        if not r.u(1):  # seq_choose_screen_content_tools
            f["seq_force_screen_content_tools"] = r.u(1)
        if f["seq_force_screen_content_tools"] > 0:
            if not r.u(1):  # seq_choose_integer_mv
                f["seq_force_integer_mv"] = r.u(1)
        if f["enable_order_hint"]:
            f["order_hint_bits"] = r.u(3) + 1


def parse_sequence_header(payload: bytes) -> SequenceHeader:
    """Parse a sequence header OBU's payload (spec 5.5)."""
    r = BitReader(payload)
    f: dict[str, Any] = {}
    f["seq_profile"] = r.u(3)
    f["still_picture"] = r.u(1)
    f["reduced_still_picture_header"] = reduced = r.u(1)
    ops = _operating_points(r, f, reduced)
    f["operating_points"] = tuple(ops)
    f["operating_point_idc"] = tuple(op[0] for op in ops)
    width_bits, height_bits = r.u(4) + 1, r.u(4) + 1
    f["max_frame_width_minus_1"] = r.u(width_bits)
    f["max_frame_height_minus_1"] = r.u(height_bits)
    f["frame_width_bits"], f["frame_height_bits"] = width_bits, height_bits
    f["frame_id_numbers_present_flag"] = 0 if reduced else r.u(1)
    if f["frame_id_numbers_present_flag"]:
        f["delta_frame_id_length_minus_2"] = r.u(4)
        f["additional_frame_id_length_minus_1"] = r.u(3)
    f["use_128x128_superblock"] = r.u(1)
    f["enable_filter_intra"] = r.u(1)
    f["enable_intra_edge_filter"] = r.u(1)
    _coding_tools(r, f, reduced)
    f["enable_superres"] = r.u(1)
    f["enable_cdef"] = r.u(1)
    f["enable_restoration"] = r.u(1)
    _color_config(r, f)
    f["film_grain_params_present"] = r.u(1)
    return SequenceHeader(f)


def _color_config(r: BitReader, f: dict[str, Any]) -> None:
    profile = f["seq_profile"]
    high = r.u(1)
    if profile == 2 and high:
        f["bit_depth"] = 12 if r.u(1) else 10
    else:
        f["bit_depth"] = 10 if high else 8
    f["mono_chrome"] = 0 if profile == 1 else r.u(1)
    if r.u(1):  # color_description_present_flag
        cp, tc, mc = r.u(8), r.u(8), r.u(8)
    else:
        cp, tc, mc = 2, 2, 2
    f["color_primaries"], f["transfer_characteristics"], f["matrix_coefficients"] = cp, tc, mc
    f["chroma_sample_position"] = 0
    f["separate_uv_delta_q"] = 0
    if f["mono_chrome"]:
        f["color_range"] = r.u(1)
        f["subsampling_x"] = f["subsampling_y"] = 1
        return
    if (cp, tc, mc) == (1, 13, 0):  # sRGB
        f["color_range"], f["subsampling_x"], f["subsampling_y"] = 1, 0, 0
    else:
        f["color_range"] = r.u(1)
        if profile == 0:
            ss = (1, 1)
        elif profile == 1:
            ss = (0, 0)
        elif f["bit_depth"] == 12:
            x = r.u(1)
            ss = (x, r.u(1) if x else 0)
        else:
            ss = (1, 0)
        f["subsampling_x"], f["subsampling_y"] = ss
        if ss == (1, 1):
            f["chroma_sample_position"] = r.u(2)
    f["separate_uv_delta_q"] = r.u(1)


def decode_fields(header: SequenceHeader) -> dict[str, Any]:
    """The fields that shape decoding: everything but :data:`DISPLAY_FIELDS`."""
    return {k: v for k, v in header.fields.items() if k not in DISPLAY_FIELDS}


def differences(a: SequenceHeader, b: SequenceHeader) -> list[str]:
    """``name: a != b`` for every decoding field that differs (empty: interchangeable)."""
    fa, fb = decode_fields(a), decode_fields(b)
    return [
        f"{k}: {fa.get(k)} != {fb.get(k)}"
        for k in sorted(fa.keys() | fb.keys())
        if fa.get(k) != fb.get(k)
    ]


def sequence_header_of(data: bytes) -> SequenceHeader | None:
    """The first sequence header in ``data`` (a temporal unit or ``configOBUs``), or None."""
    for obu in split_obus(data):
        if obu.type == OBU_SEQUENCE_HEADER:
            return parse_sequence_header(obu.payload)
    return None


@dataclass(frozen=True)
class Av1C:
    """``AV1CodecConfigurationRecord``: the summary fields and the ``configOBUs``."""

    seq_profile: int
    seq_level_idx_0: int
    seq_tier_0: int
    high_bitdepth: int
    twelve_bit: int
    monochrome: int
    chroma_subsampling_x: int
    chroma_subsampling_y: int
    chroma_sample_position: int
    config_obus: bytes

    @property
    def sequence_header(self) -> SequenceHeader | None:
        return sequence_header_of(self.config_obus)


def parse_av1c(data: bytes) -> Av1C:
    """Parse the payload of an ``av1C`` box."""
    if len(data) < 4:
        raise BitstreamError("av1C shorter than 4 bytes")
    if data[0] != 0x81:
        raise BitstreamError(f"av1C marker/version byte is {data[0]:#x}, not 0x81")
    b1, b2 = data[1], data[2]
    return Av1C(
        seq_profile=b1 >> 5,
        seq_level_idx_0=b1 & 0x1F,
        seq_tier_0=b2 >> 7,
        high_bitdepth=(b2 >> 6) & 1,
        twelve_bit=(b2 >> 5) & 1,
        monochrome=(b2 >> 4) & 1,
        chroma_subsampling_x=(b2 >> 3) & 1,
        chroma_subsampling_y=(b2 >> 2) & 1,
        chroma_sample_position=b2 & 3,
        config_obus=bytes(data[4:]),
    )
