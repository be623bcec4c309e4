"""H.264 bitstream headers in pure Python: SPS/PPS parsing, ``avcC`` reading and writing.

Used by the smart cut to decide *structurally* whether a re-encoded piece can be joined to a
copied part of the source: two parameter sets are interchangeable when every field that shapes
decoding is equal (see :func:`decode_fields`), whatever their byte layout.

Reference: ITU-T H.264 (08/2021) 7.3.2.1.1 (SPS), 7.3.2.2 (PPS), E.1.1 (VUI), ISO/IEC 14496-15
5.3.3.1 (``AVCDecoderConfigurationRecord``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8

_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


class BitstreamError(ValueError):
    """A header that cannot be parsed (truncated or using features not handled here)."""


def unescape(nal: bytes) -> bytes:
    """The RBSP of a NAL unit: emulation-prevention bytes (``00 00 03``) removed."""
    out = bytearray()
    zeros = 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class BitReader:
    """MSB-first bit reader with Exp-Golomb codes."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.pos = 0

    @property
    def bits_left(self) -> int:
        return len(self._data) * 8 - self.pos

    def u(self, n: int) -> int:
        if n > self.bits_left:
            raise BitstreamError("header truncated")
        value = 0
        for _ in range(n):
            byte = self._data[self.pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def flag(self) -> bool:
        return bool(self.u(1))

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise BitstreamError("Exp-Golomb code too long")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k % 2 else -(k // 2)

    def more_rbsp_data(self) -> bool:
        """True while data other than the RBSP stop bit (and zero padding) remains."""
        remaining = self.bits_left
        if remaining <= 0:
            return False
        data = self._data.rstrip(b"\x00")
        if not data:
            return False
        last = data[-1]
        trailing = (last & -last).bit_length()  # position of the stop bit, 1..8
        stop_pos = len(data) * 8 - trailing
        return self.pos < stop_pos


def _skip_scaling_list(r: BitReader, size: int) -> list[int]:
    last, nxt = 8, 8
    values = []
    for _ in range(size):
        if nxt != 0:
            nxt = (last + r.se() + 256) % 256
        value = last if nxt == 0 else nxt
        values.append(value)
        last = value
    return values


def _scaling_matrix(r: BitReader, count: int) -> list[tuple[int, ...]]:
    lists: list[tuple[int, ...]] = []
    for i in range(count):
        if r.flag():
            lists.append(tuple(_skip_scaling_list(r, 16 if i < 6 else 64)))
        else:
            lists.append(())
    return lists


def _hrd(r: BitReader) -> dict[str, Any]:
    cpb_cnt = r.ue() + 1
    out: dict[str, Any] = {"bit_rate_scale": r.u(4), "cpb_size_scale": r.u(4), "cpb": []}
    for _ in range(cpb_cnt):
        out["cpb"].append((r.ue(), r.ue(), r.flag()))
    out["delays"] = (r.u(5), r.u(5), r.u(5), r.u(5))
    return out


@dataclass(frozen=True)
class Sps:
    """The fields of a sequence parameter set."""

    sps_id: int
    profile_idc: int
    constraint_flags: int
    level_idc: int
    fields: dict[str, Any] = field(compare=False)
    """Every parsed field by its name in the standard (VUI fields prefixed ``vui_``)."""


@dataclass(frozen=True)
class Pps:
    """The fields of a picture parameter set."""

    pps_id: int
    sps_id: int
    fields: dict[str, Any] = field(compare=False)


def parse_sps(nal: bytes) -> Sps:
    """Parse an SPS NAL unit (header byte included)."""
    if not nal or nal[0] & 0x1F != NAL_SPS:
        raise BitstreamError("not an SPS NAL unit")
    r = BitReader(unescape(nal[1:]))
    f: dict[str, Any] = {}
    profile = r.u(8)
    constraints = r.u(8)
    level = r.u(8)
    sps_id = r.ue()
    f["chroma_format_idc"] = 1
    f["bit_depth_luma"] = 8
    f["bit_depth_chroma"] = 8
    if profile in _HIGH_PROFILES:
        f["chroma_format_idc"] = r.ue()
        if f["chroma_format_idc"] == 3:
            f["separate_colour_plane_flag"] = r.flag()
        f["bit_depth_luma"] = r.ue() + 8
        f["bit_depth_chroma"] = r.ue() + 8
        f["qpprime_y_zero_transform_bypass_flag"] = r.flag()
        if r.flag():
            f["seq_scaling_lists"] = tuple(
                _scaling_matrix(r, 8 if f["chroma_format_idc"] != 3 else 12)
            )
    f["log2_max_frame_num"] = r.ue() + 4
    f["pic_order_cnt_type"] = r.ue()
    if f["pic_order_cnt_type"] == 0:
        f["log2_max_pic_order_cnt_lsb"] = r.ue() + 4
    elif f["pic_order_cnt_type"] == 1:
        f["delta_pic_order_always_zero_flag"] = r.flag()
        f["offset_for_non_ref_pic"] = r.se()
        f["offset_for_top_to_bottom_field"] = r.se()
        f["offset_for_ref_frame"] = tuple(r.se() for _ in range(r.ue()))
    f["max_num_ref_frames"] = r.ue()
    f["gaps_in_frame_num_value_allowed_flag"] = r.flag()
    f["pic_width_in_mbs"] = r.ue() + 1
    f["pic_height_in_map_units"] = r.ue() + 1
    f["frame_mbs_only_flag"] = r.flag()
    if not f["frame_mbs_only_flag"]:
        f["mb_adaptive_frame_field_flag"] = r.flag()
    f["direct_8x8_inference_flag"] = r.flag()
    f["frame_cropping"] = (r.ue(), r.ue(), r.ue(), r.ue()) if r.flag() else (0, 0, 0, 0)
    if r.flag():
        _parse_vui(r, f)
    return Sps(sps_id, profile, constraints, level, f)


def _parse_vui(r: BitReader, f: dict[str, Any]) -> None:
    if r.flag():
        idc = r.u(8)
        f["vui_aspect_ratio"] = (idc, r.u(16), r.u(16)) if idc == 255 else (idc,)
    if r.flag():
        f["vui_overscan_appropriate"] = r.flag()
    if r.flag():
        f["vui_video_format"] = r.u(3)
        f["vui_full_range"] = r.flag()
        if r.flag():
            f["vui_colour"] = (r.u(8), r.u(8), r.u(8))
    if r.flag():
        f["vui_chroma_loc"] = (r.ue(), r.ue())
    if r.flag():
        f["vui_timing"] = (r.u(32), r.u(32), r.flag())
    nal_hrd, vcl_hrd = r.flag(), False
    if nal_hrd:
        f["vui_nal_hrd"] = _hrd(r)
    vcl_hrd = r.flag()
    if vcl_hrd:
        f["vui_vcl_hrd"] = _hrd(r)
    if nal_hrd or vcl_hrd:
        f["vui_low_delay_hrd_flag"] = r.flag()
    f["vui_pic_struct_present_flag"] = r.flag()
    if r.flag():
        f["vui_motion_vectors_over_pic_boundaries_flag"] = r.flag()
        f["vui_max_bytes_per_pic_denom"] = r.ue()
        f["vui_max_bits_per_mb_denom"] = r.ue()
        f["vui_log2_max_mv_length"] = (r.ue(), r.ue())
        f["max_num_reorder_frames"] = r.ue()
        f["max_dec_frame_buffering"] = r.ue()


def parse_pps(nal: bytes, sps: Sps | None = None) -> Pps:
    """Parse a PPS NAL unit. ``sps`` (the one it refers to) is needed only for a PPS that
    carries scaling lists for 4:4:4 content; without it 4:2:0/4:2:2 is assumed."""
    if not nal or nal[0] & 0x1F != NAL_PPS:
        raise BitstreamError("not a PPS NAL unit")
    r = BitReader(unescape(nal[1:]))
    f: dict[str, Any] = {}
    pps_id = r.ue()
    sps_id = r.ue()
    f["entropy_coding_mode_flag"] = r.flag()
    f["bottom_field_pic_order_in_frame_present_flag"] = r.flag()
    f["num_slice_groups"] = r.ue() + 1
    if f["num_slice_groups"] > 1:
        raise BitstreamError("PPS with slice groups (FMO) is not supported")
    f["num_ref_idx_l0_default_active"] = r.ue() + 1
    f["num_ref_idx_l1_default_active"] = r.ue() + 1
    f["weighted_pred_flag"] = r.flag()
    f["weighted_bipred_idc"] = r.u(2)
    f["pic_init_qp"] = r.se() + 26
    f["pic_init_qs"] = r.se() + 26
    f["chroma_qp_index_offset"] = r.se()
    f["deblocking_filter_control_present_flag"] = r.flag()
    f["constrained_intra_pred_flag"] = r.flag()
    f["redundant_pic_cnt_present_flag"] = r.flag()
    f["transform_8x8_mode_flag"] = False
    f["second_chroma_qp_index_offset"] = f["chroma_qp_index_offset"]
    if r.more_rbsp_data():
        f["transform_8x8_mode_flag"] = r.flag()
        if r.flag():
            chroma444 = sps is not None and sps.fields.get("chroma_format_idc") == 3
            count = 6 + (2 if not chroma444 else 6) * int(f["transform_8x8_mode_flag"])
            f["pic_scaling_lists"] = tuple(_scaling_matrix(r, count))
        f["second_chroma_qp_index_offset"] = r.se()
    return Pps(pps_id, sps_id, f)


# VUI fields that do not change how slices decode (display hints and buffering models).
_NON_DECODING = {
    "vui_aspect_ratio",
    "vui_overscan_appropriate",
    "vui_video_format",
    "vui_chroma_loc",
    "vui_timing",
    "vui_nal_hrd",
    "vui_vcl_hrd",
    "vui_low_delay_hrd_flag",
    "vui_pic_struct_present_flag",
    "vui_motion_vectors_over_pic_boundaries_flag",
    "vui_max_bytes_per_pic_denom",
    "vui_max_bits_per_mb_denom",
    "vui_log2_max_mv_length",
}


def decode_fields(unit: Sps | Pps) -> dict[str, Any]:
    """The fields of a parameter set that shape decoding or output (ids included).

    Display hints that a player takes from the first SPS (aspect ratio, timing, HRD) are left
    out; colour (range, primaries) and the reorder/DPB limits are kept because they change what
    is shown or when.
    """
    out = {k: v for k, v in unit.fields.items() if k not in _NON_DECODING}
    if isinstance(unit, Sps):
        out.update(
            sps_id=unit.sps_id,
            profile_idc=unit.profile_idc,
            level_idc=unit.level_idc,
        )
    else:
        out.update(pps_id=unit.pps_id, sps_id=unit.sps_id)
    return out


@dataclass(frozen=True)
class ParameterSets:
    """The SPS and PPS of a stream, parsed."""

    sps: tuple[Sps, ...]
    pps: tuple[Pps, ...]
    raw_sps: tuple[bytes, ...] = ()
    raw_pps: tuple[bytes, ...] = ()


def parse_parameter_sets(units: Iterable[bytes]) -> ParameterSets:
    """Split and parse SPS/PPS NAL units (other NAL types are ignored)."""
    raw_sps: list[bytes] = []
    raw_pps: list[bytes] = []
    for unit in units:
        if not unit:
            continue
        kind = unit[0] & 0x1F
        if kind == NAL_SPS:
            raw_sps.append(unit)
        elif kind == NAL_PPS:
            raw_pps.append(unit)
    sps = tuple(parse_sps(u) for u in raw_sps)
    by_id = {s.sps_id: s for s in sps}
    pps = tuple(parse_pps(u, by_id.get(_pps_sps_id(u))) for u in raw_pps)
    return ParameterSets(sps, pps, tuple(raw_sps), tuple(raw_pps))


def _pps_sps_id(nal: bytes) -> int:
    r = BitReader(unescape(nal[1:]))
    r.ue()
    return r.ue()


def differences(a: ParameterSets, b: ParameterSets) -> list[str]:
    """Field-level differences that make ``b`` unable to stand in for ``a`` (empty: the same
    decoder state). Each entry names the parameter set and the field."""
    out: list[str] = []
    if len(a.sps) != len(b.sps) or len(a.pps) != len(b.pps):
        return [f"{len(a.sps)} SPS/{len(a.pps)} PPS vs {len(b.sps)} SPS/{len(b.pps)} PPS"]
    pairs: list[tuple[str, Sps | Pps, Sps | Pps]] = [
        ("SPS", x, y) for x, y in zip(a.sps, b.sps, strict=True)
    ]
    pairs += [("PPS", x, y) for x, y in zip(a.pps, b.pps, strict=True)]
    for kind, x, y in pairs:
        fx, fy = decode_fields(x), decode_fields(y)
        for key in sorted(set(fx) | set(fy)):
            if fx.get(key) != fy.get(key):
                out.append(f"{kind} {key}: {fx.get(key)!r} vs {fy.get(key)!r}")
    return out


# ---- avcC (AVCDecoderConfigurationRecord) ----


@dataclass(frozen=True)
class AvcC:
    """An ``avcC`` record: the stream's parameter sets and NAL length size."""

    profile_idc: int
    constraint_flags: int
    level_idc: int
    length_size: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    ext: bytes = b""
    """Anything after the PPS list (the High-profile chroma/bit-depth extension), verbatim."""


def parse_avcc(data: bytes) -> AvcC:
    """Parse the payload of an ``avcC`` box."""
    if len(data) < 7 or data[0] != 1:
        raise BitstreamError("not an avcC record (version 1)")
    pos = 6
    sps: list[bytes] = []
    pps: list[bytes] = []
    try:
        for _ in range(data[5] & 0x1F):
            n = int.from_bytes(data[pos : pos + 2], "big")
            sps.append(bytes(data[pos + 2 : pos + 2 + n]))
            pos += 2 + n
        count = data[pos]
        pos += 1
        for _ in range(count):
            n = int.from_bytes(data[pos : pos + 2], "big")
            pps.append(bytes(data[pos + 2 : pos + 2 + n]))
            pos += 2 + n
    except IndexError as exc:
        raise BitstreamError("avcC record truncated") from exc
    if pos > len(data) or any(len(u) == 0 for u in (*sps, *pps)):
        raise BitstreamError("avcC record truncated")
    return AvcC(data[1], data[2], data[3], (data[4] & 3) + 1, tuple(sps), tuple(pps), data[pos:])


def build_avcc(record: AvcC) -> bytes:
    """Serialise an ``avcC`` payload (the inverse of :func:`parse_avcc`)."""
    if len(record.sps) > 31 or len(record.pps) > 255:
        raise BitstreamError("too many parameter sets for avcC")
    out = bytearray(
        [1, record.profile_idc, record.constraint_flags, record.level_idc]
        + [0xFC | (record.length_size - 1), 0xE0 | len(record.sps)]
    )
    for unit in record.sps:
        out += len(unit).to_bytes(2, "big") + unit
    out.append(len(record.pps))
    for unit in record.pps:
        out += len(unit).to_bytes(2, "big") + unit
    return bytes(out + record.ext)


def merge_avcc(first: AvcC, other: AvcC) -> AvcC:
    """One ``avcC`` carrying the parameter sets of both (ids must not collide with different
    content); the profile/level fields are the highest of the two."""
    sps = list(first.sps)
    pps = list(first.pps)
    ids = {parse_sps(u).sps_id: u for u in sps}
    for unit in other.sps:
        sid = parse_sps(unit).sps_id
        if sid in ids and ids[sid] != unit:
            raise BitstreamError(f"SPS id {sid} used by two different parameter sets")
        if sid not in ids:
            ids[sid] = unit
            sps.append(unit)
    pids = {_pps_id(u): u for u in pps}
    for unit in other.pps:
        pid = _pps_id(unit)
        if pid in pids and pids[pid] != unit:
            raise BitstreamError(f"PPS id {pid} used by two different parameter sets")
        if pid not in pids:
            pids[pid] = unit
            pps.append(unit)
    return AvcC(
        max(first.profile_idc, other.profile_idc),
        first.constraint_flags & other.constraint_flags,
        max(first.level_idc, other.level_idc),
        first.length_size,
        tuple(sps),
        tuple(pps),
        first.ext,
    )


def _pps_id(nal: bytes) -> int:
    return BitReader(unescape(nal[1:])).ue()


def nal_units(sample: bytes, length_size: int = 4) -> list[bytes]:
    """The NAL units of a length-prefixed (MP4) sample, up to the first empty or cut-off one."""
    out = []
    pos = 0
    while pos + length_size <= len(sample):
        n = int.from_bytes(sample[pos : pos + length_size], "big")
        pos += length_size
        if n == 0 or pos + n > len(sample):
            break
        out.append(sample[pos : pos + n])
        pos += n
    return out


def nal_types(sample: bytes, length_size: int = 4) -> list[int]:
    """NAL unit types of a length-prefixed (MP4) sample."""
    return [unit[0] & 0x1F for unit in nal_units(sample, length_size)]


def annexb_nal_types(data: bytes) -> list[int]:
    """NAL unit types of an Annex B byte stream, in order."""
    out = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0 and i + 3 < len(data):
        out.append(data[i + 3] & 0x1F)
        i = data.find(b"\x00\x00\x01", i + 3)
    return out


def first_vcl_type(types: Sequence[int]) -> int | None:
    """The first slice NAL type (1..5) in ``types``: 5 means the picture is an IDR."""
    return next((t for t in types if 1 <= t <= 5), None)
