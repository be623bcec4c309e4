"""Pure tests of the H.264 header parser and the smart cut's decisions built on it."""

from __future__ import annotations

import pytest

from videojobs.models import Quality
from videojobs_worker import h264bits as hb
from videojobs_worker.cut.frames import has_leading_pictures
from videojobs_worker.cut.x264 import (
    same_ids_affordable,
    x264_chroma_qp_lowering,
    x264_params_like,
)
from videojobs_worker.probe import Packet

# x264 preset medium, 320x240, High profile level 1.3 (sps-id 0), and the same with sps-id=3.
SPS = bytes.fromhex("6764000dacd94141fb0110000003001000000303c0f1429960")
PPS = bytes.fromhex("68ebe24b22c0")  # chroma_qp_index_offset -2
PPS_M4 = bytes.fromhex("68ebe244c84c")  # the same with -4 (x264 given -2 under psy-rd)
SPS_ID3 = bytes.fromhex("6764000d22cd94141fb0110000030001000003003c0f142996")
PPS_ID3 = bytes.fromhex("68212be24b22c0")
AVCC = bytes.fromhex(
    "0164000dffe100196764000dacd94141fb0110000003001000000303c0f142996001000668ebe24b22c0fdf8f800"
)


def test_exp_golomb_and_unescape() -> None:
    r = hb.BitReader(bytes([0b10100110, 0b01000000]))  # 1 010 011 00100 0...
    assert [r.ue(), r.ue(), r.ue(), r.se()] == [0, 1, 2, 2]  # codeNum 3 -> +2
    assert hb.unescape(b"\x00\x00\x03\x01\x00\x00\x03") == b"\x00\x00\x01\x00\x00"
    with pytest.raises(hb.BitstreamError):
        hb.BitReader(b"\x00").ue()


def test_se_mapping() -> None:
    # codeNum k -> (-1)^(k+1) * ceil(k/2): 0, 1, -1, 2, -2
    codes = ["1", "010", "011", "00100", "00101"]
    bits = "".join(codes)
    bits += "0" * (-len(bits) % 8)
    r = hb.BitReader(int(bits, 2).to_bytes(len(bits) // 8, "big"))
    assert [r.se() for _ in codes] == [0, 1, -1, 2, -2]


def test_parse_sps_fields() -> None:
    sps = hb.parse_sps(SPS)
    assert (sps.profile_idc, sps.level_idc, sps.sps_id) == (100, 13, 0)
    f = sps.fields
    assert f["chroma_format_idc"] == 1 and f["bit_depth_luma"] == 8
    assert (f["pic_width_in_mbs"], f["pic_height_in_map_units"]) == (20, 15)  # 320x240
    assert f["frame_mbs_only_flag"] and f["max_num_ref_frames"] == 4
    assert f["vui_timing"] == (1, 60, False)  # 30 fps
    assert f["max_dec_frame_buffering"] == 4
    assert f["max_num_reorder_frames"] == 2  # medium: 3 B-frames with pyramid


def test_parse_pps_fields() -> None:
    pps = hb.parse_pps(PPS)
    f = pps.fields
    assert (pps.pps_id, pps.sps_id) == (0, 0)
    assert f["entropy_coding_mode_flag"] and f["transform_8x8_mode_flag"]
    assert f["chroma_qp_index_offset"] == -2 == f["second_chroma_qp_index_offset"]
    assert f["weighted_bipred_idc"] == 2 and f["weighted_pred_flag"] is True  # weightp=2
    assert hb.parse_pps(PPS_M4).fields["chroma_qp_index_offset"] == -4
    with pytest.raises(hb.BitstreamError):
        hb.parse_pps(SPS)


def test_differences_are_structural() -> None:
    a = hb.parse_parameter_sets([SPS, PPS])
    assert hb.differences(a, hb.parse_parameter_sets([SPS, PPS])) == []
    diff = hb.differences(a, hb.parse_parameter_sets([SPS, PPS_M4]))
    assert diff == [
        "PPS chroma_qp_index_offset: -2 vs -4",
        "PPS second_chroma_qp_index_offset: -2 vs -4",
    ]
    other_id = hb.differences(a, hb.parse_parameter_sets([SPS_ID3, PPS_ID3]))
    assert "SPS sps_id: 0 vs 3" in other_id and "PPS pps_id: 0 vs 3" in other_id
    # Only the ids differ: the same decoding parameters under another id.
    assert all("_id" in d for d in other_id)


def test_avcc_roundtrip_and_merge() -> None:
    record = hb.parse_avcc(AVCC)
    assert record.sps == (SPS,) and record.pps == (PPS,) and record.length_size == 4
    assert record.ext == bytes.fromhex("fdf8f800")
    assert hb.build_avcc(record) == AVCC
    merged = hb.merge_avcc(record, hb.AvcC(100, 0, 13, 4, (SPS_ID3,), (PPS_ID3,)))
    assert merged.sps == (SPS, SPS_ID3) and merged.pps == (PPS, PPS_ID3)
    again = hb.parse_avcc(hb.build_avcc(merged))
    assert again == merged
    with pytest.raises(hb.BitstreamError, match="SPS id 0"):
        hb.merge_avcc(record, hb.AvcC(100, 0, 31, 4, (SPS[:3] + b"\x1f" + SPS[4:],), (PPS,)))
    with pytest.raises(hb.BitstreamError):
        hb.parse_avcc(AVCC[:20])


def test_nal_types() -> None:
    sample = b"\x00\x00\x00\x02\x09\x10" + b"\x00\x00\x00\x03\x65\x88\x84"
    assert hb.nal_types(sample) == [9, 5]
    assert hb.first_vcl_type(hb.nal_types(sample)) == hb.NAL_IDR
    stream = b"\x00\x00\x00\x01\x67ab\x00\x00\x01\x68c\x00\x00\x01\x06d\x00\x00\x01\x41e"
    assert hb.annexb_nal_types(stream) == [7, 8, 6, 1]
    assert hb.first_vcl_type([7, 8, 6]) is None


@pytest.mark.parametrize(
    ("options", "lowering"),
    [
        ({"subme": "7", "psy": "1", "psy_rd": "1.00:0.00", "trellis": "1"}, 2),  # medium
        ({"subme": "2", "psy": "1", "psy_rd": "1.00:0.00", "trellis": "0"}, 0),  # veryfast
        ({"subme": "9", "psy": "1", "psy_rd": "1.00:0.15", "trellis": "2"}, 3),  # slower, tune
        ({"subme": "9", "psy": "0", "psy_rd": "1.00:0.15", "trellis": "2"}, 0),
        ({"subme": "7", "psy": "1", "psy_rd": "0.20:0.00", "trellis": "1"}, 1),
    ],
)
def test_x264_chroma_qp_lowering(options: dict[str, str], lowering: int) -> None:
    assert x264_chroma_qp_lowering(options) == lowering


def test_x264_params_restore_the_pps_chroma_offset() -> None:
    medium = {"subme": "7", "psy": "1", "psy_rd": "1.00:0.00", "trellis": "1"}
    params = x264_params_like({**medium, "chroma_qp_offset": "-2"}, 13, -2)
    assert "chroma-qp-offset=0" in params.split(":")  # x264 lowers 0 to the source's -2
    params = x264_params_like({**medium, "chroma_qp_offset": "-2"}, None)
    assert "chroma-qp-offset=0" in params.split(":")


def test_leading_pictures() -> None:
    # Closed GOP: I P B B; open GOP: an I followed (in decode order) by Bs shown before it.
    closed = [Packet(0, -2, True), Packet(3, -1, False), Packet(1, 0, False), Packet(2, 1, False)]
    assert not has_leading_pictures(closed, 0)
    open_gop = [Packet(9, 6, True), Packet(7, 7, False), Packet(8, 8, False)]
    assert has_leading_pictures(open_gop, 0)


def test_same_ids_only_when_the_source_settings_are_not_slower() -> None:
    assert same_ids_affordable({"subme": "2"}, Quality(preset="veryfast"))
    assert not same_ids_affordable({"subme": "7"}, Quality(preset="veryfast"))
    assert same_ids_affordable({"subme": "7"}, Quality(preset="medium"))
    assert not same_ids_affordable({}, Quality())
