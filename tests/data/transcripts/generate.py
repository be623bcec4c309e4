"""Writes the example transcripts in this folder: one script, every format.

    python tests/data/transcripts/generate.py      # needs ffmpeg and pysubs2

Made by a tool where one runs here: ``sample.vtt``, ``sample.ass`` and ``sample.ttml`` by ffmpeg
(5.1) from ``sample.srt``; ``sample.ssa`` by pysubs2. The rest follow their documented schemas
(no speech model or cloud service runs in this repository): whisper.cpp ``-oj``/``-ojf``
(``examples/cli`` of whisper.cpp), OpenAI Whisper, WhisperX and faster-whisper segments, AWS
Transcribe's job output, YouTube's json3/srv3/sbv as yt-dlp saves them, DFXP (TTML's 2006
namespace) and SAMI (Microsoft's SAMI 1.0).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

HERE = Path(__file__).parent

# (start ms, end ms, text): the script every file carries
CUES = [
    (0, 2500, "Welcome to the course."),
    (2500, 6000, "Today we look at pods and services."),
    (6000, 9250, "A pod runs one or more containers."),
    (9250, 12000, "Next up: deployments."),
]


def words(start: int, end: int, text: str) -> list[tuple[int, int, str]]:
    """Words spread evenly over the cue, on 10 ms steps."""
    parts = text.split()
    step = (end - start) // len(parts) // 10 * 10
    return [
        (start + i * step, end if i == len(parts) - 1 else start + (i + 1) * step, w)
        for i, w in enumerate(parts)
    ]


def clock(ms: int, sep: str = ",") -> str:
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def write(name: str, text: str) -> None:
    (HERE / name).write_text(text, encoding="utf-8")


def dump(name: str, data: object) -> None:
    write(name, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def srt() -> None:
    blocks = [f"{i}\n{clock(a)} --> {clock(b)}\n{t}\n" for i, (a, b, t) in enumerate(CUES, start=1)]
    write("sample.srt", "\n".join(blocks))
    for out in ("sample.vtt", "sample.ass", "sample.ttml"):
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-i", str(HERE / "sample.srt"), str(HERE / out)],
            check=True,
        )


def ssa() -> None:
    import pysubs2

    pysubs2.load(str(HERE / "sample.srt")).save(str(HERE / "sample.ssa"), format_="ssa")


def whisper_cpp() -> None:
    def span(a: int, b: int) -> dict[str, object]:
        return {
            "timestamps": {"from": clock(a), "to": clock(b)},
            "offsets": {"from": a, "to": b},
        }

    head = {
        "systeminfo": "AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | SSE3 = 1 | SSSE3 = 1",
        "model": {"type": "base", "multilingual": False, "vocab": 51864, "mels": 80, "ftype": 1},
        "params": {"model": "models/ggml-base.en.bin", "language": "en", "translate": False},
        "result": {"language": "en"},
    }
    plain = [{**span(a, b), "text": " " + t} for a, b, t in CUES]
    dump("sample.whisper-cpp.json", {**head, "transcription": plain})
    full = []
    for a, b, t in CUES:
        tokens = [{"text": "[_BEG_]", **span(a, a), "id": 50363, "p": 0.98, "t_dtw": -1}]
        for i, (wa, wb, w) in enumerate(words(a, b, t)):
            # whisper's tokens are word pieces: a leading space starts a word; the final
            # punctuation is a token of its own
            core, punct = (w[:-1], w[-1]) if w[-1] in ".:," else (w, "")
            tokens.append({"text": " " + core, **span(wa, wb), "id": 100 + i, "p": 0.9})
            if punct:
                tokens.append({"text": punct, **span(wb, wb), "id": 13, "p": 0.95})
        tokens.append({"text": "[_TT_125]", **span(b, b), "id": 50488, "p": 0.5})
        full.append({**span(a, b), "text": " " + t, "tokens": tokens})
    dump("sample.whisper-cpp-full.json", {**head, "transcription": full})


def whisper_family() -> None:
    openai = {
        "text": " " + " ".join(t for _, _, t in CUES),
        "segments": [
            {
                "id": i,
                "seek": 0,
                "start": a / 1000,
                "end": b / 1000,
                "text": " " + t,
                "tokens": [50364, 2000 + i],
                "temperature": 0.0,
                "avg_logprob": -0.25,
                "compression_ratio": 1.2,
                "no_speech_prob": 0.01,
            }
            for i, (a, b, t) in enumerate(CUES)
        ],
        "language": "en",
    }
    dump("sample.whisper.json", openai)
    whisperx_segments = []
    for a, b, t in CUES:
        ws = [
            {"word": w, "start": wa / 1000, "end": wb / 1000, "score": 0.9}
            for wa, wb, w in words(a, b, t)
        ]
        whisperx_segments.append({"start": a / 1000, "end": b / 1000, "text": t, "words": ws})
    word_segments = [w for s in whisperx_segments for w in s["words"]]  # type: ignore[attr-defined]
    dump("sample.whisperx.json", {"segments": whisperx_segments, "word_segments": word_segments})
    # faster-whisper's Segment/Word named tuples as dicts (``[s._asdict() for s in segments]``)
    faster = [
        {
            "id": i + 1,
            "seek": 0,
            "start": a / 1000,
            "end": b / 1000,
            "text": " " + t,
            "tokens": [50364],
            "avg_logprob": -0.2,
            "compression_ratio": 1.3,
            "no_speech_prob": 0.02,
            "words": [
                {"start": wa / 1000, "end": wb / 1000, "word": " " + w, "probability": 0.9}
                for wa, wb, w in words(a, b, t)
            ],
            "temperature": 0.0,
        }
        for i, (a, b, t) in enumerate(CUES)
    ]
    dump("sample.faster-whisper.json", faster)


def aws() -> None:
    items: list[dict[str, object]] = []
    segments = []
    for k, (a, b, t) in enumerate(CUES):
        ids = []
        for wa, wb, w in words(a, b, t):
            core, punct = (w[:-1], w[-1]) if w[-1] in ".:," else (w, "")
            ids.append(len(items))
            items.append(
                {
                    "id": len(items),
                    "type": "pronunciation",
                    "alternatives": [{"confidence": "0.99", "content": core}],
                    "start_time": f"{wa / 1000:.3f}",
                    "end_time": f"{wb / 1000:.3f}",
                }
            )
            if punct:
                ids.append(len(items))
                items.append(
                    {
                        "id": len(items),
                        "type": "punctuation",
                        "alternatives": [{"confidence": "0.0", "content": punct}],
                    }
                )
        segments.append(
            {
                "id": k,
                "transcript": t,
                "start_time": f"{a / 1000:.3f}",
                "end_time": f"{b / 1000:.3f}",
                "items": ids,
            }
        )
    doc = {
        "jobName": "course-intro",
        "accountId": "123456789012",
        "status": "COMPLETED",
        "results": {
            "language_code": "en-US",
            "transcripts": [{"transcript": " ".join(t for _, _, t in CUES)}],
            "items": items,
            "audio_segments": segments,
        },
    }
    dump("sample.aws-transcribe.json", doc)
    # an older job: items only, no audio_segments, no item ids
    old = {
        "jobName": "course-intro",
        "accountId": "123456789012",
        "status": "COMPLETED",
        "results": {
            "transcripts": doc["results"]["transcripts"],  # type: ignore[index]
            "items": [{k: v for k, v in i.items() if k != "id"} for i in items],
        },
    }
    dump("sample.aws-transcribe-items.json", old)


def youtube() -> None:
    events: list[dict[str, object]] = [
        {"tStartMs": 0, "dDurationMs": 12000, "id": 1, "wpWinPosId": 1, "wsWinStyleId": 1}
    ]
    srv3 = ['<?xml version="1.0" encoding="utf-8" ?><timedtext format="3">', "<body>"]
    for a, b, t in CUES:
        ws = words(a, b, t)
        segs = [{"utf8": ws[0][2], "acAsrConf": 0}] + [
            {"utf8": " " + w, "tOffsetMs": wa - a, "acAsrConf": 0} for wa, _wb, w in ws[1:]
        ]
        events.append(
            {"tStartMs": a, "dDurationMs": b - a, "wWinId": 1, "segs": segs},
        )
        events.append(
            {"tStartMs": b, "dDurationMs": 10, "wWinId": 1, "aAppend": 1, "segs": [{"utf8": "\n"}]}
        )
        spans = f'<s ac="0">{ws[0][2]}</s>' + "".join(
            f'<s t="{wa - a}" ac="0"> {w}</s>' for wa, _wb, w in ws[1:]
        )
        srv3.append(f'<p t="{a}" d="{b - a}" w="1">{spans}</p>')
    srv3 += ["</body>", "</timedtext>"]
    dump("sample.json3", {"wireMagic": "pb3", "pens": [{}], "wsWinStyles": [{}], "events": events})
    write("sample.srv3", "\n".join(srv3) + "\n")

    def sbv_time(ms: int) -> str:
        return clock(ms, ".")[1:] if ms < 36_000_000 else clock(ms, ".")

    write(
        "sample.sbv",
        "\n".join(f"{sbv_time(a)},{sbv_time(b)}\n{t}\n" for a, b, t in CUES),
    )


def dfxp() -> None:
    # the first cue in ticks (Netflix-style DFXP), the others in seconds
    ps = "\n".join(
        f'      <p begin="{a * 10_000}t" end="{b * 10_000}t">{t}</p>'
        if i == 0
        else f'      <p begin="{a / 1000:g}s" end="{b / 1000:g}s">{t}</p>'
        for i, (a, b, t) in enumerate(CUES)
    )
    write(
        "sample.dfxp",
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<tt xmlns="http://www.w3.org/2006/10/ttaf1" '
        'xmlns:ttp="http://www.w3.org/2006/10/ttaf1#parameter" ttp:tickRate="10000000" '
        'xml:lang="en">\n'
        "  <head/>\n  <body>\n    <div>\n" + ps + "\n    </div>\n  </body>\n</tt>\n",
    )


def sami() -> None:
    syncs = []
    for a, _b, t in CUES:
        syncs.append(f"<SYNC Start={a}><P Class=ENUSCC>{t}</P></SYNC>")
    syncs.append(f"<SYNC Start={CUES[-1][1]}><P Class=ENUSCC>&nbsp;</P></SYNC>")
    write(
        "sample.smi",
        '<SAMI>\n<HEAD>\n<TITLE>Course intro</TITLE>\n<STYLE TYPE="text/css">\n<!--\n'
        "P { font-family: Arial; }\n.ENUSCC { Name: English; lang: en-US; }\n-->\n</STYLE>\n"
        "</HEAD>\n<BODY>\n" + "\n".join(syncs) + "\n</BODY>\n</SAMI>\n",
    )


if __name__ == "__main__":
    srt()
    ssa()
    whisper_cpp()
    whisper_family()
    aws()
    youtube()
    dfxp()
    sami()
