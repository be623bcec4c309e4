"""The planner at transcript scale: 2k / 20k / 200k cues, 500 quote-anchored knowledge points.

Each measurement runs in a fresh subprocess so that its peak RSS (``ru_maxrss``) is its own:

- ``new``: :func:`videojobs.planning.plan_segments` on the whole spec (index built once, 500
  quotes matched over candidate windows, snapping, naming);
- ``before`` (with ``--baseline REV``): the same call with ``videojobs/`` as it was at git
  revision ``REV`` (exported to a temporary directory), run side by side on the same input; the
  table says whether both gave the same plan (a hash of the plan's JSON);
- ``old``: the brute-force matcher that scored every window of the transcript for every quote
  (kept as ``tests/unit/quote_reference.py``), for the 500 quotes; at 200k cues it is run on
  :data:`OLD_SAMPLE` quotes only and its time is extrapolated to 500 (marked so in the table).

The transcript is synthetic lecture speech: a Zipf-distributed vocabulary of 6,000 made-up
words, cues of 6-14 words, 1.5-4.5 s long. Quotes are 6-10 word runs from evenly spaced places,
every fourth with one typo. Peak RSS includes building the transcript models (shown on its own
as "transcript RSS", measured before planning starts). Next to each wall time is the CPU time
(user + system, ``time.process_time`` in the child) of the same section: on a shared machine it
is the less load-dependent figure.

Usage: ``python benchmarks/bench_planner.py [--runs N] [--sizes 2000,20000,200000]
[--baseline REV]``; it rewrites the "planner" section of docs/benchmarks.md.

``--cli --baseline REV [--runs N] [--sizes 20000,200000]`` measures ``videojobs plan`` end to
end instead (issue 27): process start to JSON out, on the same transcript written as a WebVTT
file next to a manifest with the 500 quotes, this checkout and ``REV`` alternated, each run a
fresh ``python -m videojobs_cli plan``; minimum wall and CPU (user + system of the child) of
the runs, ratios old / new, and whether both printed the same plan. REV's transcript limit
(``MAX_CUES``, 50,000 before issue 27) is lifted for it, so that it plans 200,000 cues too. It
rewrites the "plan-cli" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

from benchmarks._common import REPO, write_section

QUOTES = 500
OLD_SAMPLE = 25
"""Quotes the old matcher runs at 200k cues (500 would take about five minutes)."""
SYLLABLES = [c + v for c in "bcdfghklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou", "an")]


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.choice([1, 1, 2, 2, 3, 4]))))
    return sorted(words, key=lambda w: (len(w), w))


def build(cues: int, seed: int = 7) -> tuple[Any, Any]:
    """The transcript and the spec with :data:`QUOTES` quote-anchored knowledge points."""
    from videojobs.models import Cue, Transcript, VideoProcessingJobSpec

    rng = random.Random(seed)
    vocab = _vocabulary(rng, 6000)
    weights = [1.0 / (rank + 1) for rank in range(len(vocab))]
    out = []
    t = 0.0
    spoken: list[str] = []
    for index in range(1, cues + 1):
        words = rng.choices(vocab, weights, k=rng.randint(6, 14))
        length = round(rng.uniform(1.5, 4.5), 3)
        out.append(
            Cue(index=index, start=round(t, 3), end=round(t + length, 3), text=" ".join(words))
        )
        spoken.extend(words)
        t += length
    points = []
    step = len(spoken) // QUOTES
    for k in range(QUOTES):
        at = k * step + rng.randint(0, step // 2)
        run = spoken[at : at + rng.randint(6, 10)]
        if k % 4 == 3:
            w = run[len(run) // 2]
            run[len(run) // 2] = w[:-1] + ("x" if w[-1] != "x" else "y")
        points.append({"id": f"kp{k}", "title": f"Topic {k}", "quote": " ".join(run)})
    spec = VideoProcessingJobSpec.model_validate(
        {
            "source": {"url": "https://example.org/v.mp4"},
            "transcript": {"inline": "x"},
            "knowledgePoints": points,
            "segmentation": {"minDuration": "0"},
            "output": {"storage": {"pvc": {"claimName": "c"}}},
        }
    )
    return Transcript(format="webvtt", cues=out), spec


def _rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(method: str, cues: int, quotes: int) -> dict[str, Any]:
    """One measurement, in this (fresh) process."""
    from tests.unit.quote_reference import ReferenceIndex, reference_match_quote
    from videojobs.errors import PlanError
    from videojobs.planning import plan_segments

    transcript, spec = build(cues)
    base = _rss()
    points = spec.knowledge_points[:quotes]
    began, cpu = time.perf_counter(), time.process_time()
    matched = 0
    digest = ""
    if method == "new":
        spec = spec.model_copy(update={"knowledge_points": points})
        try:
            plan = plan_segments(spec, transcript)
            matched = sum(1 for n in plan.notes if "quote matched" in n)
            digest = hashlib.sha256(plan.model_dump_json().encode()).hexdigest()[:16]
        except PlanError as exc:
            raise SystemExit(f"plan failed: {exc}") from None
    else:
        index = ReferenceIndex(transcript)  # built once, windows cached per length, as before
        for i, kp in enumerate(points):
            try:
                reference_match_quote(kp.quote or "", index, f"kp[{i}]")
                matched += 1
            except PlanError:
                pass
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    return {
        "seconds": seconds,
        "cpu": cpu,
        "rss": _rss(),
        "base_rss": base,
        "matched": matched,
        "plan": digest,
        "module": sys.modules["videojobs.planning"].__file__,
    }


def measure(method: str, cues: int, quotes: int, root: str | None = None) -> dict[str, Any]:
    """One child process; ``root``: where its ``videojobs`` package comes from (the baseline)."""
    path = str(REPO) if root is None else f"{root}{os.pathsep}{REPO}"
    result = subprocess.run(
        [sys.executable, __file__, "--child", method, str(cues), str(quotes)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": path, "BENCH_PLANNER_ROOT": root or ""},
    )
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["module"].startswith(root or str(REPO)), out["module"]
    return out


def export(rev: str, into: str) -> None:
    """``videojobs/`` (and the reference matcher) as at git revision ``rev``, into ``into``."""
    paths = ["videojobs", "tests/__init__.py", "tests/unit/__init__.py"]
    paths.append("tests/unit/quote_reference.py")
    archive = subprocess.run(
        ["git", "archive", rev, *paths], cwd=REPO, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)


def _s(runs: list[dict[str, Any]]) -> str:
    """Best wall time (and that run's CPU time) of ``runs``."""
    best = min(runs, key=lambda r: r["seconds"])
    return f"{best['seconds']:.2f} ({best['cpu']:.2f})"


def _clock(seconds: float) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    sec, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{sec:02d}.{ms:03d}"


def write_cli_inputs(cues: int, into: str) -> str:
    """The :func:`build` transcript as a WebVTT file and a manifest quoting it; the manifest's
    path."""
    import yaml

    transcript, spec = build(cues)
    vtt = os.path.join(into, f"t{cues}.vtt")
    with open(vtt, "w", encoding="utf-8") as fh:
        fh.write("WEBVTT\n\n")
        for c in transcript.cues:
            fh.write(f"{_clock(c.start)} --> {_clock(c.end)}\n{c.text}\n\n")
    points = [{"id": k.id, "title": k.title, "quote": k.quote} for k in spec.knowledge_points]
    manifest = {
        "apiVersion": "videojobs.io/v1alpha1",
        "kind": "VideoProcessingJob",
        "metadata": {"name": "bench"},
        "spec": {
            "source": {"url": "https://example.org/v.mp4"},
            "transcript": {"configMapKeyRef": {"name": "t", "key": os.path.basename(vtt)}},
            "knowledgePoints": points,
            "segmentation": {"minDuration": "0"},
            "output": {"storage": {"pvc": {"claimName": "c"}}},
        },
    }
    path = os.path.join(into, f"job{cues}.yaml")
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(manifest, fh, sort_keys=False)
    return path


_LIFT = (
    "import sys, videojobs.transcripts._common as c; c.MAX_CUES = 10**7; "
    "from videojobs.cli import main; sys.exit(main(sys.argv[1:]))"
)
"""REV's ``videojobs plan``, cue limit lifted (REV predates issue 29: its CLI is videojobs.cli)."""


def plan_cli(manifest: str, root: str | None) -> dict[str, Any]:
    """One ``videojobs plan`` process: wall and CPU seconds, and a hash of its output."""
    path = str(REPO) if root is None else root
    code = ["-m", "videojobs_cli"] if root is None else ["-c", _LIFT]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *code, "plan", manifest, "--output", "json"],
        capture_output=True,
        cwd=os.path.dirname(manifest),
        env={**os.environ, "PYTHONPATH": path},
    )
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"plan failed ({root or 'new'}): {done.stderr.decode()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "seconds": wall,
        "cpu": cpu,
        "plan": hashlib.sha256(done.stdout).hexdigest()[:16],
        "segments": len(json.loads(done.stdout)["segments"]),
    }


def run_cli(args: argparse.Namespace, baseline: str, tmp: str) -> None:
    rows, targets = [], []
    for cues in (int(s) for s in args.sizes.split(",")):
        manifest = write_cli_inputs(cues, tmp)
        new, old = [], []
        for _ in range(args.runs):  # alternated, so that both see the same load
            new.append(plan_cli(manifest, None))
            old.append(plan_cli(manifest, baseline))
        n = min(new, key=lambda r: r["seconds"])
        o = min(old, key=lambda r: r["seconds"])
        n_cpu, o_cpu = min(r["cpu"] for r in new), min(r["cpu"] for r in old)
        same = len({r["plan"] for r in new + old}) == 1
        rows.append(
            f"| {cues:,} | {QUOTES} | {n['seconds']:.2f} | {o['seconds']:.2f} | "
            f"{o['seconds'] / n['seconds']:.2f}× | {n_cpu:.2f} | {o_cpu:.2f} | "
            f"{o_cpu / n_cpu:.2f}× | {'yes' if same else 'NO'} ({n['segments']} clips) |"
        )
        print(rows[-1], flush=True)
        limit = {20_000: 2.0, 200_000: 10.0}.get(cues)
        if limit is not None:
            ok = n["seconds"] <= limit
            targets.append(
                f"- {'met' if ok else 'NOT met'}: {cues:,} cues + {QUOTES} quotes ≤ {limit:g} s "
                f"end to end: {n['seconds']:.2f} s wall, {n_cpu:.2f} s CPU"
                + ("" if ok or n_cpu > limit else " (the CPU time is within it: load)")
            )
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    body = "\n".join(
        [
            f"Measured {now} by `python benchmarks/bench_planner.py --cli --runs {args.runs} "
            f"--baseline {args.baseline}` on {os.cpu_count()} CPUs ({platform.machine()}, "
            f"{platform.system()}), Python {platform.python_version()}; load average {load} at "
            "the end (1/5/15 min), on a machine shared with other work. Each run is a fresh "
            "`videojobs plan job.yaml --output json` (process start to JSON out: imports, YAML, "
            "reading and parsing the WebVTT file, 500 quotes, JSON), the two versions "
            f"alternated; minimum of {args.runs} runs. CPU = user + system seconds of the "
            "process, the steadier figure on a loaded machine.",
            "",
            "The transcript is the planner benchmark's synthetic lecture (above) written as "
            "WebVTT next to the manifest (`configMapKeyRef` read from a file). **before**: "
            f"`{args.baseline}` with its `MAX_CUES` (50,000) lifted so that it plans 200,000 "
            "cues too. **same plan**: both printed byte-identical JSON in every run.",
            "",
            "| cues | quotes | new s | before s | speed-up | new CPU s | before CPU s | "
            "CPU speed-up | same plan |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            "Targets (issue 27):",
            "",
            *targets,
        ]
    )
    if args.no_write:
        print(body)
    else:
        write_section("plan-cli", body)
        print(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--sizes", default="2000,20000,200000")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print, do not edit the docs")
    parser.add_argument("--baseline", help="git revision whose planner runs side by side")
    parser.add_argument("--cli", action="store_true", help="videojobs plan end to end")
    args = parser.parse_args()
    if args.child:
        root = os.environ.get("BENCH_PLANNER_ROOT")
        if root:  # the baseline's videojobs before this checkout's
            sys.path.insert(0, root)
        method, cues, quotes = args.child
        print(json.dumps(child(method, int(cues), int(quotes))))
        return
    with tempfile.TemporaryDirectory(prefix="bench-planner-") as tmp:
        if args.baseline:
            export(args.baseline, tmp)
        if args.cli:
            if not args.baseline:
                parser.error("--cli needs --baseline REV")
            with tempfile.TemporaryDirectory(prefix="bench-plan-cli-") as inputs:
                run_cli(args, tmp, inputs)
            return
        run(args, tmp if args.baseline else None)


def run(args: argparse.Namespace, baseline: str | None) -> None:
    mib = 1024 * 1024
    rows = []
    targets = []
    for cues in (int(s) for s in args.sizes.split(",")):
        old_quotes = QUOTES if cues <= 20_000 else OLD_SAMPLE
        new, before = [], []
        for _ in range(args.runs):  # alternated, so that both see the same load
            new.append(measure("new", cues, QUOTES))
            if baseline is not None:
                before.append(measure("new", cues, QUOTES, baseline))
        old = [measure("old", cues, old_quotes) for _ in range(args.runs if cues <= 2000 else 1)]
        n_best = min(new, key=lambda r: r["seconds"])
        o_best = min(old, key=lambda r: r["seconds"])
        old_seconds = o_best["seconds"] * QUOTES / old_quotes
        note = "" if old_quotes == QUOTES else f" (extrapolated from {old_quotes} quotes)"
        if before:
            b_best = min(before, key=lambda r: r["seconds"])
            same = {r["plan"] for r in new} == {r["plan"] for r in before}
            versus = (
                f"{_s(before)} | {b_best['seconds'] / n_best['seconds']:.2f}× | "
                f"{'yes' if same else 'NO'} | {max(r['rss'] for r in before) / mib:.0f} | "
            )
        else:
            versus = ""
        rows.append(
            f"| {cues:,} | {QUOTES} | {_s(new)} | {versus}{old_seconds:.1f}{note} | "
            f"{old_seconds / n_best['seconds']:.0f}× | {n_best['matched']} | "
            f"{max(r['rss'] for r in new) / mib:.0f} | {n_best['base_rss'] / mib:.0f} | "
            f"{max(r['rss'] for r in old) / mib:.0f} |"
        )
        print(rows[-1], flush=True)
        limit = {20_000: (2.0, None), 200_000: (20.0, 300)}.get(cues)
        if limit is not None:
            seconds, memory = limit
            peak = max(r["rss"] for r in new)
            ok = n_best["seconds"] <= seconds and (memory is None or peak / 1e6 <= memory)
            targets.append(
                f"- {'met' if ok else 'NOT met'}: {cues:,} cues + {QUOTES} quotes ≤ {seconds:g} s"
                + (f" and ≤ {memory} MB" if memory else "")
                + f": {n_best['seconds']:.2f} s wall ({n_best['cpu']:.2f} s CPU)"
                + (f", peak RSS {peak / 1e6:.0f} MB ({peak / mib:.0f} MiB)" if memory else "")
            )
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    command = f"python benchmarks/bench_planner.py --runs {args.runs}" + (
        f" --baseline {args.baseline}" if args.baseline else ""
    )
    versus_head = (
        f"before s ({args.baseline}) | new vs before | same plan | before peak RSS MiB | "
        if baseline
        else ""
    )
    body = "\n".join(
        [
            f"Measured {now} by `{command}` on "
            f"{os.cpu_count()} CPUs ({platform.machine()}, {platform.system()}), Python "
            f"{platform.python_version()}; minimum wall time of {args.runs} run(s) for the new "
            "planner (one run of the old matcher above 2,000 cues), each in a fresh process, "
            f"on a machine shared with other work (load average {load} at the end, 1/5/15 min). "
            "Times are wall seconds with the same run's CPU seconds (user + system) in "
            "brackets.",
            "",
            "Synthetic lecture transcript (Zipf vocabulary of 6,000 words, 6-14 words per cue); "
            f"{QUOTES} quote-anchored knowledge points, 6-10 words each, every fourth with a "
            "typo. **new**: the whole `plan_segments` (index, candidate windows, snapping, "
            "naming). **old**: the brute-force matcher that scored every transcript window per "
            "quote (`tests/unit/quote_reference.py`), quote matching only. Peak RSS is the "
            "process's, transcript models included (shown on their own).",
            "",
            f"| cues | quotes | new s | {versus_head}old s | speed-up | quotes matched "
            "| new peak RSS MiB | transcript RSS MiB | old peak RSS MiB |",
            "|---|---|---|" + ("---|---|---|---|" if baseline else "") + "---|---|---|---|---|---|",
            *rows,
            "",
            "Targets (issue 14):",
            "",
            *targets,
        ]
    )
    if args.no_write:
        print(body)
    else:
        write_section("planner", body)
        print(body)


if __name__ == "__main__":
    main()
