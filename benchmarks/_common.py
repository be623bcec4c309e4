"""What the benchmarks share: the long source, its 8-segment plan, and docs/benchmarks.md.

Each benchmark rewrites only its own section of ``docs/benchmarks.md``, between
``<!-- NAME:start -->`` and ``<!-- NAME:end -->``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "benchmarks" / ".cache"
DOC = REPO / "docs" / "benchmarks.md"

GOP = 250
"""Keyframe interval of the long source in frames: 8.33 s at 30 fps, as in shared/notes."""
SOURCE = CACHE / f"source-600s-720p30-gop{GOP}.mp4"
"""10 min of 1280x720 30 fps H.264 (x264 veryfast crf 20) + AAC, generated once and cached."""
PLAN: list[tuple[float, float]] = [
    (12.4, 61.9),
    (70.25, 118.7),
    (131.1, 189.35),
    (197.6, 241.05),
    (255.55, 318.4),
    (330.9, 371.2),
    (388.7, 456.35),
    (470.15, 528.75),
]
"""8 segments, 429.1 s of output, no start on a keyframe."""


def ensure_source() -> Path:
    """Generate the long source into the cache unless it is there already."""
    if SOURCE.exists():
        return SOURCE
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = CACHE / f".tmp-{SOURCE.name}"
    print("generating the 10-minute source (about a minute)...", flush=True)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y"]
        + ["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=600"]
        + ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=600"]
        + ["-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20"]
        + ["-g", str(GOP), "-keyint_min", str(GOP), "-sc_threshold", "0", "-pix_fmt", "yuv420p"]
        + ["-c:a", "aac", "-b:a", "128k", "-ac", "2", "-movflags", "+faststart", str(tmp)],
        check=True,
    )
    tmp.rename(SOURCE)
    return SOURCE


def vm_hwm_bytes(pid: int) -> int:
    """Peak resident set size of a live process (Linux ``VmHWM``); 0 once it has gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"VmHWM:\s+(\d+) kB", text)
    return int(match.group(1)) * 1024 if match else 0


def write_section(name: str, body: str) -> None:
    """Replace the ``name`` section of docs/benchmarks.md with ``body``."""
    text = DOC.read_text(encoding="utf-8")
    begin, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    head, sep, rest = text.partition(begin)
    _, sep2, tail = rest.partition(end)
    if not sep or not sep2:
        raise SystemExit(f"{DOC} lacks the {begin} ... {end} markers")
    DOC.write_text(f"{head}{begin}\n{body}\n{end}{tail}", encoding="utf-8")
