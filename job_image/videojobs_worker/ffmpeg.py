"""A small typed layer over the ffmpeg and ffprobe command-line tools.

* argument lists are plain ``list[str]`` built by pure functions (unit-tested without ffmpeg);
* :func:`run_ffmpeg` runs one with ``-progress pipe:1 -nostats``, turns the ``key=value`` blocks
  into progress fractions, stops promptly when a :class:`threading.Event` is set (SIGTERM, then
  SIGKILL after a short grace) and maps failures to :class:`WorkerError`;
* :func:`ffprobe` wraps ``ffmpeg.probe`` from ffmpeg-python and classifies its errors.
"""

from __future__ import annotations

import collections
import errno
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ffmpeg as ffmpeg_python

from videojobs.models import ExitCode
from videojobs_worker.errors import WorkerError

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"
STDERR_TAIL_LINES = 12
"""How many stderr lines an error message keeps."""
KILL_GRACE_SECONDS = 2.0
"""Time between SIGTERM and SIGKILL when a run is stopped."""

_NO_SPACE_MARKERS = ("No space left on device", "ENOSPC", "Disk quota exceeded")

ProgressCallback = Callable[[float], None]


def ffmpeg_argv(
    args: Iterable[str], *, progress: bool = True, loglevel: str = "error"
) -> list[str]:
    """The full ffmpeg command line for ``args`` (inputs, options, outputs).

    Adds ``-nostdin`` (ffmpeg must never read the terminal), ``-hide_banner``, the log level,
    ``-y`` (callers always write to temporary paths they own) and, with ``progress``, the
    machine-readable progress on stdout.
    """
    argv = [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", loglevel, "-y"]
    if progress:
        argv += ["-progress", "pipe:1", "-nostats"]
    return argv + list(args)


def seconds_arg(seconds: float) -> str:
    """A time for ffmpeg's command line, to the microsecond (ffmpeg's own resolution).

    ffmpeg rounds a seek target to the nearest tick of the stream's time base, so a time exact
    to the microsecond lands exactly on a frame whose time base is coarser than 2 µs.
    """
    return f"{seconds:.6f}"


@dataclass
class ProgressParser:
    """Turns ``-progress`` output (``key=value`` lines, blocks ending ``progress=...``) into
    fractions of ``duration`` seconds of output."""

    duration: float | None
    values: dict[str, str] = field(default_factory=dict)
    ended: bool = False

    def feed(self, line: str) -> float | None:
        """Consume one line; return the fraction done when it completes a block, else None."""
        key, sep, value = line.strip().partition("=")
        if not sep:
            return None
        self.values[key] = value
        if key != "progress":
            return None
        if value == "end":
            self.ended = True
            return 1.0
        return self.fraction()

    def out_time(self) -> float | None:
        """Seconds of output written so far, from the last complete block."""
        for key in ("out_time_us", "out_time_ms"):  # both are microseconds
            raw = self.values.get(key, "")
            if raw.lstrip("-").isdigit():
                return max(0.0, int(raw) / 1_000_000)
        return None

    def fraction(self) -> float:
        """Fraction done in [0, 1] (0 while unknown)."""
        out = self.out_time()
        if out is None or not self.duration or self.duration <= 0:
            return 0.0
        return min(1.0, out / self.duration)


@dataclass(frozen=True)
class RunResult:
    """What a finished ffmpeg run left behind."""

    argv: list[str]
    seconds: float
    stderr_tail: list[str]


def classify_failure(
    argv: Sequence[str], returncode: int, stderr_lines: Sequence[str]
) -> WorkerError:
    """The :class:`WorkerError` for a failed run: NO_SPACE when the disk is full, else MEDIA_TOOL
    with the last stderr lines."""
    tool = Path(argv[0]).name if argv else "ffmpeg"
    text = "\n".join(stderr_lines)
    if any(marker in text for marker in _NO_SPACE_MARKERS):
        return WorkerError(
            ExitCode.NO_SPACE,
            "NoSpace",
            f"{tool} ran out of disk space in the scratch volume; give the job more scratch "
            f"space (spec.worker.resources) or cut fewer/shorter clips. {tool} said: "
            + (stderr_lines[-1] if stderr_lines else "no space left on device"),
        )
    tail = "\n".join(stderr_lines[-STDERR_TAIL_LINES:]) or "(no error output)"
    return WorkerError(
        ExitCode.MEDIA_TOOL,
        "MediaToolFailed",
        f"{tool} exited with code {returncode}: {tail}",
    )


def run_ffmpeg(
    args: Iterable[str],
    *,
    duration: float | None = None,
    on_progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
) -> RunResult:
    """Run ffmpeg with ``args`` (see :func:`ffmpeg_argv`) and wait for it.

    ``on_progress`` receives fractions of ``duration`` (seconds of output expected) about twice a
    second. When ``stop`` is set, ffmpeg gets SIGTERM, then SIGKILL after
    :data:`KILL_GRACE_SECONDS`, and ``WorkerError(TERMINATED)`` is raised. Other failures raise
    :func:`classify_failure`'s error. Outputs are left for the caller to remove.
    """
    argv = ffmpeg_argv(args, progress=True)
    return run_process(argv, duration=duration, on_progress=on_progress, stop=stop)


def run_process(
    argv: Sequence[str],
    *,
    duration: float | None = None,
    on_progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
) -> RunResult:
    """Run an ffmpeg-like command whose stdout carries ``-progress`` blocks (see run_ffmpeg)."""
    if stop is not None and stop.is_set():
        raise _terminated(argv)
    started = time.monotonic()
    proc = _spawn(argv)
    stderr_tail: collections.deque[str] = collections.deque(maxlen=200)
    parser = ProgressParser(duration)

    def read_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            fraction = parser.feed(line)
            if fraction is not None and on_progress is not None:
                try:
                    on_progress(fraction)
                except Exception:  # a progress sink must never break a cut
                    pass

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            line = line.rstrip()
            if line:
                stderr_tail.append(line)

    readers = [
        threading.Thread(target=read_stdout, daemon=True),
        threading.Thread(target=read_stderr, daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        stopped = _wait_or_stop(proc, stop)
    finally:
        for reader in readers:
            reader.join(timeout=1.0)
    if stopped:
        raise _terminated(argv)
    lines = list(stderr_tail)
    if proc.returncode != 0:
        raise classify_failure(argv, proc.returncode, lines)
    return RunResult(list(argv), time.monotonic() - started, lines)


def _spawn(argv: Sequence[str]) -> subprocess.Popen[str]:
    """Start the command with its stdout and stderr piped; a missing or failing tool is a
    ``WorkerError`` (no space left: :func:`classify_failure`'s)."""
    try:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
    except FileNotFoundError as exc:
        raise WorkerError(
            ExitCode.MEDIA_TOOL,
            "MediaToolMissing",
            f"{argv[0]} is not installed or not on PATH ({exc})",
        ) from exc
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise classify_failure(argv, -1, [str(exc)]) from exc
        msg = f"cannot run {argv[0]}: {exc}"
        raise WorkerError(ExitCode.MEDIA_TOOL, "MediaToolFailed", msg) from exc


def _wait_or_stop(proc: subprocess.Popen[str], stop: threading.Event | None) -> bool:
    """Wait for ``proc`` to exit; True when ``stop`` was set first (``proc`` then terminated).
    Any exception while waiting (KeyboardInterrupt too) terminates ``proc`` and propagates."""
    try:
        while True:
            try:
                proc.wait(timeout=0.05)
                return False
            except subprocess.TimeoutExpired:
                pass
            if stop is not None and stop.is_set():
                terminate(proc)
                return True
    except BaseException:
        terminate(proc)
        raise


def terminate(proc: subprocess.Popen[Any], grace: float = KILL_GRACE_SECONDS) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; reap the process."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _terminated(argv: Sequence[str]) -> WorkerError:
    return WorkerError(
        ExitCode.TERMINATED,
        "Terminated",
        f"stopped while {Path(argv[0]).name if argv else 'ffmpeg'} was running",
    )


def ffprobe(path: Path | str, **options: Any) -> dict[str, Any]:
    """``ffprobe -show_format -show_streams -of json`` plus ``options`` (ffmpeg-python style:
    ``select_streams="v:0"`` becomes ``-select_streams v:0``).

    Raises ``WorkerError(MEDIA_TOOL)`` carrying ffprobe's error output; callers that know the
    file should be media turn that into NOT_A_VIDEO.
    """
    try:
        return ffmpeg_python.probe(str(path), cmd=FFPROBE, **options)
    except ffmpeg_python.Error as exc:
        stderr = exc.stderr.decode(errors="replace") if exc.stderr else ""
        raise classify_failure([FFPROBE], 1, [ln for ln in stderr.splitlines() if ln]) from exc
    except FileNotFoundError as exc:
        raise WorkerError(
            ExitCode.MEDIA_TOOL, "MediaToolMissing", f"ffprobe is not installed: {exc}"
        ) from exc


def ffprobe_csv(args: Sequence[str]) -> list[list[str]]:
    """Run ``ffprobe -v error -of csv=p=0 ARGS`` and split its lines into fields."""
    argv = [FFPROBE, "-v", "error", "-of", "csv=p=0", *args]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise WorkerError(
            ExitCode.MEDIA_TOOL, "MediaToolMissing", f"ffprobe is not installed: {exc}"
        ) from exc
    if proc.returncode != 0:
        raise classify_failure(argv, proc.returncode, proc.stderr.splitlines())
    return [line.split(",") for line in proc.stdout.splitlines() if line.strip()]


def compile_args(stream: Any) -> list[str]:
    """The argument list of an ffmpeg-python stream graph, without the leading ``ffmpeg``."""
    return list(ffmpeg_python.compile(stream, cmd=FFMPEG))[1:]
