"""The subprocess that runs one job of the local backend: the worker's own Runner.

``python -m videojobs_gateway.localworker --input IN.json --out DIR`` runs the
:class:`~videojobs.models.WorkerInput` in ``IN.json`` with the same
:class:`~videojobs_worker.runner.Runner` as the cluster's worker pod and as ``videojobs run``,
publishing into ``DIR``. Instead of patching a resource's status it writes the same status patch
(``{"status": {...}}``) as one JSON line on stdout whenever progress changes (at most every
``--interval`` seconds, stage changes and the final state at once). The exit code is the
worker's (``docs/worker-contract.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from videojobs.budget import budget_message, memory_budget
from videojobs.models import ExitCode, WorkerInput
from videojobs_worker.errors import WorkerError
from videojobs_worker.guard import NetworkPolicy
from videojobs_worker.progress import Reporter
from videojobs_worker.publish import DirectoryPublisher
from videojobs_worker.runner import Runner, RunOptions, local_source_path, run_job


class LineReporter(Reporter):
    """Writes the status patch as a JSON line, throttled to one per ``interval``."""

    def __init__(self, stream: TextIO, interval: float = 0.5) -> None:
        super().__init__()
        self._stream = stream
        self._interval = interval
        self._last = 0.0
        self._write_lock = threading.Lock()

    def _emit(self, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._last < self._interval:
            return
        self._last = now
        self._write(self.status_patch())

    def _write(self, patch: dict[str, Any]) -> None:
        with self._write_lock:
            try:
                self._stream.write(json.dumps(patch, separators=(",", ":")) + "\n")
                self._stream.flush()
            except (BrokenPipeError, ValueError):
                pass  # the gateway went away; the job still finishes and publishes

    def close(self) -> None:
        self._write(self.status_patch())


def confine_source(
    worker_input: WorkerInput, root: Path, deny: Sequence[Path], base_dir: Path | None
) -> WorkerInput:
    """The input with its local source replaced by the resolved file, if that is under
    ``root`` and under none of ``deny``; raises ``BLOCKED_ADDRESS`` otherwise.

    The answer never depends on whether a file outside ``root`` exists (no existence oracle),
    and the runner then opens exactly the checked path (a symlink swapped later changes
    nothing)."""
    url = worker_input.spec.source.url
    local = local_source_path(url, base_dir)
    if local is None:
        return worker_input
    resolved = Path(os.path.abspath(local)).resolve()
    inside = resolved.is_relative_to(root.resolve())
    if not inside or any(resolved.is_relative_to(d.resolve()) for d in deny):
        raise WorkerError(
            ExitCode.BLOCKED_ADDRESS,
            "BlockedFile",
            "refusing a local file outside the folder this server shares "
            "(videojobs serve --allow-local-files)",
        )
    spec = worker_input.spec.model_copy(
        update={"source": worker_input.spec.source.model_copy(update={"url": str(resolved)})}
    )
    return worker_input.model_copy(update={"spec": spec})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="videojobs_gateway.localworker")
    parser.add_argument("--input", required=True, type=Path, help="WorkerInput JSON file")
    parser.add_argument("--out", required=True, type=Path, help="publish clips here")
    parser.add_argument("--base-dir", type=Path, default=None, help="resolve relative paths")
    parser.add_argument("--interval", type=float, default=0.5, help="least time between lines")
    parser.add_argument("--allow-files", action="store_true", help="sources may be local files")
    parser.add_argument(
        "--scratch",
        type=Path,
        default=None,
        help="scratch folder (the gateway removes it after the worker, even a killed one)",
    )
    parser.add_argument(
        "--files-root", type=Path, default=None, help="sources may be local files under DIR only"
    )
    parser.add_argument(
        "--deny", type=Path, action="append", default=[], help="never read files under DIR"
    )
    args = parser.parse_args(argv)
    worker_input = WorkerInput.model_validate_json(args.input.read_text(encoding="utf-8"))
    reporter = LineReporter(sys.stdout, args.interval)
    base_dir = args.base_dir.absolute() if args.base_dir else None
    if args.files_root is not None:
        try:
            worker_input = confine_source(worker_input, args.files_root, args.deny, base_dir)
        except WorkerError as err:
            print(f"localworker: {err.message}", file=sys.stderr)
            reporter.fail(err.to_error_info())
            return int(err.exit_code)
    policy = NetworkPolicy(
        allow_private=worker_input.allow_private_networks,
        allow_files=args.allow_files or args.files_root is not None,
    )
    if args.scratch is not None:
        args.scratch.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="videojobs-job-", dir=args.scratch))
    try:
        runner = Runner(
            worker_input,
            reporter=reporter,
            publisher=DirectoryPublisher(args.out),
            options=RunOptions(
                scratch=scratch,
                policy=policy,
                base_dir=base_dir,
            ),
        )
        try:
            # the transcript is parsed within the parsing memory budget (a hostile transcript
            # must not grow the worker to gigabytes); the run reuses the parsed transcript
            with memory_budget():
                runner.resolve_transcript()
        except MemoryError:
            too_big = WorkerError(ExitCode.INVALID_SPEC, "TranscriptTooLarge", budget_message())
            reporter.fail(too_big.to_error_info())
            return int(too_big.exit_code)
        except WorkerError as failed:
            reporter.fail(failed.to_error_info())
            return int(failed.exit_code)
        code, _result = run_job(runner)
    except Exception as exc:
        print(f"localworker: {exc}", file=sys.stderr)
        code = int(ExitCode.INTERNAL)
    finally:
        reporter.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
