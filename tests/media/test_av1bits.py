"""Pure tests of the AV1 sequence header parser the smart cut's AV1 join is decided by."""

from __future__ import annotations

import pytest

from videojobs_worker import av1bits as ab
from videojobs_worker.h264bits import BitstreamError

# Sequence header OBUs (with their 2-byte OBU header) as SVT-AV1 1.4 (preset 12) and libaom
# (cpu-used 8) write them for 320x240 8-bit 4:2:0.
SVT = bytes.fromhex("0a0b000000043cffbcfbf90040")
AOM = bytes.fromhex("0a0b000000043cffbcdaf90040")
# A temporal delimiter, then the sequence header, then a frame OBU without a size field.
TEMPORAL_UNIT = bytes.fromhex("1200") + SVT + bytes.fromhex("30aabbcc")


def test_split_obus_and_leb128() -> None:
    assert ab.leb128(bytes([0xE5, 0x8E, 0x26]), 0) == (624485, 3)
    obus = ab.split_obus(TEMPORAL_UNIT)
    assert [o.type for o in obus] == [
        ab.OBU_TEMPORAL_DELIMITER,
        ab.OBU_SEQUENCE_HEADER,
        ab.OBU_FRAME,
    ]
    assert obus[2].payload == bytes.fromhex("aabbcc")
    with pytest.raises(BitstreamError):
        ab.split_obus(bytes.fromhex("0a0b0000"))  # size says 11 bytes, 2 present


def test_svt_sequence_header_fields() -> None:
    header = ab.sequence_header_of(TEMPORAL_UNIT)
    assert header is not None
    f = header.fields
    assert (f["seq_profile"], f["still_picture"], f["reduced_still_picture_header"]) == (0, 0, 0)
    assert (f["max_frame_width_minus_1"], f["max_frame_height_minus_1"]) == (319, 239)
    tools = [
        "enable_filter_intra",
        "enable_intra_edge_filter",
        "enable_interintra_compound",
        "enable_masked_compound",
        "enable_warped_motion",
        "enable_dual_filter",
        "enable_order_hint",
        "enable_jnt_comp",
        "enable_ref_frame_mvs",
        "enable_superres",
        "enable_cdef",
        "enable_restoration",
    ]
    assert [f[t] for t in tools] == [1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1, 0]
    assert f["order_hint_bits"] == 7
    assert (header.bit_depth, header.pix_fmt()) == (8, "yuv420p")
    assert f["film_grain_params_present"] == 0


def test_differences_name_the_tool_flags() -> None:
    svt = ab.sequence_header_of(SVT)
    aom = ab.sequence_header_of(AOM)
    assert svt is not None and aom is not None
    assert ab.differences(svt, svt) == []
    assert ab.differences(svt, aom) == [
        "enable_interintra_compound: 1 != 0",
        "enable_jnt_comp: 1 != 0",
    ]


def test_display_fields_may_differ() -> None:
    svt = ab.sequence_header_of(SVT)
    assert svt is not None
    other = ab.SequenceHeader(
        {**svt.fields, "operating_points": ((0, 8, 0),), "timing_info_present_flag": 1}
    )
    assert ab.differences(svt, other) == []
    bigger = ab.SequenceHeader({**svt.fields, "max_frame_width_minus_1": 639})
    assert ab.differences(svt, bigger) == ["max_frame_width_minus_1: 319 != 639"]


def test_av1c_record() -> None:
    record = ab.parse_av1c(bytes.fromhex("81000c00") + SVT)
    assert (record.seq_profile, record.chroma_subsampling_x, record.chroma_subsampling_y) == (
        0,
        1,
        1,
    )
    assert record.sequence_header is not None
    assert record.sequence_header["enable_cdef"] == 1
    with pytest.raises(BitstreamError):
        ab.parse_av1c(bytes.fromhex("01000c00"))
