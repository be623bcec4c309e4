"""Transcript parsing at scale: every format with 50,000 cues, and refusals past a limit.

    python benchmarks/bench_transcripts.py [--runs 3] [--cues 50000]

(50,000 cues was ``MAX_CUES`` until issue 27 raised it to 200,000, the planner's limit; at
200,000 cues the JSON formats with words are over ``MAX_TRANSCRIPT_BYTES``.)

Rewrites the ``transcripts`` section of docs/benchmarks.md. Baseline: SRT (the ``srt`` library,
the parser videojobs had before the new formats); each row is also given as a ratio to it.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

from benchmarks._common import DOC
from videojobs.errors import TranscriptError
from videojobs.transcripts import (
    MAX_CUES,
    MAX_NESTING,
    MAX_TRANSCRIPT_BYTES,
    parse_transcript,
)


def clock(ms: int, sep: str = ",") -> str:
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def documents(n: int) -> dict[str, str]:
    """One document per format family with ``n`` one-second cues."""
    r = range(n)
    return {
        "srt (baseline)": "\n".join(
            f"{i + 1}\n{clock(i * 1000)} --> {clock(i * 1000 + 500)}\nword {i}\n" for i in r
        ),
        "webvtt": "WEBVTT\n\n"
        + "\n".join(f"{clock(i * 1000, '.')} --> {clock(i * 1000 + 500, '.')}\nw {i}\n" for i in r),
        "whisper-cpp-json": json.dumps(
            {
                "transcription": [
                    {"offsets": {"from": i * 1000, "to": i * 1000 + 500}, "text": f" word {i}"}
                    for i in r
                ]
            },
            indent=2,
        ),
        "whisper-json, 2 words per cue": json.dumps(
            {
                "segments": [
                    {
                        "start": i,
                        "end": i + 0.5,
                        "text": f"word {i}",
                        "words": [
                            {"word": "word", "start": i, "end": i + 0.2},
                            {"word": str(i), "start": i + 0.2, "end": i + 0.5},
                        ],
                    }
                    for i in r
                ]
            },
            indent=2,
        ),
        "youtube-json3": json.dumps(
            {
                "events": [
                    {"tStartMs": i * 1000, "dDurationMs": 500, "segs": [{"utf8": f"w {i}"}]}
                    for i in r
                ]
            }
        ),
        "ttml (pysubs2)": '<tt xmlns="http://www.w3.org/ns/ttml"><body><div>\n'
        + "\n".join(f'<p begin="{i}s" end="{i}.5s">word {i}</p>' for i in r)
        + "\n</div></body></tt>",
        "sami (pysubs2)": "<SAMI><BODY>\n"
        + "\n".join(f"<SYNC Start={i * 1000}><P>word {i}</P>" for i in r)
        + "\n</BODY></SAMI>",
        "ass (pysubs2)": "[Script Info]\nScriptType: v4.00+\n\n[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
        + "\n".join(
            f"Dialogue: 0,{clock(i * 1000, '.')[1:-1]},{clock(i * 1000 + 500, '.')[1:-1]},"
            f"Default,,0,0,0,,word {i}"
            for i in r
        ),
    }


def measure(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Minimum wall seconds of ``runs`` calls, and the peak traced allocation (MiB) of one."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 1048576
    tracemalloc.stop()
    return best, peak


def refuse(text: str) -> None:
    try:
        parse_transcript(text)
    except TranscriptError:
        return
    raise AssertionError("not refused")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cues", type=int, default=50_000)
    args = parser.parse_args()
    runs, cues = args.runs, args.cues
    rows = []
    baseline = None
    for name, text in documents(cues).items():
        seconds, peak = measure(functools.partial(parse_transcript, text), runs)
        baseline = baseline or seconds
        size = len(text.encode()) / 1048576
        rows.append(
            f"| {name} | {size:.1f} | {seconds:.2f} | {seconds / baseline:.2f}× | {peak:.0f} |"
        )
    refusals = {
        f"{MAX_CUES + 1} SRT cues (MAX_CUES)": documents(MAX_CUES + 1)["srt (baseline)"],
        "100,000 nested JSON arrays (MAX_NESTING)": "[" * 100_000 + "]" * 100_000,
        "100,000 nested TTML spans (MAX_NESTING)": '<tt xmlns="http://www.w3.org/ns/ttml">'
        + "<span>" * 100_000
        + "</span>" * 100_000
        + "</tt>",
        f"{MAX_TRANSCRIPT_BYTES + 1} bytes (MAX_TRANSCRIPT_BYTES)": " "
        * (MAX_TRANSCRIPT_BYTES + 1),
    }
    refused = []
    for name, text in refusals.items():
        seconds, peak = measure(functools.partial(refuse, text), runs)
        refused.append(f"| {name} | {seconds:.3f} | {peak:.0f} |")
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join(
        [
            f"Measured {now} by `python benchmarks/bench_transcripts.py --runs {runs} --cues "
            f"{cues}` on "
            f"{__import__('os').cpu_count()} CPUs ({platform.machine()}, {platform.system()}), "
            f"Python {platform.python_version()}; minimum wall time of {runs} run(s), in-process; "
            "peak = largest traced Python allocation during one parse (tracemalloc).",
            "",
            f"Parsing {cues:,} cues, one per second, in each family (`MAX_CUES` is {MAX_CUES:,}):",
            "",
            "| format | MiB | parse s | × srt | peak MiB |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"Refusing input past a limit (nesting limit {MAX_NESTING}):",
            "",
            "| input | refused in s | peak MiB |",
            "|---|---|---|",
            *refused,
        ]
    )
    text = DOC.read_text()
    start, end = "<!-- transcripts:start -->", "<!-- transcripts:end -->"
    if start not in text:
        text = text.rstrip("\n") + f"\n\n## Transcript parsing at the limits\n\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    DOC.write_text(head + start + "\n" + section + "\n" + end + rest.split(end, 1)[1])
    print(section)


if __name__ == "__main__":
    main()
