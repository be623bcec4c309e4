"""A node agent for the real-cluster tier: runs the pods bound to its Node as local processes.

There is no container runtime in CI, so this does the part of the kubelet that the tests need,
against the real API server and as the node's own identity (``system:node:<name>``, so the Node
authorizer and the NodeRestriction admission plugin hold it to what a kubelet may do):

- watches the pods whose ``spec.nodeName`` is its node;
- prepares the pod's volumes under ``<root>/pods/<uid>/``: ConfigMap and Secret (all keys or
  ``items``, ``defaultMode``), projected (ServiceAccount token from the TokenRequest API bound to
  the pod, refreshed at 80 % of its life like the kubelet does; ConfigMap ``kube-root-ca.crt``;
  downward API namespace), emptyDir, and persistentVolumeClaim (the bound PV's ``hostPath`` or
  ``local`` path) and hostPath. A volume whose ConfigMap, Secret or claim is missing keeps the
  pod in ``ContainerCreating`` and is retried, with a ``FailedMount`` Event, as the kubelet does;
- runs each container's ``command``/``args`` (the image's entrypoint from the agent's
  ``--image IMAGE=ENTRYPOINT`` table when the container has no command) in a new mount namespace
  (``unshare --mount``) where every volume is bind-mounted at its ``mountPath`` (read-only when
  asked) and ``/dev/termination-log`` is the container's own file, as the user and group from the
  securityContext (``setpriv``, with ``fsGroup`` and supplemental groups), with the container's
  environment: ``value``, ``valueFrom`` (Secret and ConfigMap keys, ``fieldRef``), ``envFrom``,
  plus ``KUBERNETES_SERVICE_HOST``/``PORT`` and ``HOSTNAME``;
- writes pod status as the kubelet does: ``Pending`` (``ContainerCreating``) → ``Running`` →
  ``Succeeded``/``Failed`` with each container's exit code, reason (``Completed``/``Error``),
  termination message (``FallbackToLogsOnError`` honoured) and ``containerStatuses``;
- on deletion (``deletionTimestamp``) sends SIGTERM, then SIGKILL after the grace period, and
  removes the pod (grace 0, UID precondition) once its processes are gone.

What it does NOT reproduce: image contents (the process runs from this machine's filesystem and
the project's virtualenv), a read-only root filesystem, resource requests and limits (no cgroups),
networking (every pod shares the host's network, pod IP 127.0.0.1), init and sidecar containers,
probes, restarts (``restartPolicy`` other than Never), capabilities, seccomp and AppArmor, image
pulls, and the mount points are created (empty) on the host's root filesystem.

Run: ``python -m tests.realk8s.nodeagent --kubeconfig K --node N --root DIR --api-host H
--api-port P [--image IMAGE=ENTRYPOINT ...]``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import functools
import logging
import os
import shlex
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("nodeagent")

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
"""Device nodes bound from the host into a container's private ``/dev``."""


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


@functools.cache
def _closed_interpreter_dirs() -> list[Path]:
    """Folders on the way to this Python's interpreter and standard library that others may not
    traverse (mode without ``o+x``)."""
    closed = []
    for target in {Path(os.path.realpath(sys.executable)), Path(sys.base_prefix).resolve()}:
        for d in reversed(target.parents):
            if d != Path("/") and not os.stat(d).st_mode & stat.S_IXOTH and d not in closed:
                closed.append(d)
    return closed


class MountError(Exception):
    """A volume cannot be prepared yet (its object is missing): the pod waits."""


class Agent:
    def __init__(
        self,
        api: client.ApiClient,
        node: str,
        root: Path,
        api_host: str,
        api_port: int,
        images: dict[str, list[str]],
        extra_path: str = "",
        keep: Sequence[str] = (),
    ) -> None:
        self.core = client.CoreV1Api(api)
        self.node = node
        self.root = root
        self.api_host = api_host
        self.api_port = api_port
        self.images = images
        self.extra_path = extra_path
        self.keep = [os.path.normpath(k) for k in keep]
        """Host folders the containers' programs live in (the checkout, the virtual
        environment): bound again over any volume that would hide them (an emptyDir at /tmp
        hides a checkout under /tmp), since the 'image' here is this machine's own tree."""
        self.pods: dict[str, PodRun] = {}
        self.lock = threading.Lock()

    def register(self) -> None:
        """Create (or refresh) the Node object: Ready, with room for the tests' pods."""
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node,
                "labels": {
                    "kubernetes.io/hostname": self.node,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                },
            },
        }
        try:
            self.core.create_node(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
        self.heartbeat()

    def heartbeat(self) -> None:
        capacity = {"cpu": "64", "memory": "256Gi", "pods": "250", "ephemeral-storage": "500Gi"}
        status = {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self.node},
            ],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "videojobs test node agent is posting ready status",
                    "lastHeartbeatTime": now(),
                    "lastTransitionTime": now(),
                }
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "v0.0.0-nodeagent",
                "kubeProxyVersion": "",
                "containerRuntimeVersion": "process://nodeagent",
                "bootID": "",
                "kernelVersion": os.uname().release,
                "machineID": "",
                "osImage": "videojobs node agent",
                "systemUUID": "",
            },
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        }
        self.core.patch_node_status(self.node, {"status": status})

    def run(self) -> None:
        self.register()
        threading.Thread(target=self._heartbeats, daemon=True).start()
        selector = f"spec.nodeName={self.node}"
        rv = None
        while True:
            try:
                if rv is None:
                    pods = self.core.list_pod_for_all_namespaces(field_selector=selector)
                    rv = pods.metadata.resource_version
                    for pod in pods.items:
                        self.seen(client.ApiClient().sanitize_for_serialization(pod))
                w = watch.Watch()
                for event in w.stream(
                    self.core.list_pod_for_all_namespaces,
                    field_selector=selector,
                    resource_version=rv,
                    timeout_seconds=300,
                    allow_watch_bookmarks=True,
                ):
                    obj = event["raw_object"]
                    rv = obj.get("metadata", {}).get("resourceVersion", rv)
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self.seen(obj)
                    elif event["type"] == "DELETED":
                        self.gone(obj)
            except ApiException as exc:
                if exc.status == 410:
                    rv = None
                    continue
                log.warning("watch failed: %s", exc)
                time.sleep(1)
            except Exception as exc:  # connection cut: resume
                log.warning("watch failed: %s", exc)
                time.sleep(1)

    def _heartbeats(self) -> None:
        while True:
            time.sleep(20)
            try:
                self.heartbeat()
            except Exception as exc:
                log.warning("heartbeat failed: %s", exc)

    def seen(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        with self.lock:
            run = self.pods.get(uid)
            if run is None:
                phase = (pod.get("status") or {}).get("phase")
                if phase in ("Succeeded", "Failed"):
                    if pod["metadata"].get("deletionTimestamp"):
                        self._final_delete(pod)
                    return
                run = self.pods[uid] = PodRun(self, pod)
                threading.Thread(target=run.run, name=f"pod-{uid[:8]}", daemon=True).start()
            else:
                run.update(pod)

    def gone(self, pod: dict[str, Any]) -> None:
        with self.lock:
            run = self.pods.get(pod["metadata"]["uid"])
        if run is not None:
            run.update(pod, deleted=True)

    def _final_delete(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        try:
            self.core.delete_namespaced_pod(
                meta["name"],
                meta["namespace"],
                grace_period_seconds=0,
                body=client.V1DeleteOptions(
                    grace_period_seconds=0, preconditions=client.V1Preconditions(uid=meta["uid"])
                ),
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                log.warning("deleting pod %s: %s", meta["name"], exc)


class PodRun:
    """One pod: volumes, processes, status."""

    def __init__(self, agent: Agent, pod: dict[str, Any]) -> None:
        self.agent = agent
        self.pod = pod
        meta = pod["metadata"]
        self.ns, self.name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.dir = agent.root / "pods" / f"{self.ns}_{self.name}_{self.uid}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.changed = threading.Condition()
        self.deleting_since: float | None = None
        self.grace = 30.0
        self.deleted = False
        self.started_at: dict[str, str] = {}
        self.token_files: list[tuple[Path, dict[str, Any], float]] = []
        self.restarts = 0
        self.mounts: dict[str, list[tuple[Path, str, bool]]] = {}

    # events from the watch ---------------------------------------------------------------

    def update(self, pod: dict[str, Any], deleted: bool = False) -> None:
        with self.changed:
            self.pod = pod
            if deleted:
                self.deleted = True
            ts = pod["metadata"].get("deletionTimestamp")
            if (ts or deleted) and self.deleting_since is None:
                self.deleting_since = time.monotonic()
                grace = pod["metadata"].get("deletionGracePeriodSeconds")
                if grace is None:
                    grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
                self.grace = float(grace or 0)
            self.changed.notify_all()

    # status -------------------------------------------------------------------------------

    def _conditions(self, ready: bool, initialized: bool, started: bool) -> list[dict[str, Any]]:
        old = {c["type"]: c for c in (self.pod.get("status") or {}).get("conditions") or []}
        out = []

        def cond(kind: str, value: bool, reason: str | None = None) -> None:
            status = "True" if value else "False"
            prev = old.get(kind)
            c: dict[str, Any] = {
                "type": kind,
                "status": status,
                "lastProbeTime": None,
                "lastTransitionTime": prev["lastTransitionTime"]
                if prev and prev.get("status") == status
                else now(),
            }
            if reason and not value:
                c["reason"] = reason
            out.append(c)

        for kind, c in old.items():  # the scheduler's, the Job controller's, ...
            if kind not in ("Ready", "ContainersReady", "Initialized", "PodReadyToStartContainers"):
                out.append(c)
        cond("PodReadyToStartContainers", started)
        cond("Initialized", initialized)
        cond("Ready", ready, "ContainersNotReady" if not ready else None)
        cond("ContainersReady", ready, "ContainersNotReady" if not ready else None)
        return out

    def write_status(
        self,
        phase: str,
        statuses: list[dict[str, Any]],
        ready: bool,
        started: bool,
        message: str | None = None,
        reason: str | None = None,
    ) -> None:
        status: dict[str, Any] = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": (self.pod.get("status") or {}).get("startTime") or now(),
            "qosClass": (self.pod.get("status") or {}).get("qosClass") or _qos(self.pod),
            "conditions": self._conditions(ready, True, started),
            "containerStatuses": statuses,
            "message": message,
            "reason": reason,
        }
        for attempt in range(5):
            try:
                self.agent.core.patch_namespaced_pod_status(self.name, self.ns, {"status": status})
                return
            except ApiException as exc:
                if exc.status == 404:
                    return
                log.warning("status of %s/%s: %s", self.ns, self.name, exc)
                time.sleep(0.5 * (attempt + 1))

    def _container_status(self, c: dict[str, Any], state: dict[str, Any], ready: bool) -> dict:
        return {
            "name": c["name"],
            "image": c.get("image", ""),
            "imageID": "",
            "containerID": f"process://{self.uid}/{c['name']}",
            "ready": ready,
            "started": "running" in state,
            "restartCount": 0,
            "state": state,
            "lastState": {},
        }

    def event(self, reason: str, message: str, kind: str = "Warning") -> None:
        body = {
            "metadata": {"generateName": f"{self.name}.", "namespace": self.ns},
            "involvedObject": {
                "kind": "Pod",
                "namespace": self.ns,
                "name": self.name,
                "uid": self.uid,
                "apiVersion": "v1",
            },
            "reason": reason,
            "message": message[:1024],
            "type": kind,
            "source": {"component": "kubelet", "host": self.agent.node},
            "firstTimestamp": now(),
            "lastTimestamp": now(),
            "count": 1,
        }
        try:
            self.agent.core.create_namespaced_event(self.ns, body)
        except ApiException as exc:
            log.debug("event: %s", exc)

    # volumes ------------------------------------------------------------------------------

    def _write_files(
        self, target: Path, files: dict[str, bytes], mode: int, gid: int | None
    ) -> None:
        target.mkdir(parents=True, exist_ok=True)
        for rel, data in files.items():
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(data)
            os.chmod(tmp, mode)
            if gid is not None:
                os.chown(tmp, 0, gid)
            os.replace(tmp, path)
        if gid is not None:
            os.chown(target, 0, gid)
        os.chmod(target, 0o755 if gid is None else 0o2755)

    def _keys(
        self, kind: str, name: str, items: list[dict] | None, optional: bool
    ) -> dict[str, bytes]:
        try:
            if kind == "configmap":
                obj = self.agent.core.read_namespaced_config_map(name, self.ns)
                data = {k: v.encode() for k, v in (obj.data or {}).items()}
                data.update({k: _b64(v) for k, v in (obj.binary_data or {}).items()})
            else:
                obj = self.agent.core.read_namespaced_secret(name, self.ns)
                data = {k: _b64(v) for k, v in (obj.data or {}).items()}
        except ApiException as exc:
            if exc.status == 404 and optional:
                return {}
            raise MountError(f"{kind} {name!r}: {exc.status} {exc.reason}") from exc
        if not items:
            return data
        out = {}
        for item in items:
            if item["key"] not in data:
                if optional:
                    continue
                raise MountError(f"{kind} {name!r} has no key {item['key']!r}")
            out[item["path"]] = data[item["key"]]
        return out

    def _token(self, source: dict[str, Any]) -> tuple[bytes, float]:
        seconds = int(source.get("expirationSeconds") or 3607)
        spec = {
            "audiences": [source["audience"]] if source.get("audience") else None,
            "expirationSeconds": seconds,
            "boundObjectRef": {
                "kind": "Pod",
                "apiVersion": "v1",
                "name": self.name,
                "uid": self.uid,
            },
        }
        sa = self.pod["spec"].get("serviceAccountName") or "default"
        resp = self.agent.core.create_namespaced_service_account_token(sa, self.ns, {"spec": spec})
        exp = resp.status.expiration_timestamp
        life = (exp - dt.datetime.now(dt.UTC)).total_seconds() if exp else seconds
        return resp.status.token.encode(), life

    def prepare_volume(self, vol: dict[str, Any], gid: int | None) -> Path:
        name = vol["name"]
        target = self.dir / "volumes" / name
        if "emptyDir" in vol:
            target.mkdir(parents=True, exist_ok=True)
            os.chmod(target, 0o777)
            return target
        if "configMap" in vol or "secret" in vol:
            kind = "configmap" if "configMap" in vol else "secret"
            src = vol.get("configMap") or vol.get("secret") or {}
            files = self._keys(
                kind,
                str(src.get("name") or src.get("secretName")),
                src.get("items"),
                bool(src.get("optional")),
            )
            self._write_files(target, files, int(src.get("defaultMode", 0o644)), gid)
            return target
        if "projected" in vol:
            files = {}
            mode = int(vol["projected"].get("defaultMode", 0o644))
            for source in vol["projected"].get("sources") or []:
                if "serviceAccountToken" in source:
                    sat = source["serviceAccountToken"]
                    token, life = self._token(sat)
                    files[sat["path"]] = token
                    self.token_files.append(
                        (target / sat["path"], sat, time.monotonic() + 0.8 * life)
                    )
                elif "configMap" in source or "secret" in source:
                    kind = "configmap" if "configMap" in source else "secret"
                    src = source.get("configMap") or source.get("secret") or {}
                    files.update(
                        self._keys(kind, src["name"], src.get("items"), bool(src.get("optional")))
                    )
                elif "downwardAPI" in source:
                    for item in source["downwardAPI"].get("items") or []:
                        value = _field(self.pod, item.get("fieldRef", {}).get("fieldPath", ""))
                        files[item["path"]] = value.encode()
            self._write_files(target, files, mode, gid)
            return target
        if "persistentVolumeClaim" in vol:
            claim = vol["persistentVolumeClaim"]["claimName"]
            try:
                pvc = self.agent.core.read_namespaced_persistent_volume_claim(claim, self.ns)
            except ApiException as exc:
                raise MountError(f"persistentvolumeclaim {claim!r}: {exc.status}") from exc
            if not pvc.spec.volume_name or (pvc.status and pvc.status.phase != "Bound"):
                raise MountError(f"persistentvolumeclaim {claim!r} is not bound")
            pv = self.agent.core.read_persistent_volume(pvc.spec.volume_name)
            path = (pv.spec.host_path and pv.spec.host_path.path) or (
                pv.spec.local and pv.spec.local.path
            )
            if not path:
                raise MountError(f"volume {pv.metadata.name}: only hostPath and local PVs")
            Path(path).mkdir(parents=True, exist_ok=True)
            return Path(path)
        if "hostPath" in vol:
            return Path(vol["hostPath"]["path"])
        raise MountError(f"volume {name!r}: kind not supported by the node agent")

    def _refresh_tokens(self) -> None:
        for i, (path, source, due) in enumerate(self.token_files):
            if time.monotonic() < due:
                continue
            try:
                token, life = self._token(source)
            except Exception as exc:
                log.warning("token refresh for %s: %s", self.name, exc)
                continue
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(token)
            os.chmod(tmp, path.stat().st_mode & 0o777)
            os.chown(tmp, path.stat().st_uid, path.stat().st_gid)
            os.replace(tmp, path)
            self.token_files[i] = (path, source, time.monotonic() + 0.8 * life)

    # environment --------------------------------------------------------------------------

    def env(self, c: dict[str, Any]) -> dict[str, str]:
        env = {
            "PATH": ":".join(p for p in (self.agent.extra_path, DEFAULT_PATH) if p),
            "HOSTNAME": self.pod["spec"].get("hostname") or self.name,
            "KUBERNETES_SERVICE_HOST": self.agent.api_host,
            "KUBERNETES_SERVICE_PORT": str(self.agent.api_port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(self.agent.api_port),
        }
        for src in c.get("envFrom") or []:
            prefix = src.get("prefix", "")
            ref = src.get("configMapRef") or src.get("secretRef")
            kind = "configmap" if "configMapRef" in src else "secret"
            for k, v in self._keys(kind, ref["name"], None, bool(ref.get("optional"))).items():
                env[prefix + k] = v.decode()
        for item in c.get("env") or []:
            if "valueFrom" not in item:
                env[item["name"]] = _expand(item.get("value", ""), env)
                continue
            vf = item["valueFrom"]
            if "secretKeyRef" in vf or "configMapKeyRef" in vf:
                kind = "secret" if "secretKeyRef" in vf else "configmap"
                ref = vf.get("secretKeyRef") or vf.get("configMapKeyRef")
                got = self._keys(
                    kind, ref["name"], [{"key": ref["key"], "path": "v"}], bool(ref.get("optional"))
                )
                if "v" in got:
                    env[item["name"]] = got["v"].decode()
            elif "fieldRef" in vf:
                env[item["name"]] = _field(self.pod, vf["fieldRef"]["fieldPath"])
        return env

    # processes ----------------------------------------------------------------------------

    def command(self, c: dict[str, Any]) -> list[str]:
        """``command`` + ``args``; without a command, the image's entrypoint (the agent's table:
        the image's CMD is not modelled, an absent ``args`` means none)."""
        cmd = c.get("command") or self.agent.images.get(c.get("image", ""), [])
        if not cmd:
            raise MountError(f"image {c.get('image')!r} has no entrypoint the agent knows")
        return [*cmd, *(c.get("args") or [])]

    def launch(self, c: dict[str, Any], mounts: list[tuple[Path, str, bool]]) -> None:
        """Start the container's process in its own mount and UTS namespaces: a root file
        system that is this machine's, seen through an overlay whose writes go to a tmpfs (so
        nothing is written to the host, and ``readOnlyRootFilesystem`` makes it read-only), a
        private ``/dev`` (device nodes bound from the host, the container's own
        ``/dev/termination-log``), a fresh ``/run``, the volumes bound at their mount paths,
        the pod's hostname; then ``setpriv`` to the securityContext's user and groups."""
        spec = self.pod["spec"]
        psc = spec.get("securityContext") or {}
        csc = c.get("securityContext") or {}
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        gid = csc.get("runAsGroup", psc.get("runAsGroup"))
        groups = [g for g in [psc.get("fsGroup"), *(psc.get("supplementalGroups") or [])] if g]
        cdir = self.dir / "containers" / c["name"]
        (cdir / "t").mkdir(parents=True, exist_ok=True)
        term = cdir / "termination-log"
        term.write_bytes(b"")
        if uid is not None:
            os.chown(term, int(uid), int(gid or 0))
        q = shlex.quote
        t = q(str(cdir / "t"))
        outer = [
            "set -e",
            f"mount -t tmpfs -o mode=755 vjroot {t}",
            f"mkdir -p {t}/u {t}/w {t}/root",
            f"mount -t overlay overlay -o lowerdir=/,upperdir={t}/u,workdir={t}/w {t}/root",
            f"R={t}/root",
            'mkdir "$R/.vj"',
            'mount --rbind /proc "$R/proc"',
            'mount --rbind /sys "$R/sys"',
            'mount -t tmpfs -o mode=755 run "$R/run"',
            'mount -t tmpfs -o mode=755 dev "$R/dev"',
        ]
        for d in DEVICES:
            outer.append(f'touch "$R/dev/{d}" && mount --bind /dev/{d} "$R/dev/{d}"')
        outer += [
            'ln -s /proc/self/fd "$R/dev/fd"',
            'ln -s /proc/self/fd/0 "$R/dev/stdin"',
            'ln -s /proc/self/fd/1 "$R/dev/stdout"',
            'ln -s /proc/self/fd/2 "$R/dev/stderr"',
            'mkdir "$R/dev/shm" && mount -t tmpfs -o mode=1777 shm "$R/dev/shm"',
            'touch "$R/dev/termination-log"',
            f'mount --bind {q(str(term))} "$R/dev/termination-log"',
        ]
        for closed in _closed_interpreter_dirs():
            # An image's interpreter is open to its user; this machine's may live under a folder
            # closed to others (pyenv in /root): the container's first process starts (setpriv
            # execs it), but its own re-execs as that user were refused with EACCES
            # (multiprocessing's forkserver, subprocesses). Opened in the overlay only, never
            # on the host.
            outer.append(f'chmod o+x "$R"{q(str(closed))}')
        if uid is not None:
            # the image's own user (the Dockerfiles create uid 10001): tools that look the user
            # up (getpass, kopf's peering id) find it, as they would in the image
            user = f"u{int(uid)}:x:{int(uid)}:{int(gid if gid is not None else uid)}"
            outer.append(
                f'grep -q "^[^:]*:[^:]*:{int(uid)}:" "$R/etc/passwd" || '
                f'echo "{user}::/nonexistent:/usr/sbin/nologin" >> "$R/etc/passwd"'
            )
        if gid is not None:
            outer.append(
                f'grep -q "^[^:]*:[^:]*:{int(gid)}:" "$R/etc/group" || '
                f'echo "g{int(gid)}:x:{int(gid)}:" >> "$R/etc/group"'
            )
        inner = ["set -e", f"hostname {q(spec.get('hostname') or self.name)}"]
        for i, (host, path, ro) in enumerate(mounts):
            outer.append(f'mkdir "$R/.vj/{i}" && mount --bind {q(str(host))} "$R/.vj/{i}"')
            inner.append(f"mkdir -p {q(path)} && mount --bind /.vj/{i} {q(path)}")
            if ro:
                inner.append(f"mount -o remount,bind,ro {q(path)}")
            inner.append(f"umount /.vj/{i}")
        hidden = [
            k
            for k in self.agent.keep
            if any(not ro and (k == p or k.startswith(p.rstrip("/") + "/")) for _, p, ro in mounts)
        ]
        for j, k in enumerate(hidden):
            outer.append(f'mkdir "$R/.vj/k{j}" && mount --rbind {q(k)} "$R/.vj/k{j}"')
            inner.append(f"mkdir -p {q(k)} && mount --rbind /.vj/k{j} {q(k)}")
            inner.append(f"umount -l /.vj/k{j}")
        if csc.get("readOnlyRootFilesystem"):
            inner.append("mount -o remount,bind,ro /")
        priv = ["setpriv"]
        if uid is not None:
            priv += [f"--reuid={int(uid)}"]
        if gid is not None or uid is not None:
            priv += [f"--regid={int(gid if gid is not None else uid or 0)}"]
            priv += [f"--groups={','.join(str(g) for g in groups)}" if groups else "--clear-groups"]
        if csc.get("allowPrivilegeEscalation") is False:
            priv.append("--no-new-privs")
        inner.append(f"cd {q(c.get('workingDir') or '/')}")
        inner.append("exec " + shlex.join([*priv, "--", *self.command(c)]))
        (cdir / "inner.sh").write_text("\n".join(inner) + "\n")
        outer.append(f'cp {q(str(cdir / "inner.sh"))} "$R/.vj/inner.sh"')
        outer.append('exec chroot "$R" /bin/sh /.vj/inner.sh')
        (cdir / "start.sh").write_text("\n".join(outer) + "\n")
        out = (cdir / "log").open("ab")
        self.procs[c["name"]] = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--uts",
                "--propagation",
                "private",
                "--",
                "/bin/sh",
                str(cdir / "start.sh"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env(c),
            cwd="/",
            start_new_session=True,
        )
        out.close()
        self.started_at[c["name"]] = now()

    def _signal(self, sig: int) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass

    def run(self) -> None:
        try:
            self._run()
        except Exception:
            log.exception("pod %s/%s", self.ns, self.name)

    def _run(self) -> None:
        spec = self.pod["spec"]
        containers = spec["containers"]
        waiting = [
            self._container_status(c, {"waiting": {"reason": "ContainerCreating"}}, False)
            for c in containers
        ]
        self.write_status("Pending", waiting, ready=False, started=False)
        gid = (spec.get("securityContext") or {}).get("fsGroup")
        # volumes (retried while their objects are missing, like the kubelet's FailedMount)
        paths: dict[str, Path] = {}
        warned = ""
        while True:
            with self.changed:
                if self.deleting_since is not None:
                    self._finish_deleted(containers)
                    return
            try:
                for vol in spec.get("volumes") or []:
                    if vol["name"] not in paths:
                        paths[vol["name"]] = self.prepare_volume(vol, gid)
                break
            except (MountError, ApiException) as exc:
                text = f"MountVolume.SetUp failed: {exc}"
                if text != warned:
                    self.event("FailedMount", text)
                    warned = text
                with self.changed:
                    self.changed.wait(timeout=2)
        for c in containers:
            self.mounts[c["name"]] = [
                (
                    paths[m["name"]] / m["subPath"] if m.get("subPath") else paths[m["name"]],
                    m["mountPath"],
                    bool(m.get("readOnly")),
                )
                for m in c.get("volumeMounts") or []
            ]
        self._launch_and_wait(containers)

    def _launch_and_wait(self, containers: list[dict[str, Any]]) -> None:
        spec = self.pod["spec"]
        try:
            for c in containers:
                self.launch(c, self.mounts[c["name"]])
        except (MountError, ApiException, OSError) as exc:
            self._signal(signal.SIGKILL)
            bad = [
                self._container_status(
                    c,
                    {"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}},
                    False,
                )
                for c in containers
            ]
            self.write_status("Pending", bad, ready=False, started=True)
            self.event("Failed", f"Error: {exc}")
            with self.changed:
                while self.deleting_since is None:
                    self.changed.wait(timeout=5)
            self._finish_deleted(containers)
            return
        running = [
            self._container_status(c, {"running": {"startedAt": self.started_at[c["name"]]}}, True)
            for c in containers
        ]
        for st in running:
            st["restartCount"] = self.restarts
        self.write_status("Running", running, ready=True, started=True)
        killed = False
        while any(p.poll() is None for p in self.procs.values()):
            self._refresh_tokens()
            with self.changed:
                # a process's exit is not signalled: look 10 times a second (not once), so the
                # pod's terminated state follows its exit within 0.1 s
                self.changed.wait(timeout=0.1)
                deleting = self.deleting_since
            if deleting is not None:
                if not killed:
                    self._signal(signal.SIGTERM)
                    killed = True
                if time.monotonic() - deleting >= self.grace:
                    self._signal(signal.SIGKILL)
        for p in self.procs.values():
            p.wait()
        statuses = []
        codes = []
        for c in containers:
            code = self.procs[c["name"]].returncode
            code = 128 - code if code < 0 else code  # killed by a signal: 128 + signal
            codes.append(code)
            state = {
                "terminated": {
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": self.started_at[c["name"]],
                    "finishedAt": now(),
                    "containerID": f"process://{self.uid}/{c['name']}",
                }
            }
            message = self._termination_message(c, code)
            if message:
                state["terminated"]["message"] = message
            statuses.append(self._container_status(c, state, False))
        policy = spec.get("restartPolicy") or "Always"
        again = policy == "Always" or (policy == "OnFailure" and any(codes))
        with self.changed:
            deleting = self.deleting_since is not None
        if again and not deleting:
            self._restart(containers, statuses)
            return
        phase = "Succeeded" if all(code == 0 for code in codes) else "Failed"
        self.write_status(phase, statuses, ready=False, started=False)
        with self.changed:
            if self.deleting_since is not None:
                self._final_delete()
                return
        # finished: stays until someone deletes it; then it is removed at once
        with self.changed:
            while self.deleting_since is None:
                self.changed.wait(timeout=5)
        self._final_delete()

    def _restart(self, containers: list[dict[str, Any]], last: list[dict[str, Any]]) -> None:
        """``restartPolicy`` Always/OnFailure: the kubelet restarts the containers in place,
        with a back-off (``CrashLoopBackOff``) and a growing ``restartCount``."""
        self.restarts += 1
        delay = min(30.0, 2.0 ** min(self.restarts, 5))
        waiting = []
        for c, old in zip(containers, last, strict=True):
            st = self._container_status(c, {"waiting": {"reason": "CrashLoopBackOff"}}, False)
            st["restartCount"] = self.restarts
            st["lastState"] = old["state"]
            waiting.append(st)
        self.write_status("Running", waiting, ready=False, started=True)
        with self.changed:
            self.changed.wait(timeout=delay)
            if self.deleting_since is not None:
                self._final_delete()
                return
        self.procs = {}
        self._launch_and_wait(containers)

    def _termination_message(self, c: dict[str, Any], code: int) -> str:
        text = ""
        term = self.dir / "containers" / c["name"] / "termination-log"
        try:
            text = term.read_text(errors="replace")[:4096]
        except OSError:
            pass
        if not text and code != 0 and c.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            log_file = self.dir / "containers" / c["name"] / "log"
            lines = log_file.read_text(errors="replace").splitlines()[-80:]
            text = "\n".join(lines)[-2048:]
        return text

    def _finish_deleted(self, containers: list[dict[str, Any]]) -> None:
        self._final_delete()

    def _final_delete(self) -> None:
        if self.deleted:
            return
        self.agent._final_delete(self.pod)


def _qos(pod: dict[str, Any]) -> str:
    reqs = [(c.get("resources") or {}) for c in pod["spec"]["containers"]]
    if all(r.get("limits") and r.get("limits") == r.get("requests") for r in reqs):
        return "Guaranteed"
    if any(r.get("limits") or r.get("requests") for r in reqs):
        return "Burstable"
    return "BestEffort"


def _field(pod: dict[str, Any], path: str) -> str:
    meta = pod["metadata"]
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": pod["spec"].get("nodeName"),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName"),
        "status.podIP": "127.0.0.1",
        "status.hostIP": "127.0.0.1",
    }
    if path in simple:
        return str(simple[path] or "")
    for prefix, source in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        if path.startswith(prefix + "['"):
            key = path[len(prefix) + 2 : -2]
            return str((meta.get(source) or {}).get(key, ""))
    return ""


def _expand(value: str, env: dict[str, str]) -> str:
    for k, v in env.items():
        value = value.replace(f"$({k})", v)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--api-host", default="127.0.0.1")
    parser.add_argument("--api-port", required=True, type=int)
    parser.add_argument(
        "--image", action="append", default=[], help="IMAGE=ENTRYPOINT (shell words)"
    )
    parser.add_argument("--path", default="", help="prepended to every container's PATH")
    parser.add_argument(
        "--keep", action="append", default=[], help="a host folder kept visible over volumes"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    api = config.new_client_from_config(config_file=args.kubeconfig)
    images = {}
    for item in args.image:
        image, _, entry = item.partition("=")
        images[image] = shlex.split(entry)
    args.root.mkdir(parents=True, exist_ok=True)
    global AGENT
    AGENT = Agent(
        api, args.node, args.root, args.api_host, args.api_port, images, args.path, args.keep
    )
    AGENT.run()


def _stop(*_: Any) -> None:
    """SIGTERM to the agent: its pods' processes go with it (no orphans after a test run)."""
    for run in list(AGENT.pods.values()) if AGENT is not None else []:
        run._signal(signal.SIGKILL)
    os._exit(0)


AGENT: Agent | None = None

if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)
    main()
