"""Ranged downloads: bytes and time to get a 30 s range of a long source, vs the whole file.

Source: the cutting benchmark's 10-minute 1280x720 30 fps H.264/AAC file (generated once into
``benchmarks/.cache/``, shared with ``bench_cutting.py``), also packaged as HLS (stream copy,
2 s... 8.3 s segments at its keyframes). Served by ``tests/httpserver.py`` (honours HTTP Range,
counts the body bytes it sends; a client that hangs up leaves at most its socket buffers unread).

Measured:

1. our :class:`Downloader` fetching a 30 s range (plus the 2 s margins the runner adds) vs the
   whole file, for the direct MP4 and for HLS: bytes sent by the server, bytes on disk, wall time;
2. the worker as a process (``videojobs-worker run``, cluster mode, status reporting off):
   a one-clip job of 30 s from the 10-minute source (``partialDownload: auto`` picks the ranged
   download) and the cutting benchmark's 8-clip plan downloaded whole, ``smart`` precision:
   wall time, bytes sent and the worker Python process' peak RSS (``ru_maxrss`` logged by the
   worker, cross-checked with ``VmHWM`` polled from ``/proc``; ffmpeg children not included).

Targets: a 30 s range fetches at most 15 % of the bytes; the worker process stays under 300 MiB.

Run: ``python benchmarks/bench_download.py``; rewrites only the ``download`` section of
``docs/benchmarks.md``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import CACHE, PLAN, SOURCE, ensure_source, vm_hwm_bytes, write_section  # noqa: E402

from tests.httpserver import MediaServer  # noqa: E402
from videojobs_worker.download import Downloader, plan_ranges  # noqa: E402
from videojobs_worker.guard import GuardProxy, NetworkPolicy  # noqa: E402

HLS_DIR = CACHE / "hls-600s"
RANGE = (300.0, 330.0)
DURATION = 600.0
CUT_PLAN = PLAN  # the cutting benchmark's plan
TARGET_FRACTION = 0.15
TARGET_RSS_MIB = 300


def ensure_hls() -> Path:
    playlist = HLS_DIR / "index.m3u8"
    if playlist.exists():
        return playlist
    HLS_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(SOURCE), "-c", "copy"]
        + ["-f", "hls", "-hls_time", "8", "-hls_playlist_type", "vod"]
        + ["-hls_segment_filename", str(HLS_DIR / "seg%03d.ts"), str(playlist)],
        check=True,
    )
    return playlist


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f}"


def measure_downloader(server: MediaServer, path: str, total: int, work: Path) -> list[dict]:
    rows = []
    ranges = plan_ranges([RANGE], DURATION)
    variants = (("30 s range", ranges, False), ("30 s range, guard proxy", ranges, True),
                ("whole file", None, False))  # fmt: skip
    for label, rng, guard in variants:
        server.reset()
        dest = Path(tempfile.mkdtemp(dir=work))
        started = time.perf_counter()
        if guard:  # as in cluster mode: ffmpeg's requests go through the checking proxy
            policy = NetworkPolicy.cluster(allowed_networks=["127.0.0.1/32"])
            with GuardProxy(policy) as proxy:
                result = Downloader(dest, policy=policy, proxy=proxy).download(
                    server.url(path), ranges=rng
                )
        else:
            result = Downloader(dest, policy=None).download(server.url(path), ranges=rng)
        wall = time.perf_counter() - started
        time.sleep(0.2)  # let the server threads finish counting
        sent = server.bytes_served_under(path.rsplit("/", 1)[0] if "/" in path else path)
        rows.append(
            {
                "source": "HLS" if path.endswith(".m3u8") else "direct MP4",
                "what": label,
                "ranges": rng,
                "sent": sent,
                "on_disk": result.bytes,
                "total": total,
                "fraction": sent / total,
                "wall": wall,
            }
        )
        for p in result.parts:
            p.path.unlink()
    return rows


def measure_worker(server: MediaServer, work: Path, label: str, segments, partial: str) -> dict:
    """Run ``videojobs-worker run`` as a process; wall time, bytes sent, peak RSS."""
    spec = {
        "source": {"url": server.url(SOURCE.name), "partialDownload": partial},
        "segments": [
            {"start": f"{s:.3f}", "end": f"{e:.3f}", "title": f"Clip {i}"}
            for i, (s, e) in enumerate(segments, 1)
        ],
        "output": {
            "formats": ["mp4"],
            "precision": "smart",
            "storage": {"pvc": {"claimName": "bench", "path": label}},
        },
    }
    env = dict(os.environ)
    env.update(
        {
            "VIDEOJOBS_INPUT": json.dumps({"spec": spec, "allowPrivateNetworks": True}),
            "VIDEOJOBS_SCRATCH": str(work / f"scratch-{label}"),
            "VIDEOJOBS_OUTPUT_ROOT": str(work / "out"),
        }
    )
    server.reset()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "videojobs_worker", "run"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    hwm = 0
    while proc.poll() is None:
        hwm = max(hwm, vm_hwm_bytes(proc.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - started
    stderr = proc.stderr.read() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"worker failed ({proc.returncode}):\n{stderr}")
    match = re.search(r"peak RSS: (\d+) MiB", stderr)
    return {
        "what": label,
        "clips": len(segments),
        "output_s": sum(e - s for s, e in segments),
        "wall": wall,
        "sent": server.bytes_served(SOURCE.name),
        "rss_mib": int(match.group(1)) if match else None,
        "hwm_mib": hwm / 2**20,
    }


def render(size: int, dl_rows: list[dict], worker_rows: list[dict]) -> str:
    lines = [
        f"Source: 10 min 1280x720 30 fps H.264 (keyframe every 8.33 s) + AAC, {_mib(size)} MiB, "
        "served from 127.0.0.1 by `tests/httpserver.py` (HTTP Range honoured). Range: "
        f'{RANGE[0]:g}-{RANGE[1]:g} s plus the runner\'s 2 s margins (34 s). "Sent" is what the '
        "server wrote to the socket, including what sat in socket buffers when ffmpeg hung up. "
        f"yt-dlp {_ytdlp_version()}, Debian ffmpeg 5.1, 2 cores.",
        "",
        "| source | download | sent MiB | % of the file | on disk MiB | wall s |",
        "|---|---|---|---|---|---|",
    ]
    for r in dl_rows:
        lines.append(
            f"| {r['source']} | {r['what']} | {_mib(r['sent'])} | {100 * r['fraction']:.1f} % "
            f"| {_mib(r['on_disk'])} | {r['wall']:.2f} |"
        )
    direct = next(r for r in dl_rows if r["source"] == "direct MP4" and r["ranges"])
    # (the first ranged row is without the proxy; the proxy row shows its cost)
    verdict = "met" if direct["fraction"] <= TARGET_FRACTION else "NOT met"
    lines += [
        "",
        f"Target ≤ {100 * TARGET_FRACTION:.0f} % of the bytes for a 30 s range of the direct "
        f"file: **{verdict}** ({100 * direct['fraction']:.1f} %).",
        "",
        "Worker process (`videojobs-worker run`, cluster mode — so ffmpeg goes through the "
        'guard proxy —, `smart` precision, MP4 out; "sent" includes the lookup, the header '
        "probe and reading x264's settings; RSS of the Python process only, ffmpeg children "
        "excluded):",
        "",
        "| job | clips | output s | sent MiB | % of the file | wall s | peak RSS MiB (ru_maxrss) "
        "| VmHWM MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in worker_rows:
        lines.append(
            f"| {r['what']} | {r['clips']} | {r['output_s']:.1f} | {_mib(r['sent'])} | "
            f"{100 * r['sent'] / size:.1f} % | {r['wall']:.1f} | {r['rss_mib']} | "
            f"{r['hwm_mib']:.0f} |"
        )
    worst = max((r["rss_mib"] or 0) for r in worker_rows)
    verdict = "met" if worst < TARGET_RSS_MIB else "NOT met"
    lines += ["", f"Target < {TARGET_RSS_MIB} MiB: **{verdict}** (worst {worst} MiB).", ""]
    return "\n".join(lines)


def _ytdlp_version() -> str:
    import yt_dlp.version

    return yt_dlp.version.__version__


def main() -> int:
    ensure_source()
    ensure_hls()
    size = SOURCE.stat().st_size
    hls_total = sum(p.stat().st_size for p in HLS_DIR.glob("*.ts"))
    with tempfile.TemporaryDirectory(prefix="bench-dl-") as tmp, MediaServer(CACHE) as server:
        work = Path(tmp)
        rows = measure_downloader(server, SOURCE.name, size, work)
        rows += measure_downloader(server, f"{HLS_DIR.name}/index.m3u8", hls_total, work)
        worker_rows = [
            measure_worker(server, work, "one 30 s clip, ranged", [RANGE], "auto"),
            measure_worker(server, work, "8 clips, whole file", CUT_PLAN, "never"),
        ]
    body = render(size, rows, worker_rows)
    print(body)
    write_section("download", body)
    (CACHE / "last-download-results.json").write_text(
        json.dumps({"downloads": rows, "worker": worker_rows}, indent=1, default=str)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
