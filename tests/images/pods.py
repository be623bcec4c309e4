"""Run the project's images as Kubernetes would run their pods, with Docker.

:func:`docker_args` turns a pod's container (from the rendered chart or the operator's Job
manifest) into ``docker run`` options: the security context (user, read-only root, dropped
capabilities, no privilege escalation; Docker's default seccomp profile is RuntimeDefault), the
resource limits, the emptyDir volumes as tmpfs of their ``sizeLimit``, and plain ``env``. Other
volumes (the input ConfigMap, the clips PVC, a kubeconfig) are bind mounts the test provides.
Containers use the host's network: every server a test starts binds to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else (shutil.which("docker") or "")
"""Debian's client first: /usr/local/bin may hold a newer one without the buildx plugin."""
TAG = os.environ.get("VIDEOJOBS_IMAGE_TAG", "ci")
IMAGES = {name: f"videojobs-{name}:{TAG}" for name in ("operator", "worker", "gateway")}
REQUIRE_ENV = "VIDEOJOBS_REQUIRE_IMAGES"


REPO = Path(__file__).resolve().parents[2]
SOURCES = (
    "pyproject.toml",
    "README.md",
    "constraints.txt",
    ".dockerignore",
    "videojobs",
    "operator",
    "job_image",
    "gateway",
)
"""What the images are built from (.ci/images/build.sh's SOURCES, hashed the same way)."""


def source_key(repo: Path = REPO) -> str:
    """.ci/images/build.sh's ``source_key``: sha256sum lines of every file, sorted by path."""
    files: list[str] = []
    for name in SOURCES:
        path = repo / name
        if path.is_file():
            files.append(name)
        for sub in sorted(path.rglob("*")) if path.is_dir() else []:
            if sub.is_file() and "__pycache__" not in sub.parts and sub.suffix != ".pyc":
                files.append(str(sub.relative_to(repo)))
    lines = "".join(
        f"{hashlib.sha256((repo / f).read_bytes()).hexdigest()}  {f}\n"
        for f in sorted(files, key=os.fsencode)
    )
    return hashlib.sha256(lines.encode()).hexdigest()[:16]


@functools.cache
def unavailable() -> str | None:
    """Why the image tier cannot run here, or None."""
    if not DOCKER:
        return "no docker client (Debian's docker.io)"
    info = subprocess.run([DOCKER, "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        return "no Docker daemon answers (start dockerd, or run .ci/images/build.sh)"
    missing = [
        image
        for image in IMAGES.values()
        if subprocess.run([DOCKER, "image", "inspect", image], capture_output=True).returncode
    ]
    if missing:
        return f"images not built ({', '.join(missing)}): run .ci/images/build.sh"
    key = source_key()
    stale = [
        image
        for image in IMAGES.values()
        if subprocess.run(
            [
                DOCKER,
                "image",
                "inspect",
                "-f",
                '{{index .Config.Labels "org.videojobs.source"}}',
                image,
            ],
            capture_output=True,
            text=True,
        ).stdout.strip()
        != key
    ]
    if stale:
        return f"images older than this checkout ({', '.join(stale)}): run .ci/images/build.sh"
    return None


_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}


def quantity_bytes(text: str) -> int:
    """``64Mi`` -> 67108864."""
    for unit, factor in sorted(_UNITS.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def quantity_cpus(text: str) -> str:
    """``500m`` -> ``0.5``."""
    return str(int(text[:-1]) / 1000) if text.endswith("m") else str(float(text))


def docker_args(
    pod_spec: Mapping[str, Any], container: Mapping[str, Any], *, env: Mapping[str, str] = {}
) -> list[str]:
    """``docker run`` options for ``container`` of ``pod_spec`` (see the module docstring)."""
    pod_sc = pod_spec.get("securityContext") or {}
    sc = {**pod_sc, **(container.get("securityContext") or {})}
    uid, gid = sc.get("runAsUser"), sc.get("runAsGroup", sc.get("runAsUser"))
    assert uid is not None and sc.get("runAsNonRoot"), "the pod must run as a non-root uid"
    args = ["--user", f"{uid}:{gid}"]
    if pod_sc.get("fsGroup") is not None:
        args += ["--group-add", str(pod_sc["fsGroup"])]
    if sc.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    for cap in (sc.get("capabilities") or {}).get("drop") or []:
        args += ["--cap-drop", cap]
    if sc.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    limits = (container.get("resources") or {}).get("limits") or {}
    if "memory" in limits:
        args += ["--memory", str(quantity_bytes(limits["memory"]))]
    if "cpu" in limits:
        args += ["--cpus", quantity_cpus(str(limits["cpu"]))]
    args += ["--pids-limit", "1024"]
    volumes = {v["name"]: v for v in pod_spec.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"]) or {}
        if "emptyDir" in volume:
            size = (volume["emptyDir"] or {}).get("sizeLimit")
            opts = "rw,exec,mode=1777" + (f",size={quantity_bytes(size)}" if size else "")
            args += ["--tmpfs", f"{mount['mountPath']}:{opts}"]
    for item in container.get("env") or []:
        if "value" in item and item["name"] not in env:
            args += ["-e", f"{item['name']}={item['value']}"]
    for name, value in env.items():
        args += ["-e", f"{name}={value}"]
    return args


def mounts(container: Mapping[str, Any]) -> dict[str, str]:
    """Volume name -> mount path of the container's non-emptyDir volumes."""
    return {m["name"]: m["mountPath"] for m in container.get("volumeMounts") or []}


def kubeconfig(path: Path, server: str, token: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": token}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    path.chmod(0o644)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """(status, body); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (OSError, urllib.error.URLError):
        return 0, ""


@dataclass
class Container:
    """A detached container; :meth:`logs`, :meth:`stop` (SIGTERM, then the exit code)."""

    name: str
    started: float = field(default_factory=time.monotonic)

    def logs(self) -> str:
        done = subprocess.run(
            [DOCKER, "logs", self.name], capture_output=True, text=True, check=False
        )
        return done.stdout + done.stderr

    def running(self) -> bool:
        state = inspect(self.name, "{{.State.Running}}")
        return state == "true"

    def exit_code(self) -> int:
        return int(inspect(self.name, "{{.State.ExitCode}}"))

    def wait(self, timeout: float) -> int:
        done = subprocess.run(
            [DOCKER, "wait", self.name], capture_output=True, text=True, timeout=timeout
        )
        return int(done.stdout.strip())

    def stop(self, grace: int = 30) -> int:
        """``docker stop``: SIGTERM, SIGKILL after ``grace`` s (the pod's grace period)."""
        subprocess.run([DOCKER, "stop", "-t", str(grace), self.name], capture_output=True)
        return self.exit_code()

    def remove(self) -> None:
        subprocess.run([DOCKER, "rm", "-f", self.name], capture_output=True)


def inspect(name: str, fmt: str) -> str:
    done = subprocess.run(
        [DOCKER, "inspect", "-f", fmt, name], capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


@contextlib.contextmanager
def run_container(image: str, args: list[str], command: Sequence[str] = ()) -> Iterator[Container]:
    """``docker run -d --network host ARGS IMAGE COMMAND``; removed afterwards."""
    name = f"videojobs-test-{uuid.uuid4().hex[:10]}"
    subprocess.run(
        [DOCKER, "run", "-d", "--name", name, "--network", "host", *args, image, *command],
        check=True,
        capture_output=True,
    )
    container = Container(name)
    try:
        yield container
    finally:
        container.remove()


def run_once(
    image: str, args: list[str], command: list[str], timeout: float = 300
) -> tuple[int, str]:
    """``docker run --rm --network host``: (exit code, output)."""
    done = subprocess.run(
        [DOCKER, "run", "--rm", "--network", "host", *args, image, *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def eventually(check: Any, timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
