"""HEVC (H.265) bitstream headers in pure Python: NAL unit types, ``hvcC`` reading, the format
fields of a sequence parameter set, and the options x265 writes into its SEI.

Used by the HEVC smart cut (:mod:`videojobs_worker.cut.hevcsmart`) to decide whether a piece encoded
with x265 can be joined to a stream-copied part of the source: with parameter sets equal to the
source's (one set in ``hvcC``, the source's ``hvc1`` sample entry kept), or else with each
piece carrying its own VPS/SPS/PPS in-band at its IRAP picture (``hev1``), which needs the
pieces to agree on the picture format (:func:`format_differences`).

Reference: ITU-T H.265 (08/2021) 7.3.1.2 (NAL unit header), 7.3.2.2 (SPS), 7.3.3 (profile, tier
and level); ISO/IEC 14496-15 8.3.3.1 (``HEVCDecoderConfigurationRecord``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from videojobs_worker.h264bits import BitReader, BitstreamError, nal_units, unescape

__all__ = [
    "BitstreamError",
    "HvcC",
    "SpsFormat",
    "format_differences",
    "is_clean_random_access",
    "nal_type",
    "nal_units",
    "parameter_sets",
    "parse_hvcc",
    "parse_sps_format",
    "x265_options",
]

NAL_BLA_W_LP = 16
NAL_BLA_W_RADL = 17
NAL_BLA_N_LP = 18
NAL_IDR_W_RADL = 19
NAL_IDR_N_LP = 20
NAL_CRA = 21
NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34
NAL_EOS = 36
PARAMETER_SET_TYPES = (NAL_VPS, NAL_SPS, NAL_PPS)
_X265_SEI = re.compile(rb"x265 \(build \d+\).*? options: ([ -~]+)")


def nal_type(unit: bytes) -> int:
    """The type of an HEVC NAL unit (6 bits after the forbidden-zero bit)."""
    if len(unit) < 2:
        raise BitstreamError("NAL unit shorter than its header")
    return (unit[0] >> 1) & 0x3F


def first_vcl_type(units: Iterable[bytes]) -> int | None:
    """The type of the first slice NAL unit (0..31) among ``units``."""
    return next((t for t in (nal_type(u) for u in units if len(u) >= 2) if t < 32), None)


def is_clean_random_access(units: Sequence[bytes]) -> bool:
    """True when the picture is an IDR or BLA: it starts a coded video sequence on its own
    (POC reset, nothing before it referred to), wherever it is placed in a stream. A CRA does
    so only at the start of a stream or after an end-of-sequence NAL unit, so it is not."""
    kind = first_vcl_type(units)
    return kind is not None and NAL_BLA_W_LP <= kind <= NAL_IDR_N_LP


@dataclass(frozen=True)
class HvcC:
    """An ``hvcC`` record: its NAL length size and its parameter-set NAL units by type."""

    length_size: int
    units: tuple[tuple[int, tuple[bytes, ...]], ...]
    """(NAL type, units) per array, in record order."""

    def of_type(self, kind: int) -> tuple[bytes, ...]:
        return tuple(u for t, units in self.units if t == kind for u in units)


def parse_hvcc(data: bytes) -> HvcC:
    """Parse the payload of an ``hvcC`` box."""
    if len(data) < 23 or data[0] != 1:
        raise BitstreamError("not an hvcC record (version 1)")
    length_size = (data[21] & 3) + 1
    pos = 23
    arrays: list[tuple[int, tuple[bytes, ...]]] = []
    try:
        for _ in range(data[22]):
            kind = data[pos] & 0x3F
            count = int.from_bytes(data[pos + 1 : pos + 3], "big")
            pos += 3
            units = []
            for _ in range(count):
                n = int.from_bytes(data[pos : pos + 2], "big")
                units.append(bytes(data[pos + 2 : pos + 2 + n]))
                pos += 2 + n
            arrays.append((kind, tuple(units)))
    except IndexError as exc:
        raise BitstreamError("hvcC record truncated") from exc
    if pos > len(data) or any(len(u) < 2 for _, units in arrays for u in units):
        raise BitstreamError("hvcC record truncated")
    return HvcC(length_size, tuple(arrays))


def parameter_sets(units: Iterable[bytes]) -> tuple[bytes, ...]:
    """The VPS, SPS and PPS NAL units among ``units``, in order."""
    return tuple(u for u in units if len(u) >= 2 and nal_type(u) in PARAMETER_SET_TYPES)


@dataclass(frozen=True)
class SpsFormat:
    """The fields of an SPS that fix the decoded picture format."""

    sps_id: int
    profile_idc: int
    tier: int
    level_idc: int
    chroma_format_idc: int
    width: int
    height: int
    conformance_window: tuple[int, int, int, int]
    bit_depth_luma: int
    bit_depth_chroma: int


def _skip_profile_tier_level(r: BitReader, max_sub_layers_minus1: int) -> tuple[int, int, int]:
    """Read ``profile_tier_level(1, max_sub_layers_minus1)``: (profile_idc, tier, level_idc)."""
    r.u(2)  # general_profile_space
    tier = r.u(1)
    profile = r.u(5)
    r.u(32)  # general_profile_compatibility_flags
    r.u(4)  # progressive, interlaced, non-packed, frame-only constraint flags
    r.u(32)
    r.u(12)  # 43 reserved/constraint bits and general_inbld_flag (44 bits)
    level = r.u(8)
    present = [(r.flag(), r.flag()) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1 > 0:
        for _ in range(max_sub_layers_minus1, 8):
            r.u(2)
    for profile_present, level_present in present:
        if profile_present:
            r.u(32)
            r.u(32)
            r.u(24)  # 88 bits of sub-layer profile
        if level_present:
            r.u(8)
    return profile, tier, level


def parse_sps_format(nal: bytes) -> SpsFormat:
    """Parse the start of an SPS NAL unit (2-byte header included) up to the bit depths."""
    if nal_type(nal) != NAL_SPS:
        raise BitstreamError("not an HEVC SPS NAL unit")
    r = BitReader(unescape(nal[2:]))
    r.u(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = r.u(3)
    r.u(1)  # sps_temporal_id_nesting_flag
    profile, tier, level = _skip_profile_tier_level(r, max_sub_layers_minus1)
    sps_id = r.ue()
    chroma = r.ue()
    if chroma == 3:
        r.flag()  # separate_colour_plane_flag
    width, height = r.ue(), r.ue()
    window = (r.ue(), r.ue(), r.ue(), r.ue()) if r.flag() else (0, 0, 0, 0)
    luma, chroma_bits = r.ue() + 8, r.ue() + 8
    return SpsFormat(sps_id, profile, tier, level, chroma, width, height, window, luma, chroma_bits)


def format_differences(source: SpsFormat, piece: SpsFormat) -> list[str]:
    """Fields where ``piece``'s pictures would differ in format from ``source``'s (pure; empty:
    a decoder sees one picture format across the join). A lower or equal level is fine."""
    out = []
    for name in (
        "profile_idc",
        "chroma_format_idc",
        "width",
        "height",
        "conformance_window",
        "bit_depth_luma",
        "bit_depth_chroma",
    ):
        a, b = getattr(source, name), getattr(piece, name)
        if a != b:
            out.append(f"SPS {name}: {a!r} vs {b!r}")
    if (piece.tier, piece.level_idc) > (source.tier, source.level_idc):
        out.append(f"SPS level: {source.level_idc} vs {piece.level_idc}")
    return out


def x265_options(data: bytes) -> dict[str, str]:
    """The options x265 wrote into its user-data SEI (``key=value``; a bare ``name`` is ``"1"``
    and ``no-name`` is ``name: "0"``); empty when ``data`` holds no such SEI."""
    match = _X265_SEI.search(data)
    if not match:
        return {}
    options: dict[str, str] = {}
    for item in match.group(1).decode("ascii", "replace").split(" "):
        key, sep, value = item.partition("=")
        if not key:
            continue
        if sep:
            options[key] = value
        elif key.startswith("no-"):
            options[key[3:]] = "0"
        else:
            options[key] = "1"
    return options


def sample_units(sample: bytes, length_size: int = 4) -> list[bytes]:
    """The NAL units of a length-prefixed (MP4) sample."""
    return nal_units(sample, length_size)


def _ratio(value: object) -> Fraction | None:
    try:
        return Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return None


def x265_hdr_params(side_data: list[dict]) -> list[str]:
    """x265 options (``master-display``, ``max-cll``) repeating a frame's HDR10 side data as
    ffprobe reports it (``Mastering display metadata``, ``Content light level metadata``), so a
    re-encoded piece carries the same SEI messages as the source (pure). Chromaticities are in
    units of 0.00002, luminances of 0.0001 cd/m² (H.265 D.3.28); absent or partial data gives
    nothing."""
    params: list[str] = []
    for item in side_data:
        kind = item.get("side_data_type")
        if kind == "Mastering display metadata":
            keys = ("green", "blue", "red", "white_point")
            xy = [(_ratio(item.get(f"{k}_x")), _ratio(item.get(f"{k}_y"))) for k in keys]
            lum = (_ratio(item.get("max_luminance")), _ratio(item.get("min_luminance")))
            if any(v is None for pair in xy for v in pair) or None in lum:
                continue
            g, b, r, wp = (f"({round(x * 50000)},{round(y * 50000)})" for x, y in xy)  # type: ignore[operator]
            high, low = (round(v * 10000) for v in lum)  # type: ignore[operator]
            params.append(f"master-display=G{g}B{b}R{r}WP{wp}L({high},{low})")
        elif kind == "Content light level metadata":
            content, average = item.get("max_content"), item.get("max_average")
            if content is not None and average is not None:
                params.append(f"max-cll={int(content)},{int(average)}")
    return params
