"""Cutting benchmark: every precision mode side by side with naive ffmpeg commands.

Source: 10 minutes of 1280x720 30 fps H.264 (x264 veryfast crf 20, a keyframe every 250 frames =
8.33 s, no scene-cut keyframes) + AAC, generated once into ``benchmarks/.cache/``. Plan: 8
segments, 429 s of output, no start on a keyframe (as in ``shared/notes/media.md``).

Rows, each run sequentially over the whole plan in a fresh child process (so that the peak RSS
of its ffmpeg children can be read from ``RUSAGE_CHILDREN``):

* naive re-encode: ``ffmpeg -ss S -i src -t D`` with x264 veryfast crf 20 + AAC, one per segment;
* videojobs accurate / smart / copy: ``cut_clip`` with ``threads=0`` (automatic: ffmpeg's count;
  one decoder thread per CPU for smart's head and tail);
* naive stream copy: ``ffmpeg -ss S -to E -i src -c copy``;
* floor: ``ffmpeg -i src -c copy -f null -`` over the whole file (demux only).

Every output is then measured independently of the tool that made it: its first and last
displayed frames are matched (smallest sum of absolute differences at 96x54 grey) against the
source frames around the planned start and end, which gives the real start and end in source
time; hidden pre-roll is the number of video packets the decoder gets but never shows (MP4 edit
list) plus any video packet with a negative timestamp.

Usage: ``python benchmarks/bench_cutting.py [--runs N] [--no-write]``; writes the table into
``docs/benchmarks.md`` between the cutting markers. ``--kinds [NAMES]`` runs the per-source-kind
benchmark instead (``bench_cutting_kinds.py``: x264 medium/veryfast, open GOP, SEI-stripped
H.264, VP9 WebM, AV1, 1080p60, 10 s GOP, VFR, rotated) into the cutting-kinds markers;
``--kinds-long`` the 10 s GOP and VP9 kinds with issue 12's own method (10-minute sources, the
8 clips above) into the cutting-kinds-long markers; ``--kinds-devices`` issue 23's kinds (HEVC
1080p, HEVC Main 10 MOV with rotation, 10-bit H.264, H.264 in MKV and TS) into the
cutting-kinds-devices markers, with each method's CPU time relative to stream copy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import CACHE, GOP, PLAN, SOURCE, ensure_source, write_section  # noqa: E402

FPS = 30
METHODS = [
    "naive-reencode",
    "accurate",
    "accurate-parallel",
    "smart",
    "smart-parallel",
    "naive-copy",
    "copy",
    "floor",
]
LABELS = {
    "naive-reencode": "naive re-encode per segment `-ss S -i src -t D` (x264 veryfast crf 20)",
    "accurate": "videojobs `accurate`",
    "smart": "videojobs `smart`",
    "accurate-parallel": "videojobs `accurate`, 2 segments at a time × 1 thread",
    "smart-parallel": "videojobs `smart`, 2 segments at a time × 1 thread",
    "naive-copy": "naive stream copy `-ss S -to E -i src -c copy`",
    "copy": "videojobs `copy`",
    "floor": "floor: demux the whole file `-c copy -f null -`",
}
W, H = 96, 54
FRAME_BYTES = W * H


def _ffmpeg(args: list[str]) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def run_method(method: str, out_dir: Path) -> dict:
    """Run one method over the whole plan (in this process); return timings and outputs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs: list[str] = []
    notes: list[str] = []
    used: list[str] = []
    started = time.perf_counter()
    if method == "floor":
        _ffmpeg(["-i", str(SOURCE), "-map", "0", "-c", "copy", "-f", "null", "-"])
    elif method in ("naive-reencode", "naive-copy"):
        for i, (start, end) in enumerate(PLAN, 1):
            out = out_dir / f"{i:02d}.mp4"
            if method == "naive-reencode":
                _ffmpeg(
                    ["-ss", f"{start}", "-i", str(SOURCE), "-t", f"{end - start:.3f}"]
                    + ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20"]
                    + ["-c:a", "aac", "-b:a", "128k", str(out)]
                )
            else:
                _ffmpeg(
                    [
                        "-ss",
                        f"{start}",
                        "-to",
                        f"{end}",
                        "-i",
                        str(SOURCE),
                        "-c",
                        "copy",
                        str(out),
                    ]
                )
            outputs.append(str(out))
    else:
        from videojobs.models import PlannedSegment, Quality
        from videojobs_worker.cut import CutRequest, cut_clip
        from videojobs_worker.probe import probe

        info = probe(SOURCE)
        precision, _, parallel = method.partition("-")
        workers = (os.cpu_count() or 1) if parallel else 1

        def one(i: int) -> tuple[str, str, str]:
            start, end = PLAN[i - 1]
            seg = PlannedSegment(index=i, title=f"s{i}", start=start, end=end, stem=f"{i:02d}")
            out = out_dir / f"{i:02d}.mp4"
            threads = 1 if parallel else 0
            outcome = cut_clip(
                CutRequest(SOURCE, info, seg, "mp4", precision, Quality(), out, threads=threads)
            )
            return str(out), outcome.precision_used, outcome.note or ""

        with ThreadPoolExecutor(max_workers=workers) as pool:
            for out, precision_used, note in pool.map(one, range(1, len(PLAN) + 1)):
                outputs.append(out)
                used.append(precision_used)
                notes.append(note)
    wall = time.perf_counter() - started
    return {
        "method": method,
        "wall": wall,
        "outputs": outputs,
        "used": used,
        "notes": notes,
        "children_maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        "self_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def run_child(method: str, out_dir: Path) -> dict:
    """Run ``method`` in a fresh Python process so that its peak memory is its own."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", method, "--out", str(out_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- measuring the outputs


def _gray_frames(args: list[str]) -> list[bytes]:
    proc = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", *args]
        + ["-vf", f"scale={W}:{H},format=gray", "-f", "rawvideo", "pipe:1"],
        capture_output=True,
        check=True,
    )
    data = proc.stdout
    return [data[i : i + FRAME_BYTES] for i in range(0, len(data) - FRAME_BYTES + 1, FRAME_BYTES)]


def _sad(a: bytes, b: bytes) -> int:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True))


class SourceFrames:
    """Decoded (tiny, grey) source frames around a time, by frame number."""

    def __init__(self) -> None:
        self.cache: dict[int, bytes] = {}

    def window(self, first: int, last: int) -> dict[int, bytes]:
        missing = [n for n in range(first, last + 1) if n not in self.cache]
        if missing:
            lo = missing[0]
            frames = _gray_frames(
                ["-ss", f"{lo / FPS:.6f}", "-i", str(SOURCE), "-map", "0:v:0"]
                + ["-frames:v", str(last - lo + 1)]
            )
            for k, frame in enumerate(frames):
                self.cache[lo + k] = frame
        return {n: self.cache[n] for n in range(first, last + 1) if n in self.cache}


def _match(frame: bytes, candidates: dict[int, bytes]) -> int:
    return min(candidates, key=lambda n: _sad(frame, candidates[n]))


def measure(path: Path, start: float, end: float, src: SourceFrames) -> dict:
    """Real start/end (source frame numbers), durations and hidden pre-roll of one output."""
    probe = json.loads(
        subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-of",
                "json",
                "-select_streams",
                "v:0",
                "-count_frames",
            ]
            + ["-count_packets", "-show_entries"]
            + ["stream=start_time,duration,nb_read_frames,nb_read_packets", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["streams"][0]
    negative = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts",
        ]
        + ["-of", "csv=p=0", "-read_intervals", "%+#30", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    negative_packets = sum(1 for v in negative if v.lstrip("-").isdigit() and int(v) < 0)
    packets, frames = int(probe["nb_read_packets"]), int(probe["nb_read_frames"])
    first = _gray_frames(["-i", str(path), "-map", "0:v:0", "-frames:v", "1"])[0]
    last = _gray_frames(["-sseof", "-0.5", "-i", str(path), "-map", "0:v:0"])[-1]
    s_frame, e_frame = round(start * FPS), round(end * FPS)
    keyframe_before = (int(start * FPS) // GOP) * GOP
    start_candidates = src.window(max(0, keyframe_before - 3), s_frame + 3)
    end_candidates = src.window(e_frame - 6, e_frame + 6)
    real_first = _match(first, start_candidates)
    real_last = _match(last, end_candidates)
    planned_first = -(-round(start * 1000) * FPS // 1000)  # first frame at or after start
    planned_end = -(-round(end * 1000) * FPS // 1000)
    return {
        "start_error": (real_first - planned_first) / FPS,
        "end_error": (real_last + 1 - planned_end) / FPS,
        "duration_error": float(probe["duration"]) - (end - start),
        "start_time": float(probe.get("start_time") or 0),
        "hidden_frames": max(0, packets - frames) + negative_packets,
        "bytes": path.stat().st_size,
    }


# ---------------------------------------------------------------- report


def _ms(values: list[float]) -> str:
    lo, hi = min(values) * 1000, max(values) * 1000
    if round(lo) == round(hi):
        return f"{lo:+.0f} ms"
    return f"{lo:+.0f}..{hi:+.0f} ms"


def build_table(results: dict[str, dict], runs: int, when: dt.datetime | None = None) -> str:
    naive = results["naive-reencode"]["wall"]
    copy = results["naive-copy"]["wall"] if "naive-copy" in results else None
    frame_ms = 1000 / FPS
    lines = [
        "| method | wall s | speed-up vs naive re-encode | × naive stream copy | start error "
        "| end error | duration error | hidden pre-roll | bytes | peak RSS ffmpeg / Python |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method in [m for m in METHODS if m in results]:
        r = results[method]
        m = r.get("measured") or []
        if m:
            start = _ms([x["start_error"] for x in m])
            endv = _ms([x["end_error"] for x in m])
            dur = _ms([x["duration_error"] for x in m])
            hidden = sum(x["hidden_frames"] for x in m)
            hidden_s = f"{hidden} frames ({hidden / FPS:.2f} s)" if hidden else "none"
            size = f"{sum(x['bytes'] for x in m) / 1e6:.1f} MB"
        else:
            start = endv = dur = hidden_s = size = "–"
        vs_copy = f"{r['wall'] / copy:.2f}" if copy else "–"
        lines.append(
            f"| {LABELS[method]} | {r['wall']:.2f} | {naive / r['wall']:.2f}× | "
            f"{vs_copy} | {start} | {endv} | {dur} | {hidden_s} | {size} | "
            f"{r['children_maxrss_kib'] / 1024:.0f} / {r['self_maxrss_kib'] / 1024:.0f} MiB |"
        )
    smart = results["smart"]

    def exact(r: dict) -> bool:
        m = r["measured"]
        return all(
            abs(x["start_error"]) * 1000 < frame_ms
            and abs(x["end_error"]) * 1000 < frame_ms
            and x["hidden_frames"] == 0
            for x in m
        )

    checks: list[tuple[str, bool]] = []
    checks.append(
        (
            f"`smart` at least 8× faster than the naive re-encode: {naive / smart['wall']:.2f}×, "
            f"starts and ends within one frame with no hidden pre-roll: "
            f"{'yes' if exact(smart) else 'NO'}",
            naive / smart["wall"] >= 8 and exact(smart),
        )
    )
    if "accurate" in results:
        accurate = results["accurate"]
        checks.append(
            (
                "`accurate` no slower than the naive re-encode (2 % allowed for run-to-run noise): "
                f"{accurate['wall']:.1f} s vs {naive:.1f} s; frame-exact: "
                f"{'yes' if exact(accurate) else 'NO'}",
                accurate["wall"] <= naive * 1.02 and exact(accurate),
            )
        )
    if "smart-parallel" in results:
        checks.append(
            (
                f"`smart` as the worker runs it (2 segments at a time): "
                f"{naive / results['smart-parallel']['wall']:.1f}× faster than the naive "
                "re-encode, "
                f"frame-exact: {'yes' if exact(results['smart-parallel']) else 'NO'}",
                naive / results["smart-parallel"]["wall"] >= 8 and exact(results["smart-parallel"]),
            )
        )
    if "copy" in results and copy:
        ours_copy = results["copy"]
        checks.append(
            (
                f"`copy` within 2× of the naive stream copy: {ours_copy['wall'] / copy:.2f}×",
                ours_copy["wall"] <= 2 * copy,
            )
        )
    used = ", ".join(sorted(set(smart.get("used") or [])))
    out = [
        f"Measured {(when or dt.datetime.now(dt.UTC)).strftime('%Y-%m-%d %H:%M UTC')} by "
        f"`python benchmarks/bench_cutting.py` on {os.cpu_count()} CPUs "
        f"({platform.machine()}, {platform.system()}), {ffmpeg_version()}, "
        f"Python {platform.python_version()}; minimum wall time of {runs} run(s), sequential, "
        f"warm page cache; 1-minute load average {os.getloadavg()[0]:.1f} when the table was "
        "written (the machine is shared).",
        "",
        f"Source: 10 min 1280x720 30 fps H.264 (x264 veryfast crf 20, keyframe every {GOP} "
        f"frames = {GOP / FPS:.2f} s) + AAC 128k, {SOURCE.stat().st_size / 1e6:.0f} MB. Plan: "
        f"{len(PLAN)} segments, {sum(e - s for s, e in PLAN):.1f} s of output, no start on a "
        "keyframe. Start/end errors are measured by matching the first and last displayed "
        "frame of each output against the source frames (so they include any keyframe snap); "
        "hidden pre-roll counts video packets that are decoded but never shown (MP4 edit "
        "list) or have negative timestamps. Duration error is the clip's video duration minus "
        "the planned length (for `copy` it includes the keyframe snap; for exact cuts it is the "
        "rounding of the planned times to whole frames). Peak RSS: the largest ffmpeg child / "
        "the Python process running the method (the worker's process, target < 300 MiB).",
        "",
        *lines,
        "",
        "Targets (issue 4):",
        "",
        *[f"- {'met' if ok else '**MISSED**'}: {text}" for text, ok in checks],
        "",
        f"`smart` used: {used}. {smart['notes'][0] if smart.get('notes') else ''}",
    ]
    return "\n".join(out)


def ffmpeg_version() -> str:
    first = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout
    match = re.match(r"ffmpeg version (\S+)", first)
    return f"ffmpeg {match.group(1) if match else '?'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="runs per method (minimum is kept)")
    parser.add_argument("--no-write", action="store_true", help="print, do not edit the docs")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--render",
        action="store_true",
        help="rewrite the table from the last run's results",
    )
    parser.add_argument(
        "--kinds",
        nargs="?",
        const="all",
        help="benchmark per source kind instead (comma-separated names, default all)",
    )
    parser.add_argument(
        "--kinds-long",
        nargs="?",
        const="all",
        help="issue 12's method for the hardest kinds: 10-minute sources, 8 clips",
    )
    parser.add_argument(
        "--kinds-devices",
        nargs="?",
        const="all",
        help="issue 23's kinds: HEVC 1080p, HEVC Main 10 MOV, 10-bit H.264, H.264 in MKV and TS",
    )
    parser.add_argument("--kind-child", help=argparse.SUPPRESS)
    parser.add_argument(
        "--kinds-render", action="store_true", help="render the kinds measured so far"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.kind_child:
        sys.path.insert(0, str(REPO))
        import bench_cutting_kinds as kinds

        name, _, method = args.kind_child.partition(":")
        print(json.dumps(kinds.run_method(name, method, Path(args.out))))
        return
    if args.kinds_render:
        import bench_cutting_kinds as kinds

        data = json.loads(kinds.PARTIAL.read_text(encoding="utf-8"))
        names = [k.name for k in kinds.KINDS if f"{k.name}|smart" in data["results"]]
        table = kinds.build_table(data["results"], data["runs"], names)
        print(table)
        if not args.no_write:
            write_section("cutting-kinds", table)
        return
    if args.kinds_long:
        import bench_cutting_kinds as kinds

        every = [k.name for k in kinds.LONG_KINDS]
        names = every if args.kinds_long == "all" else args.kinds_long.split(",")
        partial = CACHE / "kinds-long-partial.json"
        data = kinds.run_all(names, args.runs, partial=partial)
        table = kinds.build_table(data, args.runs, names, long=True)
        print(table)
        if not args.no_write:
            write_section("cutting-kinds-long", table)
        return
    if args.kinds_devices:
        import bench_cutting_kinds as kinds

        every = [k.name for k in kinds.DEVICE_KINDS]
        names = every if args.kinds_devices == "all" else args.kinds_devices.split(",")
        partial = CACHE / "kinds-devices-partial.json"
        data = kinds.run_all(names, args.runs, partial=partial, methods=kinds.DEVICE_METHODS)
        table = kinds.build_table(data, args.runs, names, devices=True)
        print(table)
        if not args.no_write:
            write_section("cutting-kinds-devices", table)
        return
    if args.kinds:
        import bench_cutting_kinds as kinds

        names = [k.name for k in kinds.KINDS] if args.kinds == "all" else args.kinds.split(",")
        data = kinds.run_all(names, args.runs)
        saved = CACHE / "last-kinds-results.json"
        saved.write_text(json.dumps({"runs": args.runs, "results": data}), encoding="utf-8")
        table = kinds.build_table(data, args.runs, names)
        print(table)
        if not args.no_write:
            write_section("cutting-kinds", table)
        return
    if args.child:
        sys.path.insert(0, str(REPO))
        print(json.dumps(run_method(args.child, Path(args.out))))
        return
    if args.render:
        saved = CACHE / "last-results.json"
        data = json.loads(saved.read_text(encoding="utf-8"))
        when = dt.datetime.fromtimestamp(saved.stat().st_mtime, dt.UTC)
        table = build_table(data["results"], data["runs"], when)
        print(table)
        if not args.no_write:
            write_section("cutting", table)
        return
    ensure_source()
    # warm the page cache
    subprocess.run(["cat", str(SOURCE)], stdout=subprocess.DEVNULL, check=True)
    work = Path(tempfile.mkdtemp(prefix="bench-cutting-"))
    results: dict[str, dict] = {}
    try:
        methods = args.methods.split(",")
        for run in range(args.runs):
            for method in methods:
                out_dir = work / f"{method}-{run}"
                r = run_child(method, out_dir)
                print(f"run {run + 1}: {method:15s} {r['wall']:7.2f} s", flush=True)
                best = results.get(method)
                r["dir"] = str(out_dir)
                if best is None or r["wall"] < best["wall"]:
                    results[method] = r
                    if best is not None:
                        shutil.rmtree(best["dir"], ignore_errors=True)
                else:
                    shutil.rmtree(out_dir, ignore_errors=True)
        src = SourceFrames()
        for method in methods:
            r = results[method]
            outputs = r["outputs"]
            r["measured"] = [
                measure(Path(out), s, e, src) for out, (s, e) in zip(outputs, PLAN, strict=False)
            ]
        table = build_table(results, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(table)
    saved = {"runs": args.runs, "results": results}
    (CACHE / "last-results.json").write_text(json.dumps(saved, indent=1), encoding="utf-8")
    if not args.no_write:
        write_section("cutting", table)


if __name__ == "__main__":
    main()
