"""``videojobs-worker``: the entry point of the job image.

- ``videojobs-worker run``: cluster mode. Reads :class:`~videojobs.models.WorkerInput` JSON from
  the file named by ``VIDEOJOBS_INPUT_FILE`` (the run's mounted input ConfigMap; ``--input
  FILE`` or ``VIDEOJOBS_INPUT`` itself for local runs), reports to the resource's status,
  publishes to the PVC mount or S3, exits with a code from ``docs/worker-contract.md``.
- ``videojobs-worker merge``: the merge step of a sharded run (a Job the operator creates once
  every shard completed): merges the shards' parts into the run's manifest, waiting with backoff
  for parts not visible yet (``--wait-seconds``).
- ``videojobs-worker doctor``: checks ffmpeg, ffprobe, yt-dlp (and its age), the JavaScript
  runtime yt-dlp needs for YouTube, the EJS solver scripts, scratch space and (with an input) the
  storage backend; one line per check, non-zero exit when one fails.

Paths can be moved for tests and odd clusters with ``VIDEOJOBS_SCRATCH`` (default ``/scratch``),
``VIDEOJOBS_OUTPUT_ROOT`` (``/output``) and ``VIDEOJOBS_COOKIES_FILE``.
"""

from __future__ import annotations

import argparse
import gzip
import logging
import os
import re
import resource
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from videojobs.models import INPUT_ENV, INPUT_FILE_ENV, ExitCode, WorkerInput
from videojobs.models.worker import COOKIES_MOUNT, OUTPUT_MOUNT, SCRATCH_MOUNT, SHARD_INDEX_ENV
from videojobs_worker.errors import WorkerError
from videojobs_worker.progress import (
    ClusterReporter,
    NullReporter,
    Reporter,
    TerminalReporter,
    report_failure,
    write_termination_log,
)

log = logging.getLogger("videojobs_worker")

if TYPE_CHECKING:  # the entry points import publish where they use it
    from videojobs_worker.publish import Publisher


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("botocore", "boto3", "s3transfer", "urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def scratch_dir() -> Path:
    return Path(os.environ.get("VIDEOJOBS_SCRATCH", SCRATCH_MOUNT))


def output_root() -> Path:
    return Path(os.environ.get("VIDEOJOBS_OUTPUT_ROOT", OUTPUT_MOUNT))


def _usage_error(message: str) -> int:
    print(f"videojobs-worker: {message}", file=sys.stderr)
    write_termination_log(int(ExitCode.USAGE), "Usage", message)
    return int(ExitCode.USAGE)


def destination(worker_input: WorkerInput) -> tuple[str, str] | None:
    """``(namespace, name)`` of the resource, for default output paths (``publisher_for``)."""
    ref = worker_input.resource
    return (ref.namespace, ref.name) if ref is not None else None


def _input_publisher(worker_input: WorkerInput) -> Publisher:
    """The publisher for a cluster run's output, its S3 traffic held to the cluster's network
    policy. Raises WorkerError."""
    from videojobs_worker.guard import NetworkPolicy
    from videojobs_worker.publish import publisher_for

    return publisher_for(
        worker_input.spec.output.storage,
        pvc_root=output_root(),
        destination=destination(worker_input),
        policy=NetworkPolicy.cluster(
            allow_private=worker_input.allow_private_networks,
            allowed_networks=worker_input.allowed_networks,
        ),
        trusted_endpoints=worker_input.trusted_s3_endpoints,
    )


def _read_input_file(path: str) -> str:
    """The input file, or its gzipped sibling ``<path>.gz`` (a very large spec)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        packed = Path(f"{path}.gz")
        if not packed.exists():
            raise WorkerError(
                ExitCode.USAGE, "InputUnreadable", f"{path}: no such file (nor {packed.name})"
            ) from None
        try:
            return gzip.decompress(packed.read_bytes()).decode("utf-8")
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise WorkerError(ExitCode.USAGE, "InputUnreadable", f"{packed}: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkerError(ExitCode.USAGE, "InputUnreadable", f"{path}: {exc}") from None


def load_input(path: str | None) -> WorkerInput:
    """The WorkerInput from ``--input FILE``, the file named by ``VIDEOJOBS_INPUT_FILE`` (the
    run's mounted input ConfigMap) or ``VIDEOJOBS_INPUT``; raises WorkerError(USAGE)."""
    source = INPUT_ENV
    if path or os.environ.get(INPUT_FILE_ENV):
        source = path or os.environ[INPUT_FILE_ENV]
        text = _read_input_file(source)
    else:
        text = os.environ.get(INPUT_ENV, "")
        if not text.strip():
            raise WorkerError(
                ExitCode.USAGE, "NoInput", f"neither {INPUT_FILE_ENV} nor {INPUT_ENV} is set"
            )
    try:
        return WorkerInput.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise WorkerError(
            ExitCode.USAGE, "InvalidInput", f"{source}: {where}: {first['msg']}"
        ) from None


def shard_index(worker_input: WorkerInput) -> int:
    """This pod's shard: ``JOB_COMPLETION_INDEX`` (set by the Job controller in an Indexed Job's
    pods) for a sharded run, else 0; raises WorkerError(USAGE) when it is missing or wrong."""
    if worker_input.shards <= 1:
        return 0
    raw = os.environ.get(SHARD_INDEX_ENV, "")
    try:
        index = int(raw)
    except ValueError:
        index = -1
    if not 0 <= index < worker_input.shards:
        raise WorkerError(
            ExitCode.USAGE,
            "BadShardIndex",
            f"a run of {worker_input.shards} shards needs {SHARD_INDEX_ENV} in "
            f"0..{worker_input.shards - 1}, not {raw!r}",
        )
    return index


def _cmd_run(args: argparse.Namespace) -> int:
    from videojobs_worker.guard import NetworkPolicy
    from videojobs_worker.runner import Runner, RunOptions, run_job

    try:
        worker_input = load_input(args.input)
        policy = NetworkPolicy.cluster(
            allow_private=worker_input.allow_private_networks,
            allowed_networks=worker_input.allowed_networks,
        )
        index = shard_index(worker_input)
    except WorkerError as err:
        return _usage_error(err.message)
    spec = worker_input.spec
    reporter = _reporter_for(worker_input, no_report=args.no_report)
    cookies: Path | None = None
    if spec.source.cookies_secret_ref is not None:
        cookies = Path(os.environ.get("VIDEOJOBS_COOKIES_FILE", f"{COOKIES_MOUNT}/cookies.txt"))
    try:
        try:
            publisher = _input_publisher(worker_input)
        except WorkerError as err:
            report_failure(reporter, err)
            return int(err.exit_code)
        runner = Runner(
            worker_input,
            reporter=reporter,
            publisher=publisher,
            options=RunOptions(
                scratch=scratch_dir(), policy=policy, cookies_file=cookies, shard_index=index
            ),
        )
        code, result = run_job(runner)
        if result is not None and result.manifest_uri is None:
            log.info(
                "shard %s published %d clips (%d resumed) and its part; the run's merge step "
                "publishes the manifest",
                result.shard,
                len(result.segments),
                len(result.skipped),
            )
        elif result is not None:
            log.info(
                "published %d clips (%d resumed), manifest %s",
                len(result.segments),
                len(result.skipped),
                result.manifest_uri,
            )
        return code
    finally:
        reporter.close()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        log.info("worker process peak RSS: %.0f MiB (ffmpeg children not included)", peak)


def _reporter_for(worker_input: WorkerInput, *, no_report: bool) -> Reporter:
    """The status reporter: the resource's status in a cluster, else a terminal or nothing."""
    if worker_input.resource is not None and not no_report:
        try:
            return ClusterReporter(
                worker_input.resource, interval=worker_input.progress_interval_seconds
            )
        except Exception as exc:  # no cluster config: still do the work, log the problem
            log.warning("cannot report to the Kubernetes API (%s); continuing without", exc)
            return NullReporter()
    return TerminalReporter() if sys.stderr.isatty() else NullReporter()


def _cmd_merge(args: argparse.Namespace) -> int:
    """The merge step of a sharded run: merge every shard's part into the manifest."""
    from videojobs_worker.mergestep import MergeOptions, run_merge

    try:
        worker_input = load_input(args.input)
    except WorkerError as err:
        return _usage_error(err.message)
    reporter = _reporter_for(worker_input, no_report=args.no_report)
    try:
        try:
            publisher = _input_publisher(worker_input)
        except WorkerError as err:
            report_failure(reporter, err)
            return int(err.exit_code)
        options = MergeOptions(work_dir=scratch_dir() / "merge", wait_seconds=args.wait_seconds)
        code, _ = run_merge(worker_input, publisher, reporter, options)
        return code
    finally:
        reporter.close()


def _tool_version(tool: str) -> tuple[bool, str]:
    path = shutil.which(tool)
    if path is None:
        return False, f"{tool}: not found on PATH"
    try:
        proc = subprocess.run(
            [tool, "-hide_banner", "-version"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{tool}: cannot run {path}: {exc}"
    first = (proc.stdout or proc.stderr).splitlines()[:1]
    match = re.search(r"version (\S+)", first[0]) if first else None
    if proc.returncode != 0 or match is None:
        return False, f"{tool}: {path} did not report a version"
    return True, f"{tool}: {match.group(1)} ({path})"


def _cmd_doctor(args: argparse.Namespace) -> int:
    from videojobs_worker.jsruntime import doctor_checks

    checks: list[tuple[bool, str]] = [_tool_version("ffmpeg"), _tool_version("ffprobe")]
    warnings: list[str] = []
    scratch = scratch_dir()
    for status, line in doctor_checks(scratch):
        if status == "warn":
            warnings.append(line)
        else:
            checks.append((status == "ok", line))
    try:
        scratch.mkdir(parents=True, exist_ok=True)
        probe = scratch / ".doctor"
        probe.write_bytes(b"ok")
        probe.unlink()
        free = shutil.disk_usage(scratch).free
        ok = free >= args.min_free_mib * 2**20
        checks.append(
            (ok, f"scratch: {scratch} writable, {free / 2**30:.1f} GiB free"
             + ("" if ok else f" (below {args.min_free_mib} MiB)"))
        )  # fmt: skip
    except OSError as exc:
        checks.append((False, f"scratch: {scratch} not writable: {exc.strerror or exc}"))
    if args.input or os.environ.get(INPUT_FILE_ENV) or os.environ.get(INPUT_ENV):
        try:
            worker_input = load_input(args.input)
            publisher = _input_publisher(worker_input)
            checks.append((True, f"storage: {publisher.check()}"))
        except WorkerError as err:
            checks.append((False, f"storage: {err.message}"))
    else:
        checks.append((True, f"storage: not checked ({INPUT_ENV} not set)"))
    for ok, line in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {line}")
    for line in warnings:
        print(f"warn {line}")
    return 0 if all(ok for ok, _ in checks) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videojobs-worker", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help=f"run the job in {INPUT_ENV}")
    run.add_argument("--input", metavar="FILE", help="read the WorkerInput JSON from FILE")
    run.add_argument("--no-report", action="store_true", help="do not patch the resource status")
    run.set_defaults(func=_cmd_run)
    merge = sub.add_parser(
        "merge", help="merge the parts of a sharded run into its manifest (after every shard)"
    )
    merge.add_argument("--input", metavar="FILE", help="read the WorkerInput JSON from FILE")
    merge.add_argument("--no-report", action="store_true", help="do not patch the resource status")
    merge.add_argument(
        "--wait-seconds",
        type=float,
        default=300.0,
        help="how long to look again (with backoff) for parts not visible yet (default 300)",
    )
    merge.set_defaults(func=_cmd_merge)
    doctor = sub.add_parser("doctor", help="check tools, scratch space and storage")
    doctor.add_argument("--input", metavar="FILE", help="WorkerInput JSON (for the storage check)")
    doctor.add_argument("--min-free-mib", type=int, default=512, help="least free scratch space")
    doctor.set_defaults(func=_cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, which is our USAGE code too
        return int(exc.code or 0)
    _setup_logging(args.verbose)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
