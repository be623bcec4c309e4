"""The shard-part protocol: each shard of a sharded run publishes one part (its clips, its probe
of the source, its download) under ``<PARTS_DIR>/<run>/<index>.json``; the shard that finds
every part of its run merges them into the run's manifest and publishes it.

The documents and the merge are pure (:func:`part_document`, :func:`merge_parts`);
:class:`ShardParts` reads and publishes them through a :class:`~videojobs_worker.publish.Publisher`.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videojobs.models import SegmentPlan, SegmentResult, SourceInfo
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


@dataclass(frozen=True)
class Merged:
    """The run's manifest, published by this shard."""

    uri: str
    segments: list[SegmentResult]
    source: SourceInfo


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
        resource: dict[str, Any] | None,
        source_url: str,
    ) -> Merged | None:
        """Publish this shard's part (kept as it is when a retried shard that cut nothing and
        did not probe finds it published); merge and publish the manifest when every part is
        there, else ``None``."""
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
            self._publish_part(dump_document(part))
        merged = self.merge(plan, resource=resource, source_url=source_url)
        if merged is None:
            return None
        uri, manifest = merged
        return Merged(
            uri,
            [SegmentResult.model_validate(r) for r in manifest["segments"]],
            SourceInfo.model_validate(manifest["source"]),
        )

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

    def merge(
        self, plan: SegmentPlan, *, resource: dict[str, Any] | None, source_url: str
    ) -> tuple[str, dict[str, Any]] | None:
        """Publish the manifest when every shard's part of this run is there; else ``None``."""
        parts: list[dict[str, Any]] = []
        for index in range(self.shards):
            raw = self.publisher.read(part_name(self.run, index))
            if raw is None:
                return None
            try:
                parts.append(json.loads(raw))
            except ValueError:
                return None
        manifest = merge_parts(parts, plan=plan, resource=resource, source_url=source_url)
        if manifest is None:
            return None
        data = dump_document(relative_uris(manifest, self.publisher.uri(MANIFEST_NAME)))
        return self._publish_manifest(data), manifest

    def _write(self, data: bytes, filename: str) -> tuple[Path, Record]:
        path = self.work_dir / filename
        path.write_bytes(data)
        return path, Record(sha256=sha256_file(path), bytes=path.stat().st_size)

    def _publish_part(self, data: bytes) -> None:
        path, record = self._write(data, f"part-{self.shard}.json")
        self.publisher.publish(path, part_name(self.run, self.shard), record)

    def _publish_manifest(self, data: bytes) -> str:
        path, record = self._write(data, MANIFEST_NAME)
        for attempt in range(5):
            try:
                return self.publisher.publish(path, MANIFEST_NAME, record).uri
            except WorkerError:
                # Two shards finishing at once both merge, into the same bytes; one's write may
                # remove the other's temporary file (the directory backend's orphan clean-up).
                if self.publisher.read(MANIFEST_NAME) == data:
                    return self.publisher.uri(MANIFEST_NAME)
                if attempt == 4:
                    raise
                time.sleep(random.uniform(0.05, 0.3))
        raise AssertionError("unreachable")
