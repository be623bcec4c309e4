"""Cutting benchmark per source kind (issue 12): naive re-encode, accurate, smart and copy.

Imported by ``bench_cutting.py --kinds``; see there. Each source is 1 minute of 1280x720 30 fps
(1080p60: 30 s) generated once into ``benchmarks/.cache/kinds/`` — much shorter than the
10-minute main benchmark to spare the shared (heavily loaded) machine. Plan: one clip of 29.6 s
(12.35 s for 1080p60), not starting on a keyframe.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import PLAN

REPO = Path(__file__).resolve().parent.parent
KCACHE = REPO / "benchmarks" / ".cache" / "kinds"
METHODS = ["naive-reencode", "accurate", "smart", "copy"]
DEVICE_METHODS = ["naive-reencode", "smart", "copy"]
"""Issue 23 compares smart with the naive re-encode and with stream copy (``accurate`` costs
what the naive re-encode does, see the table above)."""
PLAN_120 = [(22.7, 52.3)]
"""29.6 s of output; the start falls 0.7 s before a keyframe for a 2 s GOP, 2.3 s for 5 s and
7.3 s for 10 s (the head is what smart re-encodes)."""
PLAN_30 = [(15.1, 27.45)]


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    ext: str
    out: str
    source_kind: str
    """Key of ``tests.mediakit.SOURCE_KINDS`` (shared with tests/media/test_source_kinds.py)."""
    gop: int
    size: tuple[int, int] = (1280, 720)
    duration: int = 60
    plan: list[tuple[float, float]] = field(default_factory=lambda: PLAN_120)


KINDS = [
    Kind("x264-medium", "x264 medium, 5 s GOP", "mp4", "mp4", "x264_medium", 150),
    Kind("x264-veryfast", "x264 veryfast, 2 s GOP", "mp4", "mp4", "x264_veryfast", 60),
    Kind("open-gop", "x264 veryfast open GOP, 5 s", "mp4", "mp4", "open_gop", 150),
    Kind(
        "sei-stripped",
        "H.264 without x264 SEI (as YouTube/hardware), 5 s GOP",
        "mp4",
        "mp4",
        "sei_stripped",
        150,
    ),
    Kind("vp9-webm", "VP9 + Opus WebM, 5 s GOP → WebM", "webm", "webm", "vp9_webm", 150),
    Kind("av1", "AV1 (SVT-AV1) + AAC MP4, 5 s GOP → MP4", "mp4", "mp4", "av1", 150),
    Kind(
        "1080p60",
        "x264 veryfast 1080p60, 2 s GOP (30 s source)",
        "mp4",
        "mp4",
        "hd1080p60",
        120,
        size=(1920, 1080),
        duration=30,
        plan=PLAN_30,
    ),
    Kind("gop10s", "x264 veryfast, 10 s GOP", "mp4", "mp4", "gop10s", 300),
    Kind("vfr", "x264 veryfast VFR (30 fps, then 15 fps)", "mp4", "mp4", "vfr", 60),
    Kind("rotated", "x264 veryfast, 90° display rotation", "mp4", "mp4", "rotated", 60),
]
LONG_KINDS = [
    Kind("gop10s-long", "x264 veryfast, 10 s GOP, 10 min, 8 clips", "mp4", "mp4", "gop10s", 300,
         duration=600, plan=PLAN),
    Kind("vp9-webm-long", "VP9 + Opus WebM, 5 s GOP, 10 min, 8 clips → WebM", "webm", "webm",
         "vp9_webm", 150, duration=600, plan=PLAN),
]  # fmt: skip
"""Issue 12's own method (10-minute sources, 6–8 clips) for the kinds whose single clip above
is the hardest case: the main benchmark's plan (8 clips, 429.1 s) over a 10-minute source."""
PLAN_66 = [(3.1, 63.45)]
"""One clip of 60.35 s from 3.1 s, 0.9 s before a keyframe (2 s GOP): smart re-encodes 0.9 s at
the head. A clip of a minute, as issue 12 measured: with the 8.35 s clip this table first used,
the per-clip fixed cost (probes, the check, the head's encoder start-up) dominated. The sources
are as short as that allows (66 s): x265 makes them slowly on the shared machine."""
DEVICE_KINDS = [
    Kind("hevc-1080p", "HEVC (x265) 1080p30 MP4, 2 s GOP", "mp4", "mp4", "hevc", 60,
         size=(1920, 1080), duration=66, plan=PLAN_66),
    Kind("hevc10-mov", "HEVC Main 10 MOV, 90° rotation, 2 s GOP", "mov", "mp4",
         "hevc10_rotated", 60, duration=66, plan=PLAN_66),
    Kind("h264-10bit", "H.264 High 10 (x264 veryfast), 2 s GOP", "mp4", "mp4", "h264_10bit", 60,
         duration=66, plan=PLAN_66),
    Kind("h264-mkv", "x264 veryfast in MKV → MP4, 2 s GOP", "mkv", "mp4", "x264_veryfast", 60,
         duration=66, plan=PLAN_66),
    Kind("h264-ts", "x264 veryfast in MPEG-TS → MP4, 2 s GOP", "ts", "mp4", "x264_veryfast", 60,
         duration=66, plan=PLAN_66),
]  # fmt: skip
"""Issue 23's kinds from phones, cameras and TV: HEVC (8- and 10-bit, MOV with rotation),
10-bit H.264, H.264 in Matroska and MPEG-TS."""
BY_NAME = {k.name: k for k in KINDS + LONG_KINDS + DEVICE_KINDS}
PARTIAL = REPO / "benchmarks" / ".cache" / "kinds-partial.json"


def _ffmpeg(args: list[str]) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def source(kind: Kind) -> Path:
    """The kind's source, made once by ``tests.mediakit.make_video`` (the tests' generator)."""
    width, height = kind.size
    path = KCACHE / f"{kind.name}-{kind.duration}s-{width}x{height}-shared.{kind.ext}"
    if path.exists():
        return path
    sys.path.insert(0, str(REPO))
    from tests.mediakit import SOURCE_KINDS, make_video

    options = {**SOURCE_KINDS[kind.source_kind], "size": kind.size}
    tmp = path.with_name(f".tmp-{path.name}")
    while tmp.exists() and time.time() - tmp.stat().st_mtime < 120:  # another run makes it
        time.sleep(10)
        if path.exists():
            return path
    make_video(tmp, duration=kind.duration, gop=kind.gop, **options)
    tmp.rename(path)
    return path


def naive_args(src: Path, start: float, end: float, out_fmt: str, dest: Path) -> list[str]:
    """What a loop of ffmpeg calls does: input seek, re-encode with the same encoder settings
    videojobs uses for that container (x264 veryfast crf 20 + AAC; VP9 realtime + Opus)."""
    args = ["-ss", f"{start}", "-i", str(src), "-t", f"{end - start:.3f}"]
    if out_fmt == "webm":
        args += ["-c:v", "libvpx-vp9", "-crf", "32", "-b:v", "0", "-deadline", "realtime"]
        args += ["-cpu-used", "8", "-row-mt", "1", "-c:a", "libopus", "-b:a", "128k"]
    else:
        args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20"]
        args += ["-c:a", "aac", "-b:a", "128k"]
    return [*args, str(dest)]


def run_method(name: str, method: str, out_dir: Path) -> dict:
    """One method over one kind's plan, in this (child) process."""
    kind = BY_NAME[name]
    src = source(kind)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs, used, notes = [], [], []
    started = time.perf_counter()
    if method == "naive-reencode":
        for i, (s, e) in enumerate(kind.plan, 1):
            out = out_dir / f"{i:02d}.{kind.out}"
            _ffmpeg(naive_args(src, s, e, kind.out, out))
            outputs.append(str(out))
    else:
        from videojobs.models import PlannedSegment, Quality
        from videojobs_worker.cut import CutRequest, cut_clip
        from videojobs_worker.probe import probe

        info = probe(src)
        for i, (s, e) in enumerate(kind.plan, 1):
            seg = PlannedSegment(index=i, title=f"s{i}", start=s, end=e, stem=f"{i:02d}")
            out = out_dir / f"{i:02d}.{kind.out}"
            outcome = cut_clip(
                CutRequest(src, info, seg, kind.out, method, Quality(), out, threads=0)
            )
            outputs.append(str(out))
            used.append(outcome.precision_used)
            notes.append(outcome.note or "")
    wall = time.perf_counter() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    me = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "wall": wall,
        "cpu": children.ru_utime + children.ru_stime + me.ru_utime + me.ru_stime,
        "outputs": outputs,
        "used": used,
        "notes": notes,
        "children_maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        "self_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def _probe_times(path: Path) -> list[float]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time"]
        + ["-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # An MPEG-TS packet with side data prints a trailing comma ("1.466667,").
    times = (v.strip().split(",")[0] for v in out.split())
    return sorted(float(v) for v in times if v not in ("", "N/A"))


def decode_errors(path: Path) -> int:
    proc = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    return len([line for line in proc.stderr.splitlines() if line.strip()]) + (
        1 if proc.returncode else 0
    )


def decoded_frames(path: Path) -> int:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0"]
        + ["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.strip().split(",")[0] or 0)


def measure(kind: Kind, result: dict, method: str) -> dict:
    from videojobs_worker.probe import probe

    # Plans are in source time: relative to the file's time zero (an MPEG-TS file's start time,
    # 1.445 s here; counting in raw timestamps expected 251 frames for the TS plan's 250).
    zero = probe(source(kind)).origin
    times = [t - zero for t in _probe_times(source(kind))]
    exact = True
    errors = 0
    for out, (s, e) in zip(result["outputs"], kind.plan, strict=True):
        errors += decode_errors(Path(out))
        planned = sum(1 for t in times if s - 0.0005 <= t < e - 0.0005)
        if kind.name == "vfr" and method in ("naive-reencode", "accurate"):
            planned = round((e - s) * 30)  # re-encoded at a constant 30 fps
        # smart keeps the source's frames (and, for VFR, their times): the planned ones.
        got = decoded_frames(Path(out))
        if got != planned:
            exact = False
            result.setdefault("frame_mismatch", []).append((Path(out).name, got, planned))
    return {"exact": exact, "errors": errors}


def run_child(name: str, method: str, out_dir: Path) -> dict:
    script = REPO / "benchmarks" / "bench_cutting.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--kind-child", f"{name}:{method}", "--out", str(out_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{name} {method} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_all(
    names: list[str], runs: int, partial: Path = PARTIAL, methods: list[str] = METHODS
) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-kinds-"))
    results: dict = {}
    loads = [os.getloadavg()[0]]
    try:
        for name in names:
            kind = BY_NAME[name]
            src = source(kind)
            subprocess.run(["cat", str(src)], stdout=subprocess.DEVNULL, check=True)
            for run in range(runs):
                for method in methods:
                    out_dir = work / f"{name}-{method}-{run}"
                    try:
                        r = run_child(name, method, out_dir)
                    except RuntimeError as exc:  # a clip that fails its check: in the table
                        failed = str(exc).strip().splitlines()[-1][:300]
                        results[(name, method)] = {"failed": failed, "dir": str(out_dir)}
                        print(f"{name:14s} run {run + 1}: {method:15s} FAILED {failed}", flush=True)
                        continue
                    if "failed" in results.get((name, method), {}):
                        continue
                    print(f"{name:14s} run {run + 1}: {method:15s} {r['wall']:7.2f} s", flush=True)
                    best = results.get((name, method))
                    if best is None or r["wall"] < best["wall"]:
                        r["dir"] = str(out_dir)
                        if best is not None:
                            shutil.rmtree(best["dir"], ignore_errors=True)
                        results[(name, method)] = r
                    else:
                        shutil.rmtree(out_dir, ignore_errors=True)
            loads.append(os.getloadavg()[0])
            for method in methods:
                r = results[(name, method)]
                if "failed" not in r:
                    r.update(measure(kind, r, method))
                shutil.rmtree(r["dir"], ignore_errors=True)
            # Kinds measured so far, so that a long run can be rendered part-way (--kinds-render).
            done: dict = {f"{n}|{m}": v for (n, m), v in results.items()}
            done["load"] = f"{min(loads):.1f}–{max(loads):.1f}"
            partial.write_text(json.dumps({"runs": runs, "results": done}), encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out: dict = {f"{n}|{m}": v for (n, m), v in results.items()}
    out["load"] = f"{min(loads):.1f}–{max(loads):.1f}"
    return out


def _path(r: dict, method: str) -> str:
    if method == "naive-reencode":
        return "–"
    used = r["used"]
    smart = used.count("smart")
    if method == "smart":
        return "yes" if smart == len(used) else f"no ({smart}/{len(used)})"
    if method == "copy":
        copied = used.count("copy")
        return "copy" if copied == len(used) else f"re-encoded ({len(used) - copied}/{len(used)})"
    return "–"


def _reason(r: dict) -> str:
    for note in r["notes"]:
        if note.startswith("smart fell back"):
            return note.removeprefix("smart fell back to accurate: ")
    return ""


LONG_SOURCES = (
    "Sources: 10 min of 1280x720 30 fps, made by `tests.mediakit.make_video` with the options of "
    "`tests.mediakit.SOURCE_KINDS` (as above); plan: the main benchmark's 8 clips (429.1 s of "
    "output, no start on a keyframe), cut one after another (`threads=0`, as when a job cuts "
    "one clip at a time; the worker cuts two at a time on 2 CPUs, which is faster still)."
)


DEVICE_SOURCES = (
    "Sources: 66 s of 1280x720 (HEVC 1080p: 1920x1080) at 30 fps with AAC, made by "
    "`tests.mediakit.make_video` with the options of `tests.mediakit.SOURCE_KINDS` (x265 "
    "ultrafast CRF 30 with closed GOPs of IDR pictures, as phones write; x264 veryfast CRF 28); "
    "plan: one clip of 60.35 s from 3.1 s (the head smart re-encodes: 0.9 s), output MP4, as "
    "issue 12 measured (clips of a minute: with 8.35 s clips the per-clip fixed cost dominated). "
    "naive-reencode is one ffmpeg run per clip with x264 veryfast CRF 20 (what a loop of "
    "ffmpeg calls does); copy is a plain stream copy from the keyframe. Columns as in the first "
    "table"
)


def _rows(results: dict, names: list[str], devices: bool) -> tuple[list[str], list[str]]:
    """Table rows (one per kind and method) and the fall-back reasons of ``smart``."""
    lines: list[str] = []
    reasons = []
    for name in names:
        kind = BY_NAME[name]
        naive = results[f"{name}|naive-reencode"]
        copy = results[f"{name}|copy"]
        for method in DEVICE_METHODS if devices else METHODS:
            r = results[f"{name}|{method}"]
            if "failed" in r:
                label = kind.label if method == "naive-reencode" else ""
                lines.append(f"| {label} | {method} | fails: {r['failed']} |" + " |" * 8)
                continue
            ratio = naive["wall"] / r["wall"] if r["wall"] else 0
            cpu_ratio = naive["cpu"] / r["cpu"] if r["cpu"] else 0
            exact = "n/a" if method == "copy" else ("yes" if r["exact"] else "**no**")
            rss = f"{r['children_maxrss_kib'] // 1024} / {r['self_maxrss_kib'] // 1024} MiB"
            label = kind.label if method == "naive-reencode" else ""
            bold = "**" if method == "smart" else ""
            vs_copy = f" {r['cpu'] / copy['cpu']:.1f}× |" if copy.get("cpu") else " – |"
            vs_copy = vs_copy if devices else ""
            lines.append(
                f"| {label} | {method} | {r['wall']:.2f} | {bold}{ratio:.2f}×{bold} | "
                f"{r['cpu']:.1f} | {cpu_ratio:.2f}× |{vs_copy} {_path(r, method)} | {exact} | "
                f"{r['errors']} | {rss} |"
            )
            if method == "smart" and _reason(r):
                reasons.append(f"- {kind.label}: {_reason(r)}")
    return lines, reasons


def build_table(
    results: dict, runs: int, names: list[str], *, long: bool = False, devices: bool = False
) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    import re as _re

    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout
    match = _re.match(r"ffmpeg version (\S+)", version)
    lines = [
        f"Per source kind: measured {now} by `python benchmarks/bench_cutting.py "
        f"{'--kinds-long' if long else '--kinds-devices' if devices else '--kinds'}` on "
        f"{os.cpu_count()} CPUs ({platform.machine()}), ffmpeg {match.group(1) if match else '?'}; "
        f"minimum wall time of {runs} run(s) per method, the methods of one kind run side by "
        "side (alternating), sequentially, warm page cache.",
        "",
        (LONG_SOURCES + " Columns as in the table above")
        + "; 1-minute load average "
        + f"{results.get('load', '?')} during the run."
        if long
        else DEVICE_SOURCES + f"; 1-minute load average {results.get('load', '?')} during the run."
        if devices
        else "Sources: 1 min of 1280x720 30 fps (1080p60: 30 s of 1920x1080) with AAC (Opus for "
        "WebM), made by `tests.mediakit.make_video` with the options of "
        "`tests.mediakit.SOURCE_KINDS` (the media tests' generator: x264 CRF 28, SVT-AV1 "
        "preset 12, VP9 realtime), much shorter than the 10-minute main benchmark to spare the "
        "shared machine; "
        "plan: one clip of 29.6 s from 22.7 s (1080p60: 12.35 s from 15.1 s), so the head "
        "smart re-encodes is 0.7 s (2 s GOP), 2.3 s (5 s GOP) or 7.3 s (10 s GOP). Output: MP4, or "
        "WebM for the VP9 source. Ratio = naive re-encode wall time / the method's. Frame-exact: "
        "every clip has exactly the planned frames (for `copy`: not applicable, it snaps to the "
        "keyframe; VFR: naive and `accurate` re-encode at a constant 30 fps, `smart` keeps the "
        "source's frames and times). Decode errors: lines `ffmpeg -v error` prints decoding "
        "every clip. "
        "CPU s: user + system time of the method's process and its ffmpeg children, less "
        "sensitive than wall time to the other work on the shared machine (1-minute load "
        f"average {results.get('load', '?')} during the run). Peak RSS: largest ffmpeg child / "
        "the Python process.",
        "",
        "| source | method | wall s | ratio vs naive (wall) | CPU s | ratio (CPU) | fast path "
        "| frame-exact | decode errors | peak RSS ffmpeg / Python |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    if devices:
        lines[-2] = lines[-2].replace("| fast path", "| CPU vs copy | fast path")
        lines[-1] += "---|"
    rows, reasons = _rows(results, names, devices)
    lines += rows
    if reasons:
        lines += ["", "Why `smart` fell back (the clip's note):", "", *reasons]
    return "\n".join(lines)
