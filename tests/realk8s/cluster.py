"""A real Kubernetes control plane on 127.0.0.1, from the official binaries (``.ci/k8s/build.sh``).

etcd, kube-apiserver (RBAC + Node authorization, ServiceAccount token signing, the PodSecurity,
ResourceQuota and NodeRestriction admission plugins), kube-controller-manager (Job, garbage
collector, TTL-after-finished, ServiceAccount and token, namespace, quota, root CA publisher,
PV binder, ClusterRole aggregation, Deployments and ReplicaSets for the chart's operator) and
kube-scheduler, each with its own client certificate,
the way ``hack/local-up-cluster.sh`` and controller-runtime's envtest start them. Every
component logs to a file under the cluster's folder, which is kept.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / ".ci" / "k8s" / "build.sh"
DEFAULT_VERSION = "v1.37.2"
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
CONTROLLERS = (
    "job-controller",
    "garbage-collector-controller",
    "ttl-after-finished-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "namespace-controller",
    "resourcequota-controller",
    "root-ca-certificate-publisher-controller",
    "persistentvolume-binder-controller",
    "clusterrole-aggregation-controller",
    "deployment-controller",
    "replicaset-controller",
)
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  userGroups: ["system:serviceaccounts:kube-system"]
- level: Metadata
  userGroups: ["system:serviceaccounts"]
- level: None
"""
ADMISSION = ("NodeRestriction", "PodSecurity", "ResourceQuota", "ServiceAccount", "LimitRanger")


def cache_dir() -> Path:
    """Where ``.ci/k8s/build.sh`` keeps the binaries."""
    env = os.environ.get("VIDEOJOBS_K8S_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "videojobs" / "k8s"


def version() -> str:
    """The Kubernetes version the tier runs (``VIDEOJOBS_K8S_VERSION``, else the newest)."""
    return os.environ.get("VIDEOJOBS_K8S_VERSION") or DEFAULT_VERSION


def find_binaries() -> Path | None:
    """The folder with etcd and the control plane: ``KUBEBUILDER_ASSETS``, else the cache."""
    candidates = []
    if os.environ.get("KUBEBUILDER_ASSETS"):
        candidates.append(Path(os.environ["KUBEBUILDER_ASSETS"]))
    candidates.append(cache_dir() / version() / "bin")
    for folder in candidates:
        if all(os.access(folder / name, os.X_OK) for name in CONTROL_PLANE):
            return folder
    return None


def go_available() -> bool:
    return shutil.which("go") is not None or os.access("/usr/local/go/bin/go", os.X_OK)


def build(log: Path) -> Path | None:
    """Run the (idempotent, cached) build script; the bin folder, or None when it failed."""
    with log.open("ab") as out:
        proc = subprocess.run(
            ["bash", str(BUILD_SCRIPT), version()], stdout=subprocess.PIPE, stderr=out, check=False
        )
    if proc.returncode != 0:
        return None
    return find_binaries()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Certificates --------------------------------------------------------------------------------


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


@dataclass
class Pki:
    folder: Path
    ca_key: rsa.RSAPrivateKey = field(default_factory=_key)
    ca_cert: x509.Certificate | None = None

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "videojobs-test-ca")])
        now = dt.datetime.now(dt.UTC)
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca_file.write_bytes(self.ca_cert.public_bytes(serialization.Encoding.PEM))

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.crt"

    def issue(
        self, name: str, cn: str, orgs: tuple[str, ...] = (), *, server: bool = False
    ) -> tuple[Path, Path]:
        """A certificate signed by the CA: a client one (CN = user, O = groups) or a serving one
        for 127.0.0.1 and localhost."""
        assert self.ca_cert is not None
        key = _key()
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(
                x509.ExtendedKeyUsage(
                    [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
                    if server
                    else [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
                        x509.DNSName("localhost"),
                        x509.DNSName("kubernetes.default.svc"),
                    ]
                ),
                critical=False,
            )
        cert = builder.sign(self.ca_key, hashes.SHA256())
        crt, keyfile = self.folder / f"{name}.crt", self.folder / f"{name}.key"
        crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        keyfile.write_bytes(_pem_key(key))
        keyfile.chmod(0o600)
        return crt, keyfile

    def service_account_keys(self) -> tuple[Path, Path]:
        key = _key()
        priv, pub = self.folder / "sa.key", self.folder / "sa.pub"
        priv.write_bytes(_pem_key(key))
        pub.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return priv, pub


def write_kubeconfig(path: Path, server: str, ca: Path, cert: Path, key: Path) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
        f"clusters:\n- name: test\n  cluster:\n    server: {server}\n"
        f"    certificate-authority: {ca}\n"
        f"users:\n- name: test\n  user:\n    client-certificate: {cert}\n"
        f"    client-key: {key}\n"
        "contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n"
    )
    return path


def write_token_kubeconfig(path: Path, server: str, ca: Path, token: str) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
        f"clusters:\n- name: test\n  cluster:\n    server: {server}\n"
        f"    certificate-authority: {ca}\n"
        f"users:\n- name: test\n  user:\n    token: {token}\n"
        "contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n"
    )
    return path


# The control plane ---------------------------------------------------------------------------


class ControlPlaneError(RuntimeError):
    pass


@dataclass
class Cluster:
    """The running control plane; ``admin_kubeconfig`` is a ``system:masters`` client cert."""

    bin: Path
    folder: Path
    token_max_seconds: int | None = None
    extra_args: dict[str, list[str]] = field(default_factory=dict)
    """More flags per component (the operator benchmark raises the controllers' client rate
    limits, which at 20 requests a second would measure the Job controller, not the operator)."""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    server: str = ""
    admin_kubeconfig: Path = Path()
    pki: Pki | None = None
    ports: dict[str, int] = field(default_factory=dict)

    def log(self, component: str) -> Path:
        return self.folder / "logs" / f"{component}.log"

    def _start(self, name: str, args: list[str]) -> None:
        self.log(name).parent.mkdir(parents=True, exist_ok=True)
        out = self.log(name).open("ab")
        self.procs[name] = subprocess.Popen(
            [str(self.bin / name), *args, *self.extra_args.get(name, [])],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = self.log(name).read_text(errors="replace")[-3000:]
                raise ControlPlaneError(f"{name} exited with {proc.returncode}:\n{tail}")

    def _wait_http(self, what: str, url: str, ctx: ssl.SSLContext | None, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | str = ""
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(url, timeout=5, context=ctx) as resp:
                    if resp.status == 200:
                        return
                    last = f"HTTP {resp.status}"
            except Exception as exc:
                last = exc
            time.sleep(0.3)
        raise ControlPlaneError(f"{what} not ready after {timeout:.0f}s: {last}")

    def start(self) -> None:
        t0 = time.monotonic()
        self.folder.mkdir(parents=True, exist_ok=True)
        pki = self.pki = Pki(self.folder / "pki")
        serving = pki.issue("apiserver", "kube-apiserver", server=True)
        admin = pki.issue("admin", "admin", ("system:masters",))
        cm = pki.issue("controller-manager", "system:kube-controller-manager")
        sched = pki.issue("scheduler", "system:kube-scheduler")
        sa_key, sa_pub = pki.service_account_keys()
        p = self.ports = {k: free_port() for k in ("etcd", "peer", "api", "cm", "sched")}
        self.server = f"https://127.0.0.1:{p['api']}"
        kc = self.folder / "kubeconfigs"
        kc.mkdir(exist_ok=True)
        self.admin_kubeconfig = write_kubeconfig(kc / "admin", self.server, pki.ca_file, *admin)
        cm_kc = write_kubeconfig(kc / "controller-manager", self.server, pki.ca_file, *cm)
        sched_kc = write_kubeconfig(kc / "scheduler", self.server, pki.ca_file, *sched)

        etcd_url = f"http://127.0.0.1:{p['etcd']}"
        peer_url = f"http://127.0.0.1:{p['peer']}"
        self._start(
            "etcd",
            [
                f"--data-dir={self.folder / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--name=default",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
                # the default --max-request-bytes (1.5 MiB) is kept: it is a limit we test
            ],
        )
        self._wait_http("etcd", f"{etcd_url}/health", None, 60)

        api_args = [
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            # the "kubernetes" Service's endpoints cannot be a loopback address (envtest's way)
            "--endpoint-reconciler-type=none",
            f"--secure-port={p['api']}",
            f"--cert-dir={self.folder / 'apiserver-certs'}",
            f"--tls-cert-file={serving[0]}",
            f"--tls-private-key-file={serving[1]}",
            f"--client-ca-file={pki.ca_file}",
            "--authorization-mode=Node,RBAC",
            f"--enable-admission-plugins={','.join(ADMISSION)}",
            f"--service-account-key-file={sa_pub}",
            f"--service-account-signing-key-file={sa_key}",
            f"--service-account-issuer={self.server}",
            # tokens live as long as asked (the default stretches projected tokens to a year)
            "--service-account-extend-token-expiration=false",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=false",
            "--profiling=false",
            "--v=1",
        ]
        if self.token_max_seconds:
            api_args.append(f"--service-account-max-token-expiration={self.token_max_seconds}s")
        # an audit log of what ServiceAccounts (the operator's, the workers') ask, outside
        # kube-system's controllers (tests read it, as they read the emulator's request counts)
        policy = self.folder / "audit-policy.yaml"
        policy.write_text(AUDIT_POLICY)
        api_args += [
            f"--audit-policy-file={policy}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-mode=blocking",
        ]
        self._start("kube-apiserver", api_args)
        ctx = ssl.create_default_context(cafile=str(pki.ca_file))
        ctx.load_cert_chain(str(admin[0]), str(admin[1]))
        self._wait_http("kube-apiserver", f"{self.server}/readyz", ctx, 180)

        self._start(
            "kube-controller-manager",
            [
                f"--kubeconfig={cm_kc}",
                f"--authentication-kubeconfig={cm_kc}",
                f"--authorization-kubeconfig={cm_kc}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p['cm']}",
                f"--controllers={','.join(CONTROLLERS)}",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={sa_key}",
                f"--root-ca-file={pki.ca_file}",
                "--leader-elect=false",
                "--v=1",
            ],
        )
        self._start(
            "kube-scheduler",
            [
                f"--kubeconfig={sched_kc}",
                f"--authentication-kubeconfig={sched_kc}",
                f"--authorization-kubeconfig={sched_kc}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p['sched']}",
                "--leader-elect=false",
                "--v=1",
            ],
        )
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        self._wait_http(
            "kube-controller-manager", f"https://127.0.0.1:{p['cm']}/healthz", insecure, 120
        )
        self._wait_http("kube-scheduler", f"https://127.0.0.1:{p['sched']}/healthz", insecure, 120)
        self.started_in = time.monotonic() - t0

    @property
    def audit_log(self) -> Path:
        return self.folder / "logs" / "audit.log"

    def audit(self, user_prefix: str) -> list[dict[str, Any]]:
        """The audit events of users whose name starts with the prefix, one per request (a
        watch that is still open has only its ResponseStarted stage)."""
        found: dict[str, dict[str, Any]] = {}
        if not self.audit_log.exists():
            return []
        for line in self.audit_log.read_text().splitlines():
            event = json.loads(line)
            if str((event.get("user") or {}).get("username", "")).startswith(user_prefix):
                found[event["auditID"]] = event
        return list(found.values())

    def client_kubeconfig(self, name: str, cn: str, orgs: tuple[str, ...] = ()) -> Path:
        """A kubeconfig with a client certificate for user ``cn`` in groups ``orgs``."""
        assert self.pki is not None
        crt, key = self.pki.issue(name, cn, orgs)
        return write_kubeconfig(
            self.folder / "kubeconfigs" / name, self.server, self.pki.ca_file, crt, key
        )

    def token_kubeconfig(self, name: str, token: str) -> Path:
        assert self.pki is not None
        return write_token_kubeconfig(
            self.folder / "kubeconfigs" / name, self.server, self.pki.ca_file, token
        )

    def stop(self) -> None:
        for name in ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
