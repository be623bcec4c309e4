"""The merge step of a sharded run (``videojobs-worker merge``): once every shard of the run's
Indexed Job completed, merge the shards' parts into the run's manifest, publish it and report
the run-wide status fields (``manifestUri``, ``segments``, ``source``, ``segmentsSummary``).

Parts that are not visible yet (an NFS client cache, an eventually consistent listing) are
looked for again with backoff for a bounded time; after that the step fails with
``PartsMissing`` and names them (:class:`~videojobs_worker.shardparts.PartsMerger`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from videojobs.models import ExitCode, WorkerInput
from videojobs_worker.errors import WorkerError
from videojobs_worker.progress import Reporter, report_failure, write_termination_log
from videojobs_worker.publish import Publisher
from videojobs_worker.shardparts import MERGE_WAIT_SECONDS, Merged, PartsMerger

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MergeOptions:
    """Where the merge step writes its files, how long it waits for the parts, and the run key
    (default the run's Job name, as the shards use it)."""

    work_dir: Path
    wait_seconds: float = MERGE_WAIT_SECONDS
    run_key: str | None = None
    sleep: Callable[[float], None] = time.sleep


def run_merge(
    worker_input: WorkerInput, publisher: Publisher, reporter: Reporter, options: MergeOptions
) -> tuple[int, Merged | None]:
    """Merge the parts and publish the manifest; the exit code and what was merged."""
    ref = worker_input.resource
    run = options.run_key or (ref.job_name if ref is not None else None) or "local"
    reporter.merging = True
    try:
        if worker_input.shards <= 1:
            raise WorkerError(
                ExitCode.USAGE, "NotSharded", "the merge step is for runs of 2 or more shards"
            )
        options.work_dir.mkdir(parents=True, exist_ok=True)
        merger = PartsMerger(
            publisher, options.work_dir, run, worker_input.shards, sleep=options.sleep
        )
        merged = merger.merge(
            resource=ref.to_dict() if ref is not None else None,
            source_url=worker_input.spec.source.url,
            wait_seconds=options.wait_seconds,
        )
    except WorkerError as err:
        report_failure(reporter, err)
        return int(err.exit_code), None
    reporter.merged(merged.segments, merged.source, len(merged.plan.segments))
    reporter.finish(merged.uri)
    summary = f"{len(merged.segments)} clips from {worker_input.shards} parts: {merged.uri}"
    log.info("merged %s", summary)
    write_termination_log(0, "Ok", summary, manifest_uri=merged.uri)
    return 0, merged
