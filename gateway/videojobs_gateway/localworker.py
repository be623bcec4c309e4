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
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from videojobs.models import ExitCode, WorkerInput
from videojobs_worker.guard import NetworkPolicy
from videojobs_worker.progress import Reporter
from videojobs_worker.publish import DirectoryPublisher
from videojobs_worker.runner import Runner, RunOptions, run_job


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="videojobs_gateway.localworker")
    parser.add_argument("--input", required=True, type=Path, help="WorkerInput JSON file")
    parser.add_argument("--out", required=True, type=Path, help="publish clips here")
    parser.add_argument("--base-dir", type=Path, default=None, help="resolve relative paths")
    parser.add_argument("--interval", type=float, default=0.5, help="least time between lines")
    parser.add_argument("--allow-files", action="store_true", help="sources may be local files")
    args = parser.parse_args(argv)
    worker_input = WorkerInput.model_validate_json(args.input.read_text(encoding="utf-8"))
    reporter = LineReporter(sys.stdout, args.interval)
    policy = NetworkPolicy(
        allow_private=worker_input.allow_private_networks, allow_files=args.allow_files
    )
    scratch = Path(tempfile.mkdtemp(prefix="videojobs-job-"))
    try:
        runner = Runner(
            worker_input,
            reporter=reporter,
            publisher=DirectoryPublisher(args.out),
            options=RunOptions(
                scratch=scratch,
                policy=policy,
                base_dir=args.base_dir.absolute() if args.base_dir else None,
            ),
        )
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
