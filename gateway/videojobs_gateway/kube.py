"""The gateway's only Kubernetes API caller: a small asyncio client (aiohttp).

What it does: TokenReview and SubjectAccessReview (auth mode ``client``); list and watch
``VideoProcessingJob`` s (the cluster backend's cache); create, patch and delete them, as the
caller when an impersonation target is given (``Impersonate-User``/``Impersonate-Group``).
Connection settings come from the in-cluster service account, else from the kubeconfig
(``KUBECONFIG``), read with the ``kubernetes`` package's loaders.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from videojobs.models import GROUP, PLURAL, VERSION
from videojobs_gateway.auth import UserInfo

VPJ_BASE = f"/apis/{GROUP}/{VERSION}"


class KubeError(Exception):
    """An API answer other than 2xx; ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Impersonate:
    user: str
    groups: tuple[str, ...] = ()


class KubeApi:
    """Async calls to one API server; ``requests`` counts every call (benchmarks read it)."""

    def __init__(
        self,
        server: str,
        *,
        token: str | None = None,
        ssl_context: ssl.SSLContext | bool | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.ssl = ssl_context
        self.requests = 0
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_environment(cls) -> KubeApi:
        """In-cluster service account, else the kubeconfig."""
        import kubernetes

        cfg = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_incluster_config(client_configuration=cfg)
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(client_configuration=cfg)
        token = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
        if token and token.lower().startswith("bearer "):
            token = token[7:]
        context: ssl.SSLContext | bool | None = None
        if cfg.host.startswith("https"):
            if not cfg.verify_ssl:
                context = False
            else:
                context = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
                if cfg.cert_file:
                    context.load_cert_chain(cfg.cert_file, cfg.key_file)
        return cls(cfg.host, token=token, ssl_context=context)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"User-Agent": "videojobs-gateway"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            self._session = aiohttp.ClientSession(
                headers=headers,
                connector=aiohttp.TCPConnector(ssl=self.ssl if self.ssl is not None else True),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        as_user: Impersonate | None = None,
        content_type: str = "application/json",
    ) -> Any:
        headers = {"Content-Type": content_type}
        if as_user is not None:
            headers["Impersonate-User"] = as_user.user
        self.requests += 1
        data = None if body is None else json.dumps(body)
        extra: list[tuple[str, str]] = []
        if as_user is not None:
            extra = [("Impersonate-Group", g) for g in as_user.groups]
        all_headers = list(headers.items()) + extra
        async with self.session.request(
            method, self.server + path, data=data, params=params, headers=all_headers
        ) as resp:
            text = await resp.text()
            if resp.status >= 300:
                try:
                    message = json.loads(text).get("message", text)
                except (ValueError, AttributeError):
                    message = text
                raise KubeError(resp.status, str(message)[:500])
            return json.loads(text) if text else None

    # -- auth ------------------------------------------------------------------------------

    async def token_review(self, token: str) -> UserInfo | None:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        }
        answer = await self.call("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body)
        status = (answer or {}).get("status") or {}
        if not status.get("authenticated"):
            return None
        user = status.get("user") or {}
        if not user.get("username"):
            return None
        return UserInfo(str(user["username"]), tuple(user.get("groups") or ()))

    async def access_review(self, user: UserInfo, namespace: str, verb: str, resource: str) -> bool:
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user.username,
                "groups": list(user.groups),
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": verb,
                    "group": GROUP,
                    "resource": resource,
                },
            },
        }
        answer = await self.call("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body)
        return bool(((answer or {}).get("status") or {}).get("allowed"))

    # -- VideoProcessingJobs ---------------------------------------------------------------

    @staticmethod
    def vpj_path(namespace: str | None, name: str | None = None) -> str:
        base = (
            f"{VPJ_BASE}/namespaces/{namespace}/{PLURAL}" if namespace else (f"{VPJ_BASE}/{PLURAL}")
        )
        return f"{base}/{name}" if name else base

    async def list_vpjs(self, namespace: str | None) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", self.vpj_path(namespace))
        return result

    async def watch_vpjs(
        self, namespace: str | None, resource_version: str | None
    ) -> AsyncIterator[dict[str, Any]]:
        """Watch events (``{"type": ..., "object": ...}``) until the server ends the stream."""
        params = {"watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": "300"}
        if resource_version:
            params["resourceVersion"] = resource_version
        self.requests += 1
        timeout = aiohttp.ClientTimeout(total=None, sock_read=400)
        async with self.session.get(
            self.server + self.vpj_path(namespace), params=params, timeout=timeout
        ) as resp:
            if resp.status >= 300:
                raise KubeError(resp.status, await resp.text())
            # one JSON object per line; objects can be large (up to 1.5 MiB), so lines are split
            # here rather than left to the client's line reader and its limits
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
            if buffer.strip():
                yield json.loads(buffer)

    async def get_vpj(
        self, namespace: str, name: str, as_user: Impersonate | None
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "GET", self.vpj_path(namespace, name), as_user=as_user
        )
        return result

    async def create_vpj(
        self, namespace: str, body: dict[str, Any], as_user: Impersonate | None
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "POST", self.vpj_path(namespace), body, as_user=as_user
        )
        return result

    async def patch_vpj(
        self, namespace: str, name: str, patch: dict[str, Any], as_user: Impersonate | None
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "PATCH",
            self.vpj_path(namespace, name),
            patch,
            as_user=as_user,
            content_type="application/merge-patch+json",
        )
        return result

    async def delete_vpj(self, namespace: str, name: str, as_user: Impersonate | None) -> None:
        await self.call("DELETE", self.vpj_path(namespace, name), as_user=as_user)
