"""avcC rewriting and index moving (pure on synthetic boxes, then on a real ffmpeg MP4)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.mediakit import make_video, run_ffmpeg
from videojobs_worker import h264bits as hb
from videojobs_worker import mp4edit
from videojobs_worker.cut.paramsets import unused_parameter_set_id
from videojobs_worker.cut.x264 import x264_match_reason
from videojobs_worker.mp4boxes import read_moov

SPS_ID3 = bytes.fromhex("6764000d22cd94141fb0110000030001000003003c0f142996")
PPS_ID3 = bytes.fromhex("68212be24b22c0")


def box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def synthetic_moov(avcc: bytes, offsets: list[int]) -> bytes:
    entry = box(b"avc1", bytes(78) + box(b"avcC", avcc) + box(b"pasp", bytes(8)))
    stsd = box(b"stsd", bytes(4) + (1).to_bytes(4, "big") + entry)
    stco = box(
        b"stco",
        bytes(4)
        + len(offsets).to_bytes(4, "big")
        + b"".join(o.to_bytes(4, "big") for o in offsets),
    )
    hdlr = box(b"hdlr", bytes(8) + b"vide" + bytes(12))
    minf = box(b"minf", box(b"stbl", stsd + stco))
    trak = box(b"trak", box(b"mdia", hdlr + minf))
    return box(b"moov", box(b"mvhd", bytes(100)) + trak)


def test_replace_avcc_fixes_every_enclosing_size() -> None:
    moov = synthetic_moov(b"\x01old", [100, 200])
    new = mp4edit.replace_avcc(moov, b"\x01a much longer record")
    assert mp4edit.read_avcc(new) == b"\x01a much longer record"
    assert int.from_bytes(new[:4], "big") == len(new) == len(moov) + 17
    # The boxes still parse end to end: the pasp after avcC is found where it now is.
    chain, start, end = mp4edit.find_avcc(new)
    assert new[end + 4 : end + 8] == b"pasp" and len(chain) == 7
    with pytest.raises(hb.BitstreamError):
        mp4edit.read_avcc(box(b"moov", box(b"mvhd", bytes(100))))


def test_shift_chunk_offsets() -> None:
    moov = synthetic_moov(b"\x01x", [100, 200])
    shifted = mp4edit.shift_chunk_offsets(moov, 50)
    at = shifted.index(b"stco") + 12
    assert [int.from_bytes(shifted[at + 4 * i : at + 4 * i + 4], "big") for i in (0, 1)] == [
        150,
        250,
    ]
    with pytest.raises(hb.BitstreamError):
        mp4edit.shift_chunk_offsets(moov, -150)


def test_ids_and_x264_match() -> None:
    sets = hb.parse_parameter_sets(
        [
            bytes.fromhex("6764000dacd94141fb0110000003001000000303c0f1429960"),
            bytes.fromhex("68ebe24b22c0"),
        ]
    )
    assert unused_parameter_set_id(sets) == 1
    assert x264_match_reason({}) == "not encoded by x264"
    assert x264_match_reason({"rc": "abr"}) == "x264 abr mode, not CRF"
    assert x264_match_reason({"rc": "crf", "interlaced": "0"}) is None


def frame_md5s(path: Path) -> list[str]:
    out = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:v",
            "-f",
            "framemd5",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [
        line.rsplit(",", 1)[-1].strip() for line in out.splitlines() if not line.startswith("#")
    ]


@pytest.mark.media
def test_rewrite_mp4_moves_the_index_and_keeps_every_frame(tmp_path: Path) -> None:
    src = make_video(tmp_path / "src.mp4", duration=2, preset="veryfast")
    plain = tmp_path / "plain.mp4"  # moov at the end, as a concat join writes it
    run_ffmpeg(["-i", str(src), "-map", "0", "-c", "copy", "-f", "mp4", str(plain)])
    record = hb.parse_avcc(mp4edit.read_avcc(read_moov(plain)))
    merged = hb.merge_avcc(record, hb.AvcC(100, 0, 13, 4, (SPS_ID3,), (PPS_ID3,)))
    out = tmp_path / "out.mp4"
    mp4edit.rewrite_mp4(plain, out, hb.build_avcc(merged))
    head = out.read_bytes()[:64]
    assert head[4:8] == b"ftyp" and b"moov" in head  # the index is up front
    assert hb.parse_avcc(mp4edit.read_avcc(read_moov(out))) == merged
    assert frame_md5s(out) == frame_md5s(src)
    audio = [
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(p), "-map", "0:a", "-c", "copy", "-f", "data", "-"],
            capture_output=True,
            check=True,
        ).stdout
        for p in (src, out)
    ]
    assert hashlib.sha256(audio[0]).digest() == hashlib.sha256(audio[1]).digest()
