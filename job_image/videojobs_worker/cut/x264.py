"""Matching an x264-made source: the ``-x264-params`` that reproduce its parameter sets and frame
order, and whether doing so is possible and affordable (pure)."""

from __future__ import annotations

from videojobs.models import Quality

# x264's subpixel refinement (subme) per preset: a proxy for how slow the source's settings are.
_PRESET_SUBME = {
    "ultrafast": 0,
    "superfast": 1,
    "veryfast": 2,
    "faster": 4,
    "fast": 6,
    "medium": 7,
    "slow": 8,
}


# x264 SEI option -> x264-params key, for the options that shape the SPS/PPS or the frame order.
_X264_HEADER_OPTIONS = {
    "cabac": "cabac",
    "ref": "ref",
    "8x8dct": "8x8dct",
    "bframes": "bframes",
    "b_pyramid": "b-pyramid",
    "weightb": "weightb",
    "weightp": "weightp",
    "direct": "direct",
    "open_gop": "open-gop",
    "chroma_qp_offset": "chroma-qp-offset",
    "constrained_intra": "constrained-intra",
    "interlaced": "interlaced",
    "trellis": "trellis",
    "subme": "subme",
    "psy": "psy",
    "mixed_ref": "mixed-refs",
    "me": "me",
    "me_range": "merange",
    "fast_pskip": "fast-pskip",
    "deadzone": "deadzone-inter",
    "mbtree": "mbtree",
}


_X264_DIRECT = {"0": "none", "1": "spatial", "2": "temporal", "3": "auto"}


def x264_chroma_qp_lowering(options: dict[str, str]) -> int:
    """How much x264 lowers the chroma QP offset it is given, for these options (pure).

    x264 compensates psy-RD (active from subme 6) and psy-trellis (active with trellis) by
    lowering ``chroma_qp_offset`` by 1 (strength < 0.25) or 2 each; its SEI reports the lowered
    value, which is also what the PPS carries. Passing the SEI's value back would lower it again.
    """
    if options.get("psy", "1") == "0":
        return 0
    rd_text, _, trellis_text = options.get("psy_rd", "0:0").partition(":")
    try:
        psy_rd, psy_trellis = float(rd_text or 0), float(trellis_text or 0)
        subme, trellis = int(options.get("subme", "0")), int(options.get("trellis", "0"))
    except ValueError:
        return 0
    lowering = 0
    if subme >= 6 and psy_rd > 0:
        lowering += 1 if psy_rd < 0.25 else 2
    if trellis > 0 and psy_trellis > 0:
        lowering += 1 if psy_trellis < 0.25 else 2
    return lowering


def x264_params_like(
    options: dict[str, str], level: int | None, chroma_qp_offset: int | None = None
) -> str:
    """``-x264-params`` reproducing the header-relevant options of an x264-made source.

    ``chroma_qp_offset`` is the source PPS's ``chroma_qp_index_offset`` (the SEI's value when
    None); x264's own lowering of it (:func:`x264_chroma_qp_lowering`) is added back so that the
    re-encoded PPS carries the same value.
    """
    params = []
    for key, name in _X264_HEADER_OPTIONS.items():
        if key in options:
            value = options[key]
            if key == "chroma_qp_offset":
                final = chroma_qp_offset if chroma_qp_offset is not None else int(value)
                value = str(max(-12, min(12, final + x264_chroma_qp_lowering(options))))
            elif key == "deadzone":
                value = value.split(",")[0]
            elif key == "direct":
                value = _X264_DIRECT.get(value, value)
            params.append(f"{name}={value}")
    deblock = options.get("deblock", "")
    if deblock.startswith("0"):
        params.append("no-deblock=1")
    elif deblock.count(":") == 2:
        _, alpha, beta = deblock.split(":")
        params.append(f"deblock={alpha}\\:{beta}")
    psy_rd = options.get("psy_rd")
    if psy_rd:
        params.append(f"psy-rd={psy_rd.replace(':', chr(92) + ':')}")
    if level:
        params.append(f"level={level / 10:.1f}")
    return ":".join(params)


def same_ids_affordable(options: dict[str, str], quality: Quality) -> bool:
    """True when encoding with the source's x264 settings costs no more than ``quality``'s
    preset (pure): a source made at ``medium`` re-encoded with ``medium``'s analysis is about
    2.5× slower per frame than ``veryfast``, so such heads get their own parameter sets instead."""
    try:
        subme = int(options.get("subme", "99"))
    except ValueError:
        return False
    return subme <= _PRESET_SUBME.get(quality.preset, 7)


def x264_match_reason(options: dict[str, str]) -> str | None:
    """Why the source's x264 settings cannot be reproduced for a same-id join, or None."""
    if not options:
        return "not encoded by x264"
    if options.get("interlaced", "0") != "0":
        return "interlaced"
    if options.get("rc") not in (None, "crf"):
        return f"x264 {options.get('rc')} mode, not CRF"
    return None


def reorder_params(delay: int) -> str:
    """x264 options giving the source's frame reordering delay (pure): the pieces' decode
    timestamps then run on from the copied middle's without overlap (x264's delay is 0 without
    B-frames, 1 with B-frames and 2 with a B-pyramid)."""
    if delay <= 0:
        return ":bframes=0"
    if delay == 1:
        return ":bframes=3:b-pyramid=none"
    return ":bframes=3:b-pyramid=normal"
