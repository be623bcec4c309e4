"""The shard-part protocol: each shard of a sharded run publishes one part (its clips, its probe
of the source, its download, the plan) under ``<PARTS_DIR>/<run>/<index>.json``; once every
index of the run's Indexed Job completed, the run's merge Job (``videojobs-worker merge``) reads
every part, merges them into the run's manifest and publishes it.

No shard merges: on NFS-like storage a shard reads the other shards' parts through a client
cache that can hide them, so "the shard that finds every part merges" could leave every shard
concluding "not yet" and the run without a manifest. The merge step runs after every shard
finished and waits (with backoff, for a bounded time) until every part is visible.

The documents and the merge are pure (:func:`part_document`, :func:`merge_parts`,
:func:`plan_of_parts`); :class:`ShardParts` publishes a shard's part and :class:`PartsMerger`
reads and merges them through a :class:`~videojobs_worker.publish.Publisher`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videojobs.models import ExitCode, SegmentPlan, SegmentResult, SourceInfo
from videojobs_worker.download import Downloaded
from videojobs_worker.errors import WorkerError
from videojobs_worker.publish import Publisher, Record, relative_uris, sha256_file

MANIFEST_NAME = "manifest.json"
PARTS_DIR = ".videojobs-parts"
"""Where shards publish their parts: ``<PARTS_DIR>/<run>/<index>.json`` next to the clips."""


def part_name(run: str, index: int) -> str:
    """The published name of shard ``index``'s part of ``run`` (the run's Job name)."""
    return f"{PARTS_DIR}/{run}/{index}.json"


def plan_digest(plan: SegmentPlan) -> str:
    """Digest of the plan every shard of a run must agree on."""
    return hashlib.sha256(json.dumps(plan.to_dict(), sort_keys=True).encode()).hexdigest()[:32]


def dump_document(doc: dict[str, Any]) -> bytes:
    """A manifest or part as published: the same document always gives the same bytes."""
    return (json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False) + "\n").encode()


def part_document(
    *,
    run: str,
    shard: int,
    shards: int,
    plan: SegmentPlan,
    source: SourceInfo | None,
    segments: list[SegmentResult],
    downloaded: Downloaded | None,
) -> dict[str, Any]:
    """What one shard published: its clips, its probe of the source and its download."""
    return {
        "apiVersion": "videojobs.io/v1alpha1",
        "kind": "ClipManifestPart",
        "run": run,
        "shard": shard,
        "shards": shards,
        "planDigest": plan_digest(plan),
        "plan": plan.to_dict(),
        "source": source.to_dict() if source is not None else None,
        "segments": [r.to_dict() for r in sorted(segments, key=lambda r: r.index)],
        "download": None
        if downloaded is None
        else {
            "partial": downloaded.partial,
            "bytes": downloaded.bytes,
            "ranges": [[p.start, p.end] for p in downloaded.parts] if downloaded.partial else None,
        },
    }


def merge_parts(
    parts: list[dict[str, Any]],
    *,
    plan: SegmentPlan,
    resource: dict[str, Any] | None,
    source_url: str,
) -> dict[str, Any] | None:
    """The run's manifest from every shard's part, or ``None`` when a part is missing, belongs to
    another run or plan, or the parts do not hold every clip of the plan exactly once.

    Deterministic: the same parts, in any order, give the same document."""
    ordered = _ordered_parts(parts, plan)
    if ordered is None:
        return None
    segments = [seg for part in ordered for seg in part.get("segments") or []]
    segments.sort(key=lambda seg: seg["index"])
    if [seg["index"] for seg in segments] != [s.index for s in plan.segments]:
        return None
    sources = [part["source"] for part in ordered if part.get("source")]
    source = dict(sources[0]) if sources else {}
    download = _merged_download(ordered)
    if download is not None and download["partial"]:
        source["sizeBytes"] = download["bytes"]
    manifest: dict[str, Any] = {
        "apiVersion": "videojobs.io/v1alpha1",
        "kind": "ClipManifest",
        "resource": resource,
        "sourceUrl": source_url,
        "source": source,
        "plan": plan.to_dict(),
        "segments": segments,
        "shards": [
            {
                "index": i,
                "segments": [seg["index"] for seg in part.get("segments") or []],
                "downloadedBytes": (part.get("download") or {}).get("bytes", 0),
            }
            for i, part in enumerate(ordered)
        ],
    }
    if download is not None:
        manifest["download"] = download
    return manifest


def _ordered_parts(parts: list[dict[str, Any]], plan: SegmentPlan) -> list[dict[str, Any]] | None:
    """The parts by shard index, when they are one of each shard of one run of ``plan``."""
    if not parts:
        return None
    shards = parts[0].get("shards")
    run = parts[0].get("run")
    digest = plan_digest(plan)
    by_index: dict[int, dict[str, Any]] = {}
    for part in parts:
        if (part.get("run"), part.get("shards"), part.get("planDigest")) != (run, shards, digest):
            return None
        by_index[int(part["shard"])] = part
    if not isinstance(shards, int) or sorted(by_index) != list(range(shards)):
        return None
    return [by_index[i] for i in range(shards)]


def _merged_download(ordered: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The shards' downloads as one: partial if any was, bytes summed, ranges sorted; ``None``
    when no shard downloaded anything."""
    downloads = [part.get("download") for part in ordered]
    sizes = [d["bytes"] for d in downloads if d]
    if not sizes:
        return None
    ranges = sorted(tuple(r) for d in downloads if d and d.get("ranges") for r in d["ranges"])
    return {
        "partial": any(bool(d and d.get("partial")) for d in downloads),
        "bytes": sum(sizes),
        "ranges": [list(r) for r in ranges] or None,
    }


def plan_of_parts(parts: list[dict[str, Any]]) -> SegmentPlan | None:
    """The plan the parts were cut from (every part carries it), or ``None`` when a part lacks
    it or it does not match the part's ``planDigest`` (a part of an older worker, a torn
    write)."""
    if not parts or not isinstance(parts[0].get("plan"), dict):
        return None
    try:
        plan = SegmentPlan.model_validate(parts[0]["plan"])
    except ValueError:
        return None
    return plan if plan_digest(plan) == parts[0].get("planDigest") else None


@dataclass(frozen=True)
class Merged:
    """The run's manifest, as published by the merge step."""

    uri: str
    segments: list[SegmentResult]
    source: SourceInfo
    plan: SegmentPlan


@dataclass(frozen=True)
class ShardParts:
    """Shard ``shard`` of ``shards`` of run ``run``, publishing through ``publisher`` (files are
    written in ``work_dir`` first)."""

    publisher: Publisher
    work_dir: Path
    run: str
    shard: int
    shards: int

    def finish(
        self,
        plan: SegmentPlan,
        source: SourceInfo,
        results: list[SegmentResult],
        downloaded: Downloaded | None,
        *,
        probed: bool,
    ) -> None:
        """Publish this shard's part (kept as it is when a retried shard that cut nothing and
        did not probe finds it published). The merge step merges the parts."""
        part = part_document(
            run=self.run,
            shard=self.shard,
            shards=self.shards,
            plan=plan,
            source=source if probed else None,
            segments=results,
            downloaded=downloaded,
        )
        if probed or not self.same_part(part):
            path = self.work_dir / f"part-{self.shard}.json"
            path.write_bytes(dump_document(part))
            record = Record(sha256=sha256_file(path), bytes=path.stat().st_size)
            self.publisher.publish(path, part_name(self.run, self.shard), record)

    def same_part(self, part: dict[str, Any]) -> bool:
        """True when this run's part of this shard is published with the same clips (a retried
        shard that had nothing left to cut keeps it, and with it the source it probed)."""
        raw = self.publisher.read(part_name(part["run"], part["shard"]))
        try:
            old = json.loads(raw) if raw is not None else None
        except ValueError:
            return False
        keys = ("run", "shard", "shards", "planDigest", "segments")
        return isinstance(old, dict) and all(old.get(k) == part[k] for k in keys)


MERGE_WAIT_SECONDS = 300.0
"""How long the merge step waits, by default, for every part to become visible."""
MERGE_FIRST_DELAY = 0.5
MERGE_MAX_DELAY = 15.0


@dataclass
class PartsMerger:
    """The merge step of run ``run`` of ``shards`` shards: reads every part through
    ``publisher`` until all are visible and agree, then publishes the manifest.

    Idempotent: the same parts give the same manifest bytes, so a retried merge (or one run
    twice) publishes the same document."""

    publisher: Publisher
    work_dir: Path
    run: str
    shards: int
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def read_parts(self) -> tuple[list[dict[str, Any]], list[str]]:
        """The parts visible now, and why the others are not usable (missing, unreadable)."""
        parts: list[dict[str, Any]] = []
        problems: list[str] = []
        for index in range(self.shards):
            name = part_name(self.run, index)
            raw = self.publisher.read(name)
            if raw is None:
                problems.append(f"{name}: not visible")
                continue
            try:
                doc = json.loads(raw)
            except ValueError:
                problems.append(f"{name}: not valid JSON (torn or in flight)")
                continue
            if not isinstance(doc, dict):
                problems.append(f"{name}: not a part")
                continue
            parts.append(doc)
        return parts, problems

    def try_merge(
        self, *, resource: dict[str, Any] | None, source_url: str
    ) -> tuple[Merged | None, list[str]]:
        """One look: the published manifest when every part is there and they merge, else
        ``None`` and what is wrong."""
        parts, problems = self.read_parts()
        if problems:
            return None, problems
        plan = plan_of_parts(parts)
        if plan is None:
            return None, ["the parts carry no plan matching their planDigest"]
        manifest = merge_parts(parts, plan=plan, resource=resource, source_url=source_url)
        if manifest is None:
            return None, [
                f"the {self.shards} parts of run {self.run} do not hold every clip of one plan "
                "exactly once (a part of another run or plan)"
            ]
        data = dump_document(relative_uris(manifest, self.publisher.uri(MANIFEST_NAME)))
        uri = self._publish_manifest(data)
        merged = Merged(
            uri,
            [SegmentResult.model_validate(r) for r in manifest["segments"]],
            SourceInfo.model_validate(manifest["source"]),
            plan,
        )
        return merged, []

    def merge(
        self,
        *,
        resource: dict[str, Any] | None,
        source_url: str,
        wait_seconds: float = MERGE_WAIT_SECONDS,
    ) -> Merged:
        """Merge once every part is visible, looking again with backoff (0.5 s doubling to
        15 s) for at most ``wait_seconds``; raises WorkerError(STORAGE, ``PartsMissing``)
        naming the parts still missing after that."""
        deadline = self.clock() + wait_seconds
        delay = MERGE_FIRST_DELAY
        looks = 0
        while True:
            looks += 1
            merged, problems = self.try_merge(resource=resource, source_url=source_url)
            if merged is not None:
                return merged
            left = deadline - self.clock()
            if left <= 0:
                shown = "; ".join(problems[:5]) + (
                    f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
                )
                raise WorkerError(
                    ExitCode.STORAGE,
                    "PartsMissing",
                    f"every shard finished but after {looks} looks in {wait_seconds:.0f}s the "
                    f"parts of run {self.run} cannot be merged: {shown}",
                )
            self.sleep(min(delay, left))
            delay = min(MERGE_MAX_DELAY, delay * 2)

    def _publish_manifest(self, data: bytes) -> str:
        path = self.work_dir / MANIFEST_NAME
        path.write_bytes(data)
        record = Record(sha256=sha256_file(path), bytes=path.stat().st_size)
        return self.publisher.publish(path, MANIFEST_NAME, record).uri
