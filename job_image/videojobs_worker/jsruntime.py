"""The JavaScript runtime yt-dlp needs for YouTube, and the facts ``doctor`` reports about it.

Since yt-dlp 2025.11.12, full YouTube support needs an external JavaScript runtime to solve the
player's challenges, plus the EJS solver scripts (the ``yt-dlp-ejs`` package that
``yt-dlp[default]`` brings). Without a runtime yt-dlp warns ``No supported JavaScript runtime
could be found`` and often finds only storyboard images, so downloads end ``Requested format is
not available``.

The worker installs Deno from PyPI (the ``deno`` package redistributes Deno's own binaries) and
tells yt-dlp exactly where it is (``js_runtimes``), with no remote components: solver scripts come
from the installed ``yt-dlp-ejs`` package, never from the network at run time.

Lookup order (:func:`find_js_runtime`): ``VIDEOJOBS_JS_RUNTIME`` (``deno``/``node``/``quickjs``/
``bun``, optionally ``NAME:PATH``, or ``none`` to disable), the ``deno`` package, then ``deno``,
``node`` (20 or newer), ``qjs`` and ``bun`` on ``PATH``.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNTIME_ENV = "VIDEOJOBS_JS_RUNTIME"
"""Environment variable choosing the runtime: ``NAME``, ``NAME:PATH`` or ``none``."""

SUPPORTED = ("deno", "node", "quickjs", "bun")
"""Runtimes yt-dlp can use (its ``js_runtimes`` keys)."""

MIN_NODE_MAJOR = 20
"""yt-dlp's EJS solver needs Node.js 20 or newer."""

STALE_AFTER_DAYS = 60
"""``doctor`` warns when the installed yt-dlp is older than this (sites change; yt-dlp follows)."""

FIX_HINT = (
    "install one: `pip install 'videojobs[worker]'` brings Deno from PyPI (or `pip install deno`); "
    f"Node.js >= {MIN_NODE_MAJOR} or QuickJS on PATH also work; {RUNTIME_ENV}=NAME:PATH points "
    "at one elsewhere"
)

_VERSION_PATTERNS = {
    "deno": re.compile(r"^deno (\S+)", re.M),
    "node": re.compile(r"^v(\S+)", re.M),
    "bun": re.compile(r"^(\d\S*)", re.M),
    "quickjs": re.compile(r"QuickJS(?:-ng)?\s+version\s+(\S+)"),
}
_PATH_NAMES = {"deno": "deno", "node": "node", "quickjs": "qjs", "bun": "bun"}


@dataclass(frozen=True)
class JsRuntime:
    """A JavaScript runtime found on this machine."""

    name: str
    """yt-dlp's key: deno, node, quickjs or bun."""
    version: str
    path: str

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class RuntimeNotFound(LookupError):
    """No usable JavaScript runtime; the message says what was tried and how to fix it."""


def parse_version(name: str, output: str) -> str | None:
    """The version in ``NAME --version`` output (``--help`` for QuickJS), or ``None``."""
    match = _VERSION_PATTERNS[name].search(output)
    return match.group(1) if match else None


def supported(name: str, version: str) -> bool:
    """Whether yt-dlp's solver works with this runtime version (Node.js needs 20+)."""
    if name != "node":
        return True
    major = re.match(r"(\d+)", version)
    return bool(major) and int(major.group(1)) >= MIN_NODE_MAJOR  # type: ignore[union-attr]


def _probe(name: str, path: str) -> JsRuntime | None:
    args = ["--help"] if name == "quickjs" else ["--version"]
    try:
        proc = subprocess.run(
            [path, *args], capture_output=True, text=True, timeout=20, check=False,
            env={**os.environ, "NO_COLOR": "1", "DENO_NO_UPDATE_CHECK": "1"},
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = parse_version(name, proc.stdout + proc.stderr)
    if version is None or not supported(name, version):
        return None
    return JsRuntime(name, version, path)


def _deno_from_package() -> str | None:
    try:
        import deno
    except ImportError:
        return None
    try:
        path = str(deno.find_deno_bin())
    except (OSError, RuntimeError, FileNotFoundError):
        return None
    return path if os.access(path, os.X_OK) else None


def candidates(env: str | None) -> list[tuple[str, str]]:
    """``(name, path)`` pairs to try, in order, for the value of :data:`RUNTIME_ENV`."""
    if env:
        name, _, path = env.strip().partition(":")
        name = name.lower()
        if name == "none":
            return []
        if name not in SUPPORTED:
            raise RuntimeNotFound(
                f"{RUNTIME_ENV}={env!r}: unknown runtime {name!r} (one of {', '.join(SUPPORTED)})"
            )
        found = path or shutil.which(_PATH_NAMES[name]) or ""
        if name == "deno" and not path:
            found = _deno_from_package() or found
        return [(name, found)] if found else []
    pairs: list[tuple[str, str]] = []
    packaged = _deno_from_package()
    if packaged:
        pairs.append(("deno", packaged))
    for name in SUPPORTED:
        on_path = shutil.which(_PATH_NAMES[name])
        if on_path and (name, on_path) not in pairs:
            pairs.append((name, on_path))
    return pairs


@functools.cache
def find_js_runtime(env: str | None = None) -> JsRuntime:
    """The first working runtime (see the module docstring); :class:`RuntimeNotFound` if none."""
    value = os.environ.get(RUNTIME_ENV) if env is None else env
    tried = candidates(value)
    for name, path in tried:
        runtime = _probe(name, path)
        if runtime is not None:
            return runtime
    where = ", ".join(f"{n} at {p}" for n, p in tried) or "nothing"
    disabled = " (disabled by " + RUNTIME_ENV + ")" if value and value.lower() == "none" else ""
    raise RuntimeNotFound(f"no usable JavaScript runtime{disabled}; tried {where}; {FIX_HINT}")


def ydl_js_options(runtime: JsRuntime | None) -> dict[str, Any]:
    """yt-dlp options that use ``runtime`` and never fetch solver scripts from the network."""
    if runtime is None:
        return {"js_runtimes": {}, "remote_components": []}
    return {"js_runtimes": {runtime.name: {"path": runtime.path}}, "remote_components": []}


def runtime_env(scratch: Path) -> dict[str, str]:
    """Environment for the runtime on a read-only root filesystem: Deno's cache under scratch."""
    return {
        "DENO_DIR": str(scratch / ".deno"),
        "DENO_NO_UPDATE_CHECK": "1",
        "DENO_NO_PROMPT": "1",
    }


def ejs_version() -> str | None:
    """Version of the installed EJS challenge-solver scripts (``yt-dlp-ejs``), or ``None``."""
    try:
        import yt_dlp_ejs
    except ImportError:
        return None
    version = getattr(yt_dlp_ejs, "version", None) or getattr(yt_dlp_ejs, "__version__", None)
    return str(version) if version else "unknown"


def ytdlp_version() -> str | None:
    """The installed yt-dlp's version (``YYYY.MM.DD[.N]``), or ``None``."""
    try:
        import yt_dlp.version
    except ImportError:
        return None
    return str(yt_dlp.version.__version__)


def release_date(version: str) -> dt.date | None:
    """The release date a yt-dlp version string encodes (``2026.10.26`` -> 2026-10-26)."""
    match = re.match(r"(\d{4})\.(\d{1,2})\.(\d{1,2})", version)
    if not match:
        return None
    try:
        return dt.date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def age_days(version: str, today: dt.date | None = None) -> int | None:
    """Days since the release of ``version`` (``None`` when the version has no date)."""
    released = release_date(version)
    if released is None:
        return None
    return ((today or dt.date.today()) - released).days


def smoke_test(runtime: JsRuntime, scratch: Path, timeout: float = 60.0) -> str | None:
    """Run a one-line script offline the way yt-dlp runs the solver; ``None`` when it works,
    else what went wrong."""
    argv = {
        "deno": [runtime.path, "run", "--no-remote", "--no-prompt", "--no-config", "-"],
        "node": [runtime.path, "-"],
        "bun": [runtime.path, "run", "-"],
        "quickjs": [runtime.path, "-e", "console.log(6 * 7)"],
    }[runtime.name]
    try:
        proc = subprocess.run(
            argv,
            input="console.log(6 * 7)",
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **runtime_env(scratch)},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {runtime.path}: {exc}"
    if proc.returncode != 0 or proc.stdout.strip() != "42":
        return (
            f"{runtime.path} failed a one-line script: {(proc.stderr or proc.stdout).strip()[:300]}"
        )
    return None


def doctor_checks(scratch: Path, today: dt.date | None = None) -> list[tuple[str, str]]:
    """``(status, line)`` for yt-dlp, its age, the JavaScript runtime and the EJS solver;
    status is ``ok``, ``warn`` or ``FAIL``."""
    checks: list[tuple[str, str]] = []
    version = ytdlp_version()
    if version is None:
        checks.append(("FAIL", "yt-dlp: not installed (pip install 'videojobs[worker]')"))
    else:
        age = age_days(version, today)
        line = f"yt-dlp: {version}" + (f" ({age} days old)" if age is not None else "")
        if age is not None and age > STALE_AFTER_DAYS:
            checks.append((
                "warn",
                f"{line}: older than {STALE_AFTER_DAYS} days; sites change and yt-dlp follows "
                "within days: rebuild the worker image with a new yt-dlp (docs/worker.md, "
                "\"Updating yt-dlp\")",
            ))  # fmt: skip
        else:
            checks.append(("ok", line))
    try:
        runtime = find_js_runtime(os.environ.get(RUNTIME_ENV) or "")
    except RuntimeNotFound as exc:
        checks.append(("FAIL", f"JavaScript runtime: {exc}"))
    else:
        problem = smoke_test(runtime, scratch)
        if problem is None:
            checks.append(("ok", f"JavaScript runtime: {runtime} ({runtime.path}), runs offline"))
        else:
            checks.append(("FAIL", f"JavaScript runtime: {runtime}: {problem}; {FIX_HINT}"))
    ejs = ejs_version()
    if ejs is None:
        checks.append((
            "FAIL",
            "EJS challenge solver: yt-dlp-ejs not installed; pip install 'yt-dlp[default]' "
            "(part of 'videojobs[worker]')",
        ))  # fmt: skip
    else:
        checks.append(("ok", f"EJS challenge solver: yt-dlp-ejs {ejs} (bundled, no downloads)"))
    return checks
