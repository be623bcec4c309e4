"""The ``videojobs`` command line: validate, plan, run, demo, serve, crd.

Exit codes: 0 success; 1 invalid input (one ``FILE: path[, line N]: message`` line per problem on
stderr); 2 usage errors and missing optional parts (the worker package for ``run``/``demo``).
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from videojobs.errors import InvalidSpec
from videojobs.models import SegmentPlan
from videojobs.times import TimeValueError, format_duration, format_timestamp, parse_time

T = TypeVar("T")


def _duration_arg(value: str) -> float:
    try:
        return parse_time(value)
    except TimeValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _report(file: str, exc: InvalidSpec) -> None:
    for problem in exc.problems:
        print(f"{file}: {problem}", file=sys.stderr)


class _OverBudget(InvalidSpec):
    """Reading the manifest and its transcript needs more than the parsing budget."""


def _bounded(read: Callable[[], T]) -> T:
    """``read()`` within the parsing memory budget; running out is an InvalidSpec."""
    from videojobs.budget import budget_message, memory_budget
    from videojobs.errors import Problem

    try:
        with memory_budget():
            return read()
    except MemoryError:
        raise _OverBudget(Problem("file", budget_message())) from None


def _cmd_validate(args: argparse.Namespace) -> int:
    from videojobs.validation import check_file

    failed = False
    for file in args.files:
        try:
            loaded = _bounded(functools.partial(check_file, Path(file), args.duration))
        except InvalidSpec as exc:
            _report(file, exc)
            failed = True
            continue
        for job in loaded:
            name = job.job.metadata.name or "(unnamed)"
            clips = f"{len(job.plan.segments)} clips" if job.plan else "plan deferred"
            print(f"{file}: {name}: valid ({clips})")
            for note in job.notes:
                print(f"{file}: {name}: note: {note}")
    return 1 if failed else 0


def _table(plan: SegmentPlan) -> str:
    header: tuple[str, ...] = ("#", "ID", "TITLE", "START", "END", "LENGTH", "FILE STEM")
    rows: list[tuple[str, ...]] = [
        (
            str(s.index),
            s.knowledge_id or "-",
            s.title if len(s.title) <= 40 else s.title[:39] + "…",
            format_timestamp(s.start),
            format_timestamp(s.end),
            format_duration(s.duration),
            s.stem,
        )
        for s in plan.segments
    ]
    if any(s.confidence is not None for s in plan.segments):  # segmentation.auto's proposal
        header = (*header, "CONFIDENCE")
        rows = [
            (*row, "-" if s.confidence is None else f"{s.confidence:.2f}")
            for row, s in zip(rows, plan.segments, strict=True)
        ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    total = f"{len(plan.segments)} clips, {format_duration(plan.total_duration)} in total"
    if plan.source_duration is not None:
        total += f" of a {format_duration(plan.source_duration)} source"
    lines += ["", total]
    lines += [f"note: {note}" for note in plan.notes]
    return "\n".join(lines) + "\n"


def _cmd_plan(args: argparse.Namespace) -> int:
    from videojobs.validation import load_job, read_source_info

    try:
        info = read_source_info(Path(args.source_info)) if args.source_info else None
        _, _, plan = _bounded(lambda: load_job(Path(args.file), args.duration, info))
    except InvalidSpec as exc:
        _report(args.file, exc)
        return 1
    if args.output == "json":
        sys.stdout.write(json.dumps(plan.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(_table(plan))
    return 0


def _worker_missing(exc: ImportError) -> int:
    print(
        f"videojobs: this command needs the worker (videojobs_worker.local), which cannot be "
        f"imported: {exc}. Install it with: pip install 'videojobs[worker]'",
        file=sys.stderr,
    )
    return 2


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        from videojobs_worker.local import run_local
    except ImportError as exc:
        return _worker_missing(exc)
    from videojobs.models import ExitCode
    from videojobs.validation import load_job

    try:  # the manifest and its transcript parse within the budget before the run reads them
        _bounded(functools.partial(load_job, Path(args.file)))
    except _OverBudget as exc:
        _report(args.file, exc)
        return int(ExitCode.INVALID_SPEC)
    except InvalidSpec:
        pass  # reported by the run itself (or a transcript it fetches)
    return int(
        run_local(
            Path(args.file), args.out, progress=not args.no_progress, parallelism=args.parallelism
        )
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    try:
        from videojobs_worker.local import run_demo
    except ImportError as exc:
        return _worker_missing(exc)
    return int(run_demo(args.out, progress=not args.no_progress))


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        from videojobs_gateway.serve import serve_local
        from videojobs_gateway.settings import GatewaySettings
    except ImportError as exc:
        print(
            f"videojobs: serve needs the gateway (videojobs_gateway), which cannot be imported: "
            f"{exc}. Install it with: pip install 'videojobs[gateway,worker]'",
            file=sys.stderr,
        )
        return 2
    try:
        settings = GatewaySettings()
    except ValueError as exc:  # pydantic's ValidationError: a VIDEOJOBS_GATEWAY_* variable
        print(f"videojobs serve: {exc}", file=sys.stderr)
        return 2
    if args.auth is not None:
        settings = settings.model_copy(update={"auth_mode": args.auth})
    if args.api_keys is not None:
        settings = settings.model_copy(update={"api_keys_file": args.api_keys})
    if settings.auth_mode == "apikey":
        keys = settings.api_keys_file
        if keys is None or not keys.is_file():
            found = "no keys file given" if keys is None else f"{keys}: no such file"
            print(
                f"videojobs serve: auth mode apikey needs a keys file ({found}): pass "
                "--api-keys FILE or set VIDEOJOBS_GATEWAY_API_KEYS_FILE; the file lists "
                "{name, sha256, namespace} entries (see docs/gateway.md)",
                file=sys.stderr,
            )
            return 2
    try:
        return serve_local(
            args.data,
            host=args.host,
            port=args.port,
            concurrency=args.concurrency,
            settings=settings,
            allow_unauthenticated=args.allow_unauthenticated,
            allow_local_files=args.allow_local_files,
            allow_private_networks=args.allow_private_networks,
        )
    except ValueError as exc:  # a keys file that does not parse, a bad setting
        print(f"videojobs serve: {exc}", file=sys.stderr)
        return 2


def _cmd_crd(args: argparse.Namespace) -> int:
    from videojobs.crd import render_crd

    sys.stdout.write(render_crd())
    return 0


def _version() -> str:
    try:
        return importlib.metadata.version("videojobs")
    except importlib.metadata.PackageNotFoundError:  # a source tree that is not installed
        from videojobs import __version__

        return __version__


_DURATION_HELP = "the source length (e.g. 1h2m, 3720, 01:02:00): clamp to it, check starts"


def _add_validate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    validate = sub.add_parser(
        "validate", help="check manifests: fields, transcript, plan (exit 1 on any problem)"
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="YAML manifest(s)")
    validate.add_argument("--duration", type=_duration_arg, metavar="T", help=_DURATION_HELP)
    validate.set_defaults(func=_cmd_validate)


def _add_plan(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plan = sub.add_parser("plan", help="show the clips a manifest would produce")
    plan.add_argument("file", metavar="FILE", help="YAML manifest with one VideoProcessingJob")
    plan.add_argument("--duration", type=_duration_arg, metavar="T", help=_DURATION_HELP)
    plan.add_argument("--output", "-o", choices=("table", "json"), default="table")
    plan.add_argument(
        "--source-info",
        metavar="INFO.json",
        help="a saved yt-dlp info JSON (--write-info-json) for jobs cut by the source's "
        "chapters or captions (segmentation.fromChapters, transcript.fromSource)",
    )
    plan.set_defaults(func=_cmd_plan)


def _add_run_and_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="run a job locally (download, cut, publish)")
    run.add_argument("file", metavar="FILE", help="YAML manifest with one VideoProcessingJob")
    run.add_argument("--out", type=Path, default=None, metavar="DIR", help="output directory")
    run.add_argument("--no-progress", action="store_true", help="no progress output")
    run.add_argument(
        "--parallelism",
        type=int,
        default=None,
        choices=range(1, 17),
        metavar="K",
        help="cut in K shards, one process each (default: spec.parallelism, else 1)",
    )
    run.set_defaults(func=_cmd_run)

    demo = sub.add_parser("demo", help="generate a sample video + transcript and cut it")
    demo.add_argument(
        "--out", type=Path, default=Path("videojobs-demo"), metavar="DIR", help="output directory"
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress output")
    demo.set_defaults(func=_cmd_demo)


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the REST gateway and web console on this machine")
    serve.add_argument("--data", type=Path, required=True, metavar="DIR", help="jobs and clips")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--concurrency",
        type=int,
        default=1,
        metavar="N",
        help="jobs that run at the same time (default 1: one at a time; the others wait "
        "in submission order, first come first served, and report their queue position); "
        "raise N to run more at once (each takes a worker process and CPU)",
    )
    serve.add_argument(
        "--auth",
        choices=("none", "apikey", "header"),
        default=None,
        help="auth mode (default: VIDEOJOBS_GATEWAY_AUTH_MODE or none); apikey needs "
        "--api-keys FILE or VIDEOJOBS_GATEWAY_API_KEYS_FILE",
    )
    serve.add_argument(
        "--api-keys",
        type=Path,
        default=None,
        metavar="FILE",
        help="auth apikey: the keys file, a YAML/JSON list of {name, sha256, namespace} "
        "(default: VIDEOJOBS_GATEWAY_API_KEYS_FILE)",
    )
    serve.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="allow auth mode none on a non-loopback address",
    )
    serve.add_argument(
        "--allow-local-files",
        type=Path,
        default=None,
        metavar="DIR",
        help="jobs may name local files under DIR (symlinks resolved; default: any file with "
        "auth none on a loopback bind, none otherwise)",
    )
    serve.add_argument(
        "--allow-private-networks",
        action="store_true",
        help="jobs may fetch loopback and private addresses (default: only with auth none on a "
        "loopback bind)",
    )
    serve.set_defaults(func=_cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; sub-commands register themselves here."""
    parser = argparse.ArgumentParser(
        prog="videojobs", description="Cut long videos into named per-topic clips."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_validate(sub)
    _add_plan(sub)
    _add_run_and_demo(sub)
    _add_serve(sub)
    crd = sub.add_parser("crd", help="print the CustomResourceDefinition generated from the models")
    crd.set_defaults(func=_cmd_crd)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``videojobs`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
