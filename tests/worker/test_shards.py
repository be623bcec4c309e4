"""Sharded runs in the worker: each shard cuts its share and publishes a part; one manifest.

The merge is pure (``merge_parts``): a missing part or a part of another run gives no manifest,
all parts give the union of the shards' clips, in deterministic bytes. The runner, run once per
shard index as the pods of an Indexed Job would, downloads only its own ranges and publishes its
part; no shard publishes ``manifest.json``: the run's merge step does, after every shard.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.httpserver import MediaServer
from tests.worker.helpers import make_input
from videojobs.models import PlannedSegment, SegmentPlan, SegmentResult, SourceInfo
from videojobs_worker.mergestep import MergeOptions, run_merge
from videojobs_worker.progress import Reporter
from videojobs_worker.publish import DirectoryPublisher
from videojobs_worker.runner import Runner, RunOptions, run_job
from videojobs_worker.shardparts import (
    MANIFEST_NAME,
    dump_document,
    merge_parts,
    part_document,
    part_name,
)

pytestmark = pytest.mark.media


def _plan(n: int) -> SegmentPlan:
    return SegmentPlan(
        segments=[
            PlannedSegment(index=i, title=f"c{i}", start=10.0 * i, end=10.0 * i + 5, stem=f"c{i}")
            for i in range(1, n + 1)
        ]
    )


def _result(seg: PlannedSegment) -> SegmentResult:
    return SegmentResult(
        index=seg.index,
        title=seg.title,
        start=seg.start,
        end=seg.end,
        stem=seg.stem,
        precision="smart",
    )


def _parts(plan: SegmentPlan, shares: list[list[int]], run: str = "job-1") -> list[dict[str, Any]]:
    by_index = {s.index: s for s in plan.segments}
    return [
        part_document(
            run=run,
            shard=i,
            shards=len(shares),
            plan=plan,
            source=SourceInfo(duration_seconds=100.0, size_bytes=10) if share else None,
            segments=[_result(by_index[j]) for j in share],
            downloaded=None,
        )
        for i, share in enumerate(shares)
    ]


def test_all_parts_merge_into_the_union_in_deterministic_bytes() -> None:
    plan = _plan(5)
    parts = _parts(plan, [[1, 4], [2, 5], [3], []])
    merged = merge_parts(parts, plan=plan, resource=None, source_url="u")
    assert merged is not None
    assert [s["index"] for s in merged["segments"]] == [1, 2, 3, 4, 5]
    assert [s["segments"] for s in merged["shards"]] == [[1, 4], [2, 5], [3], []]
    first = dump_document(merged)
    for seed in range(5):
        shuffled = list(parts)
        random.Random(seed).shuffle(shuffled)
        again = merge_parts(shuffled, plan=plan, resource=None, source_url="u")
        assert again is not None and dump_document(again) == first


def test_a_missing_or_foreign_part_gives_no_manifest() -> None:
    plan = _plan(4)
    parts = _parts(plan, [[1, 3], [2, 4]])
    assert merge_parts(parts[:1], plan=plan, resource=None, source_url="u") is None
    other_run = _parts(plan, [[1, 3], [2, 4]], run="job-0")
    assert merge_parts([parts[0], other_run[1]], plan=plan, resource=None, source_url="u") is None
    other_plan = _plan(5)
    assert merge_parts(parts, plan=other_plan, resource=None, source_url="u") is None
    lost = _parts(plan, [[1, 3], [2]])  # clip 4 in no part
    assert merge_parts(lost, plan=plan, resource=None, source_url="u") is None
    twice = _parts(plan, [[1, 3, 4], [2, 4]])
    assert merge_parts(twice, plan=plan, resource=None, source_url="u") is None


class _Recorder(Reporter):
    def __init__(self) -> None:
        super().__init__()
        self.patches: list[dict[str, Any]] = []

    def _emit(self, *, force: bool) -> None:
        self.patches.append(self.status_patch())


def _run_shard(worker_input: Any, out: Path, scratch: Path, index: int) -> tuple[int, Any, Any]:
    reporter = _Recorder()
    runner = Runner(
        worker_input,
        reporter=reporter,
        publisher=DirectoryPublisher(out),
        options=RunOptions(
            scratch=scratch, policy=None, retries=1, backoff=0.05, workers=1, shard_index=index
        ),
    )
    code, result = run_job(runner)
    return code, result, reporter


def test_shards_cut_their_shares_and_the_merge_step_publishes_one_manifest(
    tmp_path: Path, server: MediaServer, media: Path
) -> None:
    segments = [(5.0, 9.0), (30.0, 32.0), (60.0, 63.0), (80.0, 81.5)]
    out = tmp_path / "out"
    single_in = make_input(server.url("long.mp4"), segments, precision="accurate", partial="auto")
    code, single, _ = _run_shard(single_in, tmp_path / "single", tmp_path / "s", 0)
    assert code == 0 and single is not None
    sharded = make_input(
        server.url("long.mp4"),
        segments,
        precision="accurate",
        partial="auto",
        shards=2,
        resource={"namespace": "ns", "name": "n", "uid": "u", "jobName": "n-1"},
    )
    server.reset()
    code, first, rep0 = _run_shard(sharded, out, tmp_path / "s0", 0)
    assert code == 0 and first is not None and first.manifest_uri is None
    assert not (out / MANIFEST_NAME).exists()  # one shard is not the job
    assert (out / part_name("n-1", 0)).is_file()
    # LPT by duration: shard 0 gets the 4 s and the 1.5 s clips, shard 1 the 3 s and 2 s ones
    assert [s.index for s in first.segments] == [1, 4]
    assert first.downloaded is not None and first.downloaded.partial
    assert all(p.start < 10 or p.start > 70 for p in first.downloaded.parts)
    assert all("segments" not in p["status"] for p in rep0.patches)  # its own key only
    assert {"0"} == {k for p in rep0.patches for k in p["status"]["shardProgress"]}

    code, second, rep1 = _run_shard(sharded, out, tmp_path / "s1", 1)
    assert code == 0 and second is not None and second.manifest_uri is None
    assert not (out / MANIFEST_NAME).exists()  # the last shard does not merge either
    assert all("manifestUri" not in p["status"] for p in rep1.patches)

    merger = _Recorder()
    code, merged = run_merge(sharded, DirectoryPublisher(out), merger, MergeOptions(tmp_path / "m"))
    assert code == 0 and merged is not None
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert [s["index"] for s in manifest["segments"]] == [1, 2, 3, 4]
    assert [s["segments"] for s in manifest["shards"]] == [[1, 4], [2, 3]]
    assert manifest["download"]["bytes"] == first.downloaded.bytes + second.downloaded.bytes
    # the same clips as one pod cutting them all
    assert [(s.index, s.stem) for s in merged.segments] == [
        (s.index, s.stem) for s in single.segments
    ]
    last = merger.patches[-1]["status"]
    assert last["manifestUri"].endswith(MANIFEST_NAME) and last["segmentsSummary"] == "4/4"
    assert len(last["segments"]) == 4

    # a retried shard (same run) finds its clips published; merging again gives the same bytes
    before = (out / MANIFEST_NAME).read_bytes()
    code, again, _ = _run_shard(sharded, out, tmp_path / "s2", 0)
    assert code == 0 and again is not None and sorted(again.skipped) == [1, 4]
    code, _ = run_merge(sharded, DirectoryPublisher(out), _Recorder(), MergeOptions(tmp_path / "m"))
    assert code == 0 and (out / MANIFEST_NAME).read_bytes() == before


def test_an_empty_share_downloads_nothing(tmp_path: Path, server: MediaServer, media: Path) -> None:
    sharded = make_input(
        server.url("long.mp4"),
        [(5.0, 9.0)],
        precision="accurate",
        partial="auto",
        shards=2,
        resource={"namespace": "ns", "name": "n", "uid": "u", "jobName": "n-1"},
    )
    code, result, _ = _run_shard(sharded, tmp_path / "out", tmp_path / "s1", 1)
    assert code == 0 and result is not None and result.segments == []
    assert result.downloaded is None
    # only the look-up of the source's duration (its index), no media
    assert server.bytes_served("long.mp4") < 0.1 * (media / "long.mp4").stat().st_size


def test_local_run_in_shards_as_processes(
    tmp_path: Path, media: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from videojobs_worker.local import run_local

    job = tmp_path / "job.yaml"
    spec = {
        "source": {"url": str(media / "long.mp4")},
        "segments": [
            {"start": s, "end": e, "title": f"Part {i}"}
            for i, (s, e) in enumerate([(1, 4), (20, 22), (40, 43), (70, 71)], 1)
        ],
        "parallelism": 3,
        "output": {
            "formats": ["mp4"],
            "precision": "accurate",
            "thumbnails": False,
            "storage": {"pvc": {"claimName": "x"}},
        },
    }
    doc = {"apiVersion": "videojobs.io/v1alpha1", "kind": "VideoProcessingJob"}
    job.write_text(yaml.safe_dump({**doc, "metadata": {"name": "lec"}, "spec": spec}))
    out = tmp_path / "out"
    assert run_local(job, out, progress=False) == 0
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert [s["index"] for s in manifest["segments"]] == [1, 2, 3, 4]
    assert sorted(i for s in manifest["shards"] for i in s["segments"]) == [1, 2, 3, 4]
    assert len(manifest["shards"]) == 3
    assert "4 clips" in capsys.readouterr().out
    # --parallelism overrides the spec; the clips are published already (resumed)
    assert run_local(job, out, progress=False, parallelism=2) == 0
    again = json.loads((out / MANIFEST_NAME).read_text())
    assert [s["segments"] for s in again["shards"]] == [[1, 2], [3, 4]]  # LPT by duration
