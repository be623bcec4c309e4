"""Sharding benchmark: a 3-hour source, 60 clips, cut by 1, 2 and 4 shards (issue 14).

Source: 3 hours of 160x90 5 fps H.264 (x264 ultrafast, a keyframe every 10 s) + mono AAC,
generated once into ``benchmarks/.cache/`` and served from a local HTTP server
(``tests/httpserver.py``). Plan: 60 clips of 40-100 s spread over the whole source (3,960 s of
output), ``precision: accurate`` (every frame re-encoded, so the cutting is CPU work),
``partialDownload: auto`` (each shard fetches only the ranges of its own clips).

Each configuration runs the shards as parallel processes, exactly as the pods of an Indexed Job
run them (``videojobs_worker.local.run_shards``: same split, same parts, same merge); a
configuration's rounds alternate with the others (1, 2, 4, 1, 2, 4, ...) so that the machine's
load hits them alike, and the minimum wall time over the rounds is reported. Per shard: the
bytes its ranged download took and the peak RSS of the shard process and of its ffmpeg children.

Usage: ``python benchmarks/bench_sharding.py [--runs N] [--shards 1,2,4] [--no-write]``; writes
the table into ``docs/benchmarks.md`` between the sharding markers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "job_image"), str(REPO / "operator")]

from benchmarks._common import CACHE, write_section  # noqa: E402
from tests.httpserver import MediaServer  # noqa: E402
from videojobs.models import VideoProcessingJobSpec, WorkerInput  # noqa: E402
from videojobs_worker.guard import NetworkPolicy  # noqa: E402
from videojobs_worker.local import ShardOutcome, finish_shards, run_shards  # noqa: E402
from videojobs_worker.progress import NullReporter  # noqa: E402
from videojobs_worker.publish import DirectoryPublisher  # noqa: E402
from videojobs_worker.runner import RunOptions  # noqa: E402

DURATION = 3 * 3600
SOURCE = CACHE / "source-3h-160x90p5.mp4"
CLIPS = 60


def ensure_source() -> Path:
    """Generate the 3-hour source into the cache unless it is there already."""
    if SOURCE.exists():
        return SOURCE
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = CACHE / f".tmp-{SOURCE.name}"
    print("generating the 3-hour source...", flush=True)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y"]
        + ["-f", "lavfi", "-i", f"testsrc=size=160x90:rate=5:duration={DURATION}"]
        + ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=16000:duration={DURATION}"]
        + ["-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "30"]
        + ["-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-pix_fmt", "yuv420p"]
        + ["-c:a", "aac", "-b:a", "24k", "-ac", "1", "-movflags", "+faststart", str(tmp)],
        check=True,
    )
    tmp.rename(SOURCE)
    return SOURCE


def plan() -> list[tuple[float, float]]:
    """60 clips, one per 180 s slot, 40-100 s long (uneven, so the split has work to do)."""
    return [(i * 180.0 + 7.5, i * 180.0 + 7.5 + 40 + (i * 37) % 61) for i in range(CLIPS)]


def worker_input(url: str) -> WorkerInput:
    spec = {
        "source": {"url": url, "partialDownload": "auto"},
        "segments": [
            {"start": f"{s:.3f}", "end": f"{e:.3f}", "title": f"Clip {i}"}
            for i, (s, e) in enumerate(plan(), 1)
        ],
        "output": {
            "formats": ["mp4"],
            "precision": "accurate",
            "thumbnails": False,
            "subtitles": False,
            "storage": {"pvc": {"claimName": "bench"}},
        },
    }
    model = VideoProcessingJobSpec.model_validate(spec)
    return WorkerInput(spec=model, allow_private_networks=True)


def run_once(url: str, shards: int, work: Path) -> tuple[float, list[ShardOutcome]]:
    out = work / f"out-{shards}"
    scratch = work / f"scratch-{shards}"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    options = RunOptions(scratch=scratch, policy=NetworkPolicy.local(), workers=None)
    started = time.monotonic()
    publisher = DirectoryPublisher(out)
    run = run_shards(worker_input(url), None, publisher, options, shards)
    outcomes = run[1]
    failed = [o for o in outcomes if o.code != 0]
    if failed:
        raise SystemExit(f"shard {failed[0].index} failed: {failed[0].error}")
    if shards > 1:  # the merge step, as the run's merge Job does it
        code, _ = finish_shards(worker_input(url), publisher, options, run, NullReporter())
        if code != 0:
            raise SystemExit(f"the merge step failed with exit code {code}")
    wall = time.monotonic() - started
    if not (out / "manifest.json").is_file():
        raise SystemExit("no manifest published")
    return wall, outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2, help="rounds; the minimum is reported")
    parser.add_argument("--shards", default="1,2,4", help="shard counts to compare")
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    args = parser.parse_args()
    counts = [int(k) for k in args.shards.split(",")]
    source = ensure_source()
    size = source.stat().st_size
    load_before = os.getloadavg()
    best: dict[int, tuple[float, list[ShardOutcome]]] = {}
    walls: dict[int, list[float]] = {k: [] for k in counts}
    with MediaServer(source.parent) as server, tempfile.TemporaryDirectory() as tmp:
        url = server.url(source.name)
        for round_ in range(args.runs):
            for k in counts:
                wall, outcomes = run_once(url, k, Path(tmp))
                walls[k].append(wall)
                print(f"round {round_ + 1}: {k} shard(s) {wall:.1f} s", flush=True)
                if k not in best or wall < best[k][0]:
                    best[k] = (wall, outcomes)
    load_after = os.getloadavg()
    cores = os.cpu_count() or 1
    base = best[counts[0]][0]
    rows = [
        "| shards | wall time (min of runs) | speed-up vs 1 | cores | bytes downloaded per shard "
        "| peak RSS per shard: worker / ffmpeg |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for k in counts:
        wall, outcomes = best[k]
        downloaded = []
        rss = []
        for o in sorted(outcomes, key=lambda o: o.index):
            got = o.result.downloaded.bytes if o.result and o.result.downloaded else 0
            downloaded.append(f"{got / 2**20:.1f} MiB")
            rss.append(f"{o.peak_rss_kib / 1024:.0f} / {o.children_peak_rss_kib / 1024:.0f} MiB")
        runs = ", ".join(f"{w:.1f}" for w in walls[k])
        rows.append(
            f"| {k} | {wall:.1f} s ({runs}) | {base / wall:.2f}x | {cores} | "
            f"{'; '.join(downloaded)} | {'; '.join(rss)} |"
        )
    body = "\n".join(
        [
            f"Source: {DURATION // 3600} h of 160x90 5 fps H.264 + mono AAC "
            f"({size / 2**20:.1f} MiB, a keyframe every 10 s), served over local HTTP; "
            "60 clips of 40-100 s "
            f"({sum(e - s for s, e in plan()):.0f} s of output), `precision: accurate`, "
            "`partialDownload: auto`. Shards run as processes, as the pods of the Indexed Job "
            "do (same split, parts and merge: `videojobs_worker.local.run_shards`).",
            "",
            *rows,
            "",
            f"Machine: {cores} cores, shared with other work: load average "
            f"{load_before[0]:.2f} before and {load_after[0]:.2f} after the runs; with more "
            "shards than free cores the speed-up is bounded by the cores, not by the split "
            "(each shard's ffmpeg uses every core it is given). Rounds alternate the "
            "configurations; the minimum is shown, every run in brackets. Peak RSS: "
            "`getrusage` of the shard process and of its ffmpeg children; both include the "
            "high-water mark a forked shard inherits (an upper bound, not the shard's own).",
            "",
            f"Reproduce: `.venv/bin/python benchmarks/bench_sharding.py --runs {args.runs}`",
        ]
    )
    print(body)
    if not args.no_write:
        write_section("sharding", body)


if __name__ == "__main__":
    main()
