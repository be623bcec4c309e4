"""The images users deploy, run as Kubernetes runs their pods (issue 25).

Each container gets its pod's security context (uid 10001, read-only root, all capabilities
dropped, no-new-privileges), resource limits and emptyDir mounts (as tmpfs), read from the
rendered chart (operator, gateway) or from the operator's own Job manifest (worker):
tests/images/pods.py. The Kubernetes API is the project's emulator (conftest.py says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.chartkit import RELEASE_NAMESPACE, render
from tests.httpserver import MediaServer
from tests.images import pods
from tests.mediakit import ffprobe_json, make_video
from tests.mockapi.conftest import Api
from tests.mockapi.emulator import OPERATOR_SA, Emulator, token
from videojobs.models import VideoProcessingJobSpec
from videojobs_operator.manifest import build_job, build_worker_input
from videojobs_operator.settings import OperatorSettings

pytestmark = pytest.mark.images

if pods.unavailable() is not None and os.environ.get(pods.REQUIRE_ENV) != "1":
    # one line for the whole tier; with VIDEOJOBS_REQUIRE_IMAGES=1 the `images` fixture fails
    pytest.skip(f"image tier: {pods.unavailable()}", allow_module_level=True)

UID = 10001
NS = "media"
KUBE_DIR = "/var/run/videojobs-test"


def _objects(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        doc
        for path, text in render(values).items()
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict)
    ]


def chart_pod(values: dict[str, Any], component: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod spec and first container of the chart's Deployment for ``component``."""
    for doc in _objects(values):
        if doc["kind"] != "Deployment":
            continue
        labels = doc["spec"]["template"]["metadata"].get("labels") or {}
        if labels.get("app.kubernetes.io/component", "operator") == component:
            spec = doc["spec"]["template"]["spec"]
            return spec, spec["containers"][0]
    raise AssertionError(f"no {component} Deployment in the chart")


def _kube_dir(tmp_path: Path, server: str, who: str) -> Path:
    folder = tmp_path / "kube"
    folder.mkdir(exist_ok=True)
    folder.chmod(0o755)
    pods.kubeconfig(folder / "config", server, who)
    return folder


@contextlib.asynccontextmanager
async def forwarder(port: int, target: str) -> AsyncIterator[None]:
    """Listen on 127.0.0.1:``port`` and pipe every connection to ``target`` (host:port): the
    API server becoming reachable at an address the containers already use."""
    host, target_port = target.rsplit(":", 1)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(target_port))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


async def until(check: Any, timeout: float, what: str) -> Any:
    """Poll a blocking ``check`` off the event loop (the emulator lives on it)."""
    return await asyncio.to_thread(pods.eventually, check, timeout, what)


def _writable_by_worker(path: Path) -> None:
    """What fsGroup makes of a volume that supports it (as root: owned by 10001)."""
    if os.geteuid() == 0:
        os.chown(path, UID, UID)
    else:
        path.chmod(0o777)


def _owned_files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_uid for p in root.rglob("*") if p.is_file()}


# --- each image ships its own console script only ----------------------------------------------


@pytest.mark.parametrize("name", ["operator", "worker", "gateway"])
def test_each_image_ships_only_its_own_console_script(images: dict[str, str], name: str) -> None:
    code, out = pods.run_once(
        images[name], ["--entrypoint", "sh"], ["-c", "ls /opt/venv/bin | grep videojobs"]
    )
    assert code == 0, out
    assert out.split() == [f"videojobs-{name}"]
    code, out = pods.run_once(images[name], ["--entrypoint", "id"], ["-u"])
    assert out.strip() == str(UID), "the image's user is 10001"


def test_troubleshooting_doctor_line_runs(images: dict[str, str], repo: Path) -> None:
    """docs/troubleshooting.md's `docker run ... doctor` line, with this build's tag."""
    doc = (repo / "docs" / "troubleshooting.md").read_text()
    line = next(x for x in doc.splitlines() if x.startswith("docker run") and "doctor" in x)
    args = line.split()[2:]  # after "docker run"
    image_at = next(i for i, a in enumerate(args) if "videojobs-worker:" in a)
    code, out = pods.run_once(images["worker"], args[:image_at], args[image_at + 1 :])
    assert code == 0, out
    assert "ffmpeg" in out and "FAIL" not in out, out


# --- the worker ---------------------------------------------------------------------------------


def _worker_run(
    created: dict[str, Any], image: str, input_dir: Path, out: Path, kube: Path
) -> tuple[list[str], list[str]]:
    """docker run options and command of the Job the operator would create for ``created``."""
    settings = OperatorSettings(allow_private_networks=True, worker_image=image)
    spec = VideoProcessingJobSpec.model_validate(created["spec"])
    job = build_job(created, spec, settings)
    text = build_worker_input(created, spec, settings).model_dump_json(
        by_alias=True, exclude_none=True
    )
    input_dir.mkdir(exist_ok=True)
    input_dir.chmod(0o755)
    (input_dir / "input.json").write_text(text)
    (input_dir / "input.json").chmod(0o644)
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    where = pods.mounts(container)
    args = pods.docker_args(pod, container, env={"KUBECONFIG": f"{KUBE_DIR}/config"})
    args += ["-v", f"{input_dir}:{where['input']}:ro", "-v", f"{out}:{where['output']}"]
    args += ["-v", f"{kube}:{KUBE_DIR}:ro"]
    return args, list(container.get("args") or [])


async def _vpj(api: Api, name: str, url: str, job_name_of: Any = None) -> dict[str, Any]:
    body = {
        "apiVersion": "videojobs.io/v1alpha1",
        "kind": "VideoProcessingJob",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "source": {"url": url},
            "segments": [
                {"start": "00:00:01", "end": "00:00:03", "title": "Opening"},
                {"start": "00:00:04", "end": "00:00:06", "title": "Middle part"},
                {"start": "00:00:07", "end": "00:00:09.500", "title": "The end"},
            ],
            "output": {"formats": ["mp4"], "storage": {"pvc": {"claimName": "clips"}}},
        },
    }
    created: dict[str, Any] = await api.create(body)
    # what the operator writes before it creates the Job: the run's jobName fences the worker
    from videojobs_operator.manifest import resource_job_name

    status = {"phase": "Running", "jobName": resource_job_name(created)}
    path = f"/apis/videojobs.io/v1alpha1/namespaces/{NS}/videoprocessingjobs/{name}/status"
    await api._send("PATCH", path, {"status": status})
    return created


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sample")
    make_video(folder / "talk.mp4", duration=12, gop=30)
    return folder


async def test_worker_cuts_a_served_sample_into_the_volume_and_reports(
    images: dict[str, str], api: Api, emulator: Emulator, sample: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pvc"
    out.mkdir()
    _writable_by_worker(out)
    kube = _kube_dir(tmp_path, str(emulator.url), token(OPERATOR_SA))
    with MediaServer(sample) as server:
        created = await _vpj(api, "cut", server.url("talk.mp4"))
        args, command = _worker_run(created, images["worker"], tmp_path / "input", out, kube)
        code, logs = await asyncio.to_thread(pods.run_once, images["worker"], args, command)
    assert code == 0, logs
    folder = out / NS / "cut"
    manifest = json.loads((folder / "manifest.json").read_text())
    clips = sorted(p.name for p in folder.glob("*.mp4"))
    assert len(clips) == 3 and len(manifest["segments"]) == 3, (clips, logs)
    durations = [
        float(ffprobe_json(folder / c, "-show_format")["format"]["duration"]) for c in clips
    ]
    assert [round(d) for d in durations] == [2, 2, 2] or all(1.5 < d < 3.0 for d in durations)
    owners = _owned_files(out)
    assert owners and set(owners.values()) == {UID}, owners
    status = api.status("cut")
    assert status.get("manifestUri", "").endswith("manifest.json"), status
    assert len(status.get("segments") or []) == 3, status


async def test_worker_refuses_an_unwritable_volume_before_downloading(
    images: dict[str, str], api: Api, emulator: Emulator, sample: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pvc"
    out.mkdir(mode=0o755)  # root's: hostPath/local-path volumes ignore fsGroup
    kube = _kube_dir(tmp_path, str(emulator.url), token(OPERATOR_SA))
    with MediaServer(sample) as server:
        created = await _vpj(api, "rofs", server.url("talk.mp4"))
        args, command = _worker_run(created, images["worker"], tmp_path / "input", out, kube)
        code, logs = await asyncio.to_thread(pods.run_once, images["worker"], args, command)
        served = server.bytes_served("talk.mp4")
    assert code == 10, logs
    assert served == 0, "downloaded before finding the volume unwritable"
    error = api.status("rofs").get("error") or {}
    assert error.get("reason") == "OutputNotWritable" and error.get("permanent"), error
    assert f"uid {UID}" in error.get("message", "")


async def test_worker_exits_143_on_sigterm(
    images: dict[str, str], api: Api, emulator: Emulator, sample: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pvc"
    out.mkdir()
    _writable_by_worker(out)
    kube = _kube_dir(tmp_path, str(emulator.url), token(OPERATOR_SA))
    with MediaServer(sample) as server:
        created = await _vpj(api, "stopped", server.url("slow/20000/talk.mp4"))
        args, command = _worker_run(created, images["worker"], tmp_path / "input", out, kube)
        with pods.run_container(images["worker"], args, command) as container:
            await until(
                lambda: (api.status("stopped").get("progress") or {}).get("stage") == "Downloading",
                60,
                "the worker downloading",
            )
            code = await asyncio.to_thread(container.stop, 30)
            logs = container.logs()
    assert code == 143, logs
    assert not (out / NS / "stopped" / "manifest.json").exists()


# --- the operator -------------------------------------------------------------------------------


async def test_operator_probes_with_the_api_server_unreachable_then_reachable(
    images: dict[str, str], api: Api, emulator: Emulator, tmp_path: Path
) -> None:
    pod, container = chart_pod({}, "operator")
    api_port, live, metrics = pods.free_port(), pods.free_port(), pods.free_port()
    kube = _kube_dir(tmp_path, f"http://127.0.0.1:{api_port}", token(OPERATOR_SA))
    env = {
        "KUBECONFIG": f"{KUBE_DIR}/config",
        "POD_NAME": "operator-0",
        "POD_NAMESPACE": RELEASE_NAMESPACE,
        "VIDEOJOBS_METRICS_PORT": str(metrics),
    }
    args = pods.docker_args(pod, container, env=env) + ["-v", f"{kube}:{KUBE_DIR}:ro"]
    assert "VIDEOJOBS_LEADER_ELECTION=true" in args, "the chart elects a leader"
    command = [
        f"--liveness=http://127.0.0.1:{live}/healthz" if a.startswith("--liveness") else a
        for a in container.get("args") or []
    ]
    healthz, readyz = f"http://127.0.0.1:{live}/healthz", f"http://127.0.0.1:{metrics}/readyz"
    with pods.run_container(images["operator"], args, command) as op:
        # no API server: alive (no restart loop) but not ready, and it says why
        await until(lambda: pods.http_get(healthz)[0] == 200, 60, "liveness 200")
        await asyncio.sleep(3)
        assert pods.http_get(readyz)[0] == 503, op.logs()
        assert op.running()
        async with forwarder(api_port, f"127.0.0.1:{emulator.url.port}"):
            await until(lambda: pods.http_get(readyz)[0] == 200, 90, "readiness 200")
            leases = emulator.live("leases", RELEASE_NAMESPACE)
            # the pod's name plus a random suffix per process (leader.process_identity)
            holders = [str(lease["spec"].get("holderIdentity")) for lease in leases]
            assert [h.rpartition("_")[0] for h in holders] == ["operator-0"], holders
            code = await asyncio.to_thread(op.stop, 30)
            logs = op.logs()
            leases = emulator.live("leases", RELEASE_NAMESPACE)
    assert code == 0, logs
    assert "not installed" not in logs, logs
    assert not leases[0]["spec"].get("holderIdentity"), "SIGTERM releases the Lease"


# --- the gateway --------------------------------------------------------------------------------


async def test_gateway_is_not_ready_and_answers_503_until_it_has_listed(
    images: dict[str, str], api: Api, emulator: Emulator, tmp_path: Path
) -> None:
    values = {
        "gateway": {
            "enabled": True,
            "auth": {"mode": "apikey", "apiKeys": {"existingSecret": "k"}},
        },
        # no clips claim: the gateway pod would mount it and be unready until it is there
        "clipsPvc": {"create": False},
    }
    pod, container = chart_pod(values, "gateway")
    api_port, port = pods.free_port(), pods.free_port()
    # the operator's token: the emulator's RBAC is the chart's default (gateway disabled)
    kube = _kube_dir(tmp_path, f"http://127.0.0.1:{api_port}", token(OPERATOR_SA))
    keys = tmp_path / "keys"
    keys.mkdir()
    keys.chmod(0o755)
    key = "k-" + "x" * 30
    digest = hashlib.sha256(key.encode()).hexdigest()
    (keys / "keys.yaml").write_text(
        yaml.safe_dump([{"name": "tester", "sha256": digest, "namespace": NS}])
    )
    (keys / "keys.yaml").chmod(0o644)
    keys_mount = pods.mounts(container)["api-keys"]
    env = {
        "KUBECONFIG": f"{KUBE_DIR}/config",
        "VIDEOJOBS_GATEWAY_HOST": "127.0.0.1",
        "VIDEOJOBS_GATEWAY_PORT": str(port),
        "VIDEOJOBS_GATEWAY_NAMESPACES": json.dumps([NS]),
    }
    args = pods.docker_args(pod, container, env=env)
    args += ["-v", f"{kube}:{KUBE_DIR}:ro", "-v", f"{keys}:{keys_mount}:ro"]
    base = f"http://127.0.0.1:{port}"
    jobs = f"{base}/api/v1/videos/jobs"

    def get_jobs() -> tuple[int, str]:
        import urllib.request

        request = urllib.request.Request(jobs, headers={"X-Api-Key": key})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    await api.create(
        {
            "apiVersion": "videojobs.io/v1alpha1",
            "kind": "VideoProcessingJob",
            "metadata": {"name": "listed", "namespace": NS},
            "spec": {
                "source": {"url": "https://example.com/v.mp4"},
                "segments": [{"start": 0, "end": 5, "title": "Intro"}],
                "output": {"storage": {"pvc": {"claimName": "clips"}}},
            },
        }
    )
    with pods.run_container(images["gateway"], args) as gw:
        await until(lambda: pods.http_get(f"{base}/healthz")[0] == 200, 60, "liveness 200")
        assert pods.http_get(f"{base}/readyz")[0] == 503, gw.logs()
        status, body = get_jobs()
        assert status == 503, (status, body)
        async with forwarder(api_port, f"127.0.0.1:{emulator.url.port}"):
            await until(lambda: pods.http_get(f"{base}/readyz")[0] == 200, 60, "readiness 200")
            status, body = get_jobs()
            assert status == 200, body
            assert [j["job_id"] for j in json.loads(body)["jobs"]] == ["listed"], body
            code = await asyncio.to_thread(gw.stop, 30)
            logs = gw.logs()
    assert code == 0, logs
