"""The real-cluster tier: a real control plane (``cluster.py``) and a node agent (``nodeagent.py``).

Started once per test run; each test gets its own namespace. Without the binaries (and without Go
to build them, ``.ci/k8s/build.sh``) the whole tier is skipped with one line; with
``VIDEOJOBS_REQUIRE_REAL_K8S=1`` (``.ci/run``) that is a failure instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.realk8s import cluster as cp
from tests.realk8s.scripted import SCRIPTED_IMAGE

REPO = Path(__file__).resolve().parents[2]
NODE = "vj-node-0"
WORKER_IMAGE = "videojobs-worker:realk8s"
HERE = Path(__file__).resolve().parent
_BUILD_FAILED: list[str] = []
_NOT_RUN: list[str] = []
_FAILED: list[str] = []
_ROOTLESS: list[bool] = []


def _require() -> bool:
    return os.environ.get("VIDEOJOBS_REQUIRE_REAL_K8S") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tier, and build the binaries (cached) before any test's timeout starts.

    Without binaries (and no Go to build them) the tier's tests are deselected and the run ends
    with one line saying so (:func:`pytest_terminal_summary`); with
    ``VIDEOJOBS_REQUIRE_REAL_K8S=1`` they stay and fail instead."""
    mine = [i for i in items if HERE in Path(str(i.fspath)).resolve().parents]
    for item in mine:
        item.add_marker(pytest.mark.realk8s)
    # The soak (test_soak.py) takes many minutes: on demand only, with -m soak.
    soak = [i for i in mine if i.get_closest_marker("soak")]
    if soak and "soak" not in (config.option.markexpr or ""):
        items[:] = [i for i in items if i not in soak]
        config.hook.pytest_deselected(items=soak)
        mine = [i for i in mine if i not in soak]
        _NOT_RUN.append(
            f"{len(soak)} soak test of tests/realk8s not run (it takes many minutes): "
            "run it with -m soak (docs/testing.md)"
        )
    if not mine:
        return
    if os.geteuid() != 0:
        _ROOTLESS.append(True)
    elif cp.find_binaries() is not None:
        return
    if not _ROOTLESS and cp.go_available() and os.environ.get("VIDEOJOBS_K8S_BUILD") != "0":
        log = cp.cache_dir() / f"build-{cp.version()}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        sys.stderr.write(
            f"\nrealk8s: building Kubernetes {cp.version()} from the Go modules (cached in "
            f"{cp.cache_dir()}; a cold build takes long; log: {log})\n"
        )
        if cp.build(log) is None:
            _BUILD_FAILED.append(str(log))
        else:
            return
    if _require():
        return  # the real_cluster fixture fails each test with the reason
    items[:] = [i for i in items if i not in mine]
    config.hook.pytest_deselected(items=mine)
    _NOT_RUN.append(f"{len(mine)} tests of tests/realk8s not run: {_why()}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in _NOT_RUN:
        terminalreporter.write_line(f"real-cluster tier: {line}", yellow=True)


def _why() -> str:
    if _ROOTLESS:
        return "the node agent needs root (mount namespaces, bind mounts, setpriv)"
    if _BUILD_FAILED:
        return f"building Kubernetes {cp.version()} failed (log: {_BUILD_FAILED[0]})"
    return (
        f"no Kubernetes {cp.version()} binaries in {cp.cache_dir()} and no Go to build them "
        "(or VIDEOJOBS_K8S_BUILD=0); run .ci/k8s/build.sh (needs Go) or set KUBEBUILDER_ASSETS"
    )


def _unavailable(reason: str) -> None:
    if _require():
        pytest.fail(f"VIDEOJOBS_REQUIRE_REAL_K8S=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome: Any = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
    if report.failed:
        _FAILED.append(item.nodeid)


class K8s:
    """The admin's clients (``system:masters``) and small helpers around them."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.api = config.new_client_from_config(config_file=str(kubeconfig))
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.rbac = client.RbacAuthorizationV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.ext = client.ApiextensionsV1Api(self.api)
        self.dynamic_apply = None

    def plain(self, obj: Any) -> Any:
        return self.api.sanitize_for_serialization(obj)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create any object of a known kind (core, batch, rbac, videojobs.io)."""
        from kubernetes import utils

        kind = body["kind"]
        ns = body["metadata"].get("namespace")
        if body.get("apiVersion", "").startswith("videojobs.io/"):
            return self.custom.create_namespaced_custom_object(
                "videojobs.io", "v1alpha1", ns, "videoprocessingjobs", body
            )
        created = utils.create_from_dict(self.api, body, namespace=ns)
        del kind
        return self.plain(created[0])

    def vpj(self, ns: str, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(
            "videojobs.io", "v1alpha1", ns, "videoprocessingjobs", name
        )

    def wait(
        self, what: str, check: Callable[[], Any], timeout: float = 120, interval: float = 0.3
    ) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = check()
            except ApiException as exc:
                last = exc
                if exc.status not in (404, 409):
                    raise
            else:
                if last:
                    return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last})")


class RealCluster:
    def __init__(self, plane: cp.Cluster, k8s: K8s, agent_root: Path, pvc_root: Path) -> None:
        self.plane = plane
        self.k8s = k8s
        self.agent_root = agent_root
        self.pvc_root = pvc_root
        self.agent: subprocess.Popen[bytes] | None = None

    @property
    def server(self) -> str:
        return self.plane.server

    def service_account_kubeconfig(self, ns: str, sa: str, seconds: int = 3600) -> Path:
        """A kubeconfig with a real ServiceAccount token (TokenRequest) for ``ns/sa``."""
        resp = self.k8s.core.create_namespaced_service_account_token(
            sa, ns, {"spec": {"expirationSeconds": seconds}}
        )
        return self.plane.token_kubeconfig(
            f"sa-{ns}-{sa}-{uuid.uuid4().hex[:6]}", resp.status.token
        )

    def claim(self, ns: str, name: str, size: str = "1Gi") -> Path:
        """A PersistentVolumeClaim bound to a hostPath PV: the folder on this machine."""
        folder = self.volume(ns, name, size)
        pv = f"pv-{ns}-{name}"[:253]
        self.k8s.core.create_namespaced_persistent_volume_claim(
            ns,
            {
                "metadata": {"name": name},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "",
                    "volumeName": pv,
                    "resources": {"requests": {"storage": size}},
                },
            },
        )
        self.wait_bound(ns, name)
        return folder

    def wait_bound(self, ns: str, name: str) -> None:
        self.k8s.wait(
            f"claim {ns}/{name} bound",
            lambda: (
                self.k8s.core.read_namespaced_persistent_volume_claim(name, ns).status.phase
                == "Bound"
            ),
            60,
        )

    def volume(self, ns: str, name: str, size: str = "1Gi") -> Path:
        """A hostPath PV (no storage class) reserved for the claim ``ns/name`` that someone
        else creates (the chart): a static volume, as an administrator provisions it."""
        folder = self.pvc_root / ns / name
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)
        pv = f"pv-{ns}-{name}"[:253]
        self.k8s.core.create_persistent_volume(
            {
                "metadata": {"name": pv},
                "spec": {
                    "capacity": {"storage": size},
                    "accessModes": ["ReadWriteOnce", "ReadWriteMany"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": "",
                    "hostPath": {"path": str(folder), "type": "DirectoryOrCreate"},
                    "claimRef": {"namespace": ns, "name": name},
                },
            }
        )
        return folder

    def pod_log(self, ns: str, pod: str, container: str = "worker", name: str = "log") -> str:
        """A container's output (``log``) or ``termination-log``, as the node agent kept it."""
        found = sorted(self.agent_root.glob(f"pods/{ns}_{pod}_*/containers/{container}/{name}"))
        return "\n".join(p.read_text(errors="replace") for p in found)


def _start_agent(real: RealCluster, python_bin: Path) -> None:
    node_kc = real.plane.client_kubeconfig("node", f"system:node:{NODE}", ("system:nodes",))
    log = real.plane.log("nodeagent")
    out = log.open("ab")
    real.agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.realk8s.nodeagent",
            f"--kubeconfig={node_kc}",
            f"--node={NODE}",
            f"--root={real.agent_root}",
            "--api-host=127.0.0.1",
            f"--api-port={real.plane.ports['api']}",
            f"--image={WORKER_IMAGE}={python_bin / 'videojobs-worker'}",
            f"--image={SCRIPTED_IMAGE}={sys.executable} {HERE / 'scripted.py'}",
            f"--path={python_bin}",
            f"--keep={REPO}",
            f"--keep={sys.prefix}",
        ],
        cwd=REPO,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out.close()
    k8s = real.k8s

    def node_ready() -> bool:
        if real.agent is not None and real.agent.poll() is not None:
            raise cp.ControlPlaneError(f"node agent exited:\n{log.read_text()[-3000:]}")
        node = k8s.core.read_node(NODE)
        return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])

    k8s.wait("the node", node_ready, 60)
    # The TaintNodesByCondition admission plugin taints a new Node not-ready; the node lifecycle
    # controller (not run: nothing here heartbeats a lease) would lift it once Ready.
    k8s.core.patch_node(NODE, {"spec": {"taints": None}})


@pytest.fixture(scope="session")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCluster]:
    """The control plane, the CRD and one node with its agent; stopped after the session."""
    binaries = cp.find_binaries()
    if binaries is None or _ROOTLESS:
        _unavailable(_why())
    assert binaries is not None
    # Not under pytest's basetemp: other pytest runs on the machine rotate those away. Removed
    # after a session without failures, kept (and named in the report) otherwise.
    folder = Path(tempfile.mkdtemp(prefix="videojobs-realk8s-"))
    plane = cp.Cluster(bin=binaries, folder=folder)
    try:
        plane.start()
    except cp.ControlPlaneError as exc:
        plane.stop()
        pytest.fail(f"the real control plane did not start (logs in {folder / 'logs'}): {exc}")
    sys.stderr.write(f"\nrealk8s: {binaries} up in {plane.started_in:.1f}s; logs {folder}\n")
    k8s = K8s(plane.admin_kubeconfig)
    real = RealCluster(plane, k8s, folder / "node", folder / "volumes")
    real.pvc_root.mkdir(parents=True, exist_ok=True)
    real.pvc_root.chmod(0o755)
    try:
        crd = yaml.safe_load((REPO / "crds" / "videoprocessingjobs.yaml").read_text())
        k8s.ext.create_custom_resource_definition(crd)
        k8s.wait(
            "the CRD established",
            lambda: any(
                c.type == "Established" and c.status == "True"
                for c in k8s.ext.read_custom_resource_definition(
                    crd["metadata"]["name"]
                ).status.conditions
                or []
            ),
            60,
        )
        _start_agent(real, Path(sys.executable).parent)
        yield real
    finally:
        if real.agent is not None and real.agent.poll() is None:
            real.agent.terminate()
            try:
                real.agent.wait(timeout=10)
            except subprocess.TimeoutExpired:
                real.agent.kill()
        plane.stop()
        if _FAILED:
            sys.stderr.write(f"\nrealk8s: logs of the failed session kept in {folder}\n")
        else:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def k8s(real_cluster: RealCluster) -> K8s:
    return real_cluster.k8s


@pytest.fixture
def ns(request: pytest.FixtureRequest, real_cluster: RealCluster) -> Iterator[str]:
    """A fresh namespace for the test (Pod Security ``restricted`` enforced), deleted after it;
    on failure its pods, Jobs, events and the component logs' folder go into the report."""
    base = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:5]}"
    k8s = real_cluster.k8s
    k8s.core.create_namespace(
        {
            "metadata": {
                "name": name,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            }
        }
    )
    k8s.wait(
        f"default ServiceAccount in {name}",
        lambda: k8s.core.read_namespaced_service_account("default", name),
        30,
    )
    yield name
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        lines = [f"component logs: {real_cluster.plane.folder / 'logs'}"]
        try:
            for pod in k8s.core.list_namespaced_pod(name).items:
                lines.append(
                    f"pod {pod.metadata.name}: {pod.status.phase} "
                    f"{[(s.name, s.state.to_dict()) for s in pod.status.container_statuses or []]}"
                )
                lines.append(real_cluster.pod_log(name, pod.metadata.name)[-3000:])
            for job in k8s.batch.list_namespaced_job(name).items:
                lines.append(f"job {job.metadata.name}: {job.status.to_dict()}")
            for ev in k8s.core.list_namespaced_event(name).items:
                lines.append(
                    f"event {ev.involved_object.kind}/{ev.involved_object.name}: "
                    f"{ev.reason}: {ev.message}"
                )
        except Exception as exc:
            lines.append(f"(could not read the namespace: {exc})")
        request.node.add_report_section("call", "real cluster", "\n".join(lines))
    try:
        k8s.core.delete_namespace(name)
    except ApiException:
        pass


OPERATOR_NS = "videojobs-system"
OPERATOR_SA = "vj-videojobs"


def operator_rbac(k8s: K8s) -> None:
    """The operator's ServiceAccount with the ClusterRole made from ``rbac.py`` (as the chart
    renders it), so the real RBAC authorizer judges every request of the operator."""
    from videojobs_operator import rbac

    try:
        k8s.core.create_namespace({"metadata": {"name": OPERATOR_NS}})
        k8s.core.create_namespaced_service_account(OPERATOR_NS, {"metadata": {"name": OPERATOR_SA}})
    except ApiException as exc:
        if exc.status != 409:
            raise
        return
    k8s.rbac.create_cluster_role(
        {
            "metadata": {"name": "vj-operator"},
            "rules": rbac.OPERATOR_RULES + rbac.WORKER_RBAC_RULES,
        }
    )
    k8s.rbac.create_cluster_role_binding(
        {
            "metadata": {"name": "vj-operator"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "vj-operator",
            },
            "subjects": [{"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": OPERATOR_NS}],
        }
    )


class OperatorProcess:
    """``python -m videojobs_operator`` as its own process, with its ServiceAccount's token."""

    def __init__(self, real: RealCluster, ns: str, folder: Path) -> None:
        self.real = real
        self.ns = ns
        self.log = folder / "operator.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.env_extra: dict[str, str] = {}

    @property
    def kubeconfig(self) -> Path:
        operator_rbac(self.real.k8s)
        return self.real.service_account_kubeconfig(OPERATOR_NS, OPERATOR_SA)

    def start(self, **env: str) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEOJOBS_", "KUBE"))}
        base.update(
            {
                "KUBECONFIG": str(self.kubeconfig),
                "POD_NAME": "operator-0",
                "POD_NAMESPACE": OPERATOR_NS,
                "VIDEOJOBS_NAMESPACES": self.ns,
                "VIDEOJOBS_LEADER_ELECTION": "false",
                "VIDEOJOBS_METRICS_PORT": "0",
                "VIDEOJOBS_LOG_FORMAT": "text",
                "VIDEOJOBS_WORKER_IMAGE": WORKER_IMAGE,
                "VIDEOJOBS_WORKER_IMAGE_PULL_POLICY": "Never",
                "VIDEOJOBS_WORKER_CPU": "100m",
                "VIDEOJOBS_WORKER_MEMORY": "512Mi",
                "VIDEOJOBS_ALLOWED_NETWORKS": "127.0.0.0/8",
                "VIDEOJOBS_PROGRESS_INTERVAL_SECONDS": "0.5",
                **env,
            }
        )
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "videojobs_operator", "--liveness", ""],
            env=base,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def operator(
    request: pytest.FixtureRequest, real_cluster: RealCluster, ns: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """The operator (not started: the test calls ``start``), watching the test's namespace."""
    op = OperatorProcess(real_cluster, ns, tmp_path)
    yield op
    # SIGKILL, not a graceful stop: its shutdown is not under test here (3-6 s a test under load)
    if op.proc is not None and op.proc.poll() is None:
        op.proc.kill()
        op.proc.wait()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed and op.log.exists():
        request.node.add_report_section("call", "operator log", op.log.read_text()[-6000:])
