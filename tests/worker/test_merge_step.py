"""The merge step of a sharded run (``videojobs-worker merge``): it runs after every shard and
merges the parts however late the storage shows them.

On NFS-like storage a reader can miss files another client wrote a moment ago. The publisher
here hides each part for its first reads (as such a client cache would); the merge step keeps
looking with backoff and ends with exactly one manifest. A part that never shows up fails the
step after the bounded wait, with ``PartsMissing`` naming it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.worker.helpers import make_input
from videojobs.models import PlannedSegment, SegmentPlan, SegmentResult, SourceInfo
from videojobs_worker.mergestep import MergeOptions, run_merge
from videojobs_worker.progress import Reporter
from videojobs_worker.publish import DirectoryPublisher
from videojobs_worker.shardparts import (
    MANIFEST_NAME,
    PARTS_DIR,
    PartsMerger,
    ShardParts,
    part_name,
    plan_of_parts,
)

RUN = "lecture-1a2b3c4d"


class LatePublisher(DirectoryPublisher):
    """A directory whose parts stay invisible to the first ``hidden[name]`` reads of each."""

    def __init__(self, root: Path, hidden: dict[str, int]) -> None:
        super().__init__(root)
        self.hidden = dict(hidden)
        self.reads: Counter[str] = Counter()

    def read(self, name: str) -> bytes | None:
        self.reads[name] += 1
        if self.reads[name] <= self.hidden.get(name, 0):
            return None
        return super().read(name)


class _Recorder(Reporter):
    def __init__(self) -> None:
        super().__init__()
        self.patches: list[dict[str, Any]] = []

    def _emit(self, *, force: bool) -> None:
        self.patches.append(self.status_patch())


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def _plan(n: int) -> SegmentPlan:
    return SegmentPlan(
        segments=[
            PlannedSegment(index=i, title=f"c{i}", start=10.0 * i, end=10.0 * i + 5, stem=f"c{i}")
            for i in range(1, n + 1)
        ]
    )


def _publish_parts(out: Path, plan: SegmentPlan, shares: list[list[int]]) -> None:
    """What the shards of run ``RUN`` leave behind: one part each (through the real writer)."""
    by_index = {s.index: s for s in plan.segments}
    for shard, share in enumerate(shares):
        work = out.parent / f"work-{shard}"
        work.mkdir(parents=True, exist_ok=True)
        results = [
            SegmentResult(
                index=by_index[i].index,
                title=by_index[i].title,
                start=by_index[i].start,
                end=by_index[i].end,
                stem=by_index[i].stem,
                precision="smart",
            )
            for i in share
        ]
        ShardParts(DirectoryPublisher(out), work, RUN, shard, len(shares)).finish(
            plan, SourceInfo(duration_seconds=100.0, size_bytes=10), results, None, probed=True
        )


def _input(shards: int) -> Any:
    return make_input(
        "https://example.com/v.mp4",
        [(10.0 * i, 10.0 * i + 5) for i in range(1, 6)],
        shards=shards,
        resource={"namespace": "ns", "name": "lecture", "uid": "u", "jobName": RUN},
    )


def test_parts_that_become_visible_late_still_end_with_one_manifest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    plan = _plan(5)
    _publish_parts(out, plan, [[1, 4], [2, 5], [3]])
    # shard 1's part shows up only on the 4th read, shard 2's on the 7th (a client cache)
    hidden = {part_name(RUN, 1): 3, part_name(RUN, 2): 6}
    publisher = LatePublisher(out, hidden)
    clock = FakeTime()
    reporter = _Recorder()
    options = MergeOptions(work_dir=tmp_path / "merge", wait_seconds=60, sleep=clock.sleep)
    code, merged = run_merge(_input(3), publisher, reporter, options)
    assert code == 0 and merged is not None
    assert publisher.reads[part_name(RUN, 2)] == 7  # looked 7 times, merged on the 7th
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0]  # backoff, capped at 15 s
    assert list(out.rglob(MANIFEST_NAME)) == [out / MANIFEST_NAME]  # exactly one manifest
    assert sorted(p.name for p in (out / PARTS_DIR / RUN).iterdir()) == [
        "0.json",
        "1.json",
        "2.json",
    ]
    doc = json.loads((out / MANIFEST_NAME).read_text())
    assert [s["index"] for s in doc["segments"]] == [1, 2, 3, 4, 5]
    assert [s["segments"] for s in doc["shards"]] == [[1, 4], [2, 5], [3]]
    assert doc["resource"]["jobName"] == RUN
    # the merge step writes only the run-wide fields (progress is the operator's)
    last = reporter.patches[-1]["status"]
    assert last["manifestUri"] == merged.uri and last["manifestUri"].endswith(MANIFEST_NAME)
    assert last["segmentsSummary"] == "5/5" and len(last["segments"]) == 5
    assert all(set(p["status"]) <= {"source", "segments", "segmentsSummary", "manifestUri"}
               for p in reporter.patches)  # fmt: skip
    # merging again (a retried merge pod) publishes the same bytes
    before = (out / MANIFEST_NAME).read_bytes()
    code, _ = run_merge(_input(3), DirectoryPublisher(out), _Recorder(), options)
    assert code == 0 and (out / MANIFEST_NAME).read_bytes() == before


def test_a_part_that_never_shows_up_fails_after_the_bounded_wait(tmp_path: Path) -> None:
    out = tmp_path / "out"
    plan = _plan(4)
    _publish_parts(out, plan, [[1, 3], [2, 4]])
    publisher = LatePublisher(out, {part_name(RUN, 1): 10**9})
    clock = FakeTime()
    merger = PartsMerger(
        publisher, tmp_path / "merge", RUN, 2, sleep=clock.sleep, clock=clock.clock
    )
    (tmp_path / "merge").mkdir()
    from videojobs_worker.errors import WorkerError

    with pytest.raises(WorkerError) as caught:
        merger.merge(resource=None, source_url="u", wait_seconds=40)
    err = caught.value
    assert err.reason == "PartsMissing" and err.category == "Storage" and int(err.exit_code) == 23
    assert f"{part_name(RUN, 1)}: not visible" in err.message
    assert part_name(RUN, 0) not in err.message
    assert sum(clock.sleeps) == pytest.approx(40)  # waited the whole bound, no more
    assert not (out / MANIFEST_NAME).exists()


def test_the_merge_command_reports_parts_missing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _publish_parts(out, _plan(4), [[1, 3]] + [[]])  # shard 1 cut nothing but published
    (out / part_name(RUN, 1)).unlink()  # ... and its part is lost
    clock = FakeTime()
    reporter = _Recorder()
    options = MergeOptions(work_dir=tmp_path / "merge", wait_seconds=0, sleep=clock.sleep)
    code, merged = run_merge(_input(2), DirectoryPublisher(out), reporter, options)
    assert code == 23 and merged is None
    error = reporter.patches[-1]["status"]["error"]
    assert error["reason"] == "PartsMissing" and part_name(RUN, 1) in error["message"]
    assert "manifestUri" not in reporter.patches[-1]["status"]


def test_parts_of_another_plan_or_an_unsharded_input_do_not_merge(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _publish_parts(out, _plan(4), [[1, 3], [2, 4]])
    part = json.loads((out / part_name(RUN, 0)).read_text())
    assert plan_of_parts([part]) == _plan(4)
    part["plan"]["segments"][0]["end"] = 99.0  # a plan that is not the digest's
    assert plan_of_parts([part]) is None
    code, _ = run_merge(
        _input(1), DirectoryPublisher(out), _Recorder(), MergeOptions(work_dir=tmp_path / "m")
    )
    assert code == 2  # USAGE: the merge step is for sharded runs


def test_the_merge_puts_the_manifest_in_its_termination_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator's fallback when the merge's status write does not land."""
    from videojobs_worker import progress

    log = tmp_path / "termination-log"
    log.touch()
    monkeypatch.setattr(progress, "TERMINATION_LOG", log)
    out = tmp_path / "out"
    _publish_parts(out, _plan(2), [[1], [2]])
    code, merged = run_merge(
        _input(2), DirectoryPublisher(out), _Recorder(), MergeOptions(work_dir=tmp_path / "m")
    )
    assert code == 0 and merged is not None
    line = json.loads(log.read_text())
    assert line["exitCode"] == 0 and line["manifestUri"] == merged.uri
