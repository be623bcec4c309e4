"""The gateway's only Kubernetes API caller: a small asyncio client (aiohttp).

What it does: TokenReview and SubjectAccessReview (auth mode ``client``); list and watch
``VideoProcessingJob`` s (the cluster backend's cache); create, patch and delete them, with the
caller's own token when one is given (:class:`Caller`, auth mode ``client``, as Argo Server's
client mode does: the gateway needs no ``impersonate`` right), else with its own.

Connection settings come from the in-cluster service account, else from the kubeconfig
(``KUBECONFIG``), read with the ``kubernetes`` package's loaders. In a pod the kubelet rotates the
projected ServiceAccount token (about hourly; it expires after an hour or so); the gateway
re-reads the token file when it changes (checked at most every :data:`TOKEN_RECHECK_SECONDS`)
and at once on a ``401``, and retries that request once with the new token.
"""

from __future__ import annotations

import json
import os
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from videojobs.models import GROUP, PLURAL, VERSION
from videojobs_gateway.backend import UserInfo

VPJ_BASE = f"/apis/{GROUP}/{VERSION}"
SA_TOKEN_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
TOKEN_RECHECK_SECONDS = 10.0
"""How often the token file's modification time is looked at (a 401 re-reads it at once)."""
LIST_PAGE_SIZE = 500
"""Resources per LIST page (client-go's informers and kubectl use 500)."""


class KubeError(Exception):
    """An API answer other than 2xx; ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Caller:
    """A request made with the caller's own bearer token (auth mode ``client``)."""

    token: str

    def __repr__(self) -> str:
        return "Caller(token=<hidden>)"


class KubeApi:
    """Async calls to one API server; ``requests`` counts every call (benchmarks read it)."""

    def __init__(
        self,
        server: str,
        *,
        token: str | None = None,
        token_file: Path | None = None,
        ssl_context: ssl.SSLContext | bool | None = None,
        audiences: list[str] | tuple[str, ...] = (),
    ) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.token_file = token_file
        """Re-read when it changes and on a 401 (the kubelet rotates projected tokens)."""
        self.ssl = ssl_context
        self.audiences = tuple(audiences)
        """TokenReview audiences: a caller's token must be minted for one of them."""
        self.requests = 0
        self.page_size = LIST_PAGE_SIZE
        """Resources per LIST request."""
        self.watch_seconds = 300
        """How long the API server keeps one watch request open (then it is resumed)."""
        self._session: aiohttp.ClientSession | None = None
        self._token_stamp: tuple[int, int] | None = None
        self._token_checked = 0.0
        if token_file is not None:
            self.reload_token(force=True)

    def reload_token(self, *, force: bool = False) -> bool:
        """Re-read :attr:`token_file` if it changed (or ``force``); True when the token did."""
        if self.token_file is None:
            return False
        now = time.monotonic()
        if not force and now - self._token_checked < TOKEN_RECHECK_SECONDS:
            return False
        self._token_checked = now
        try:
            st = os.stat(self.token_file)
            stamp = (st.st_mtime_ns, st.st_ino)
            if not force and stamp == self._token_stamp:
                return False
            token = self.token_file.read_text(encoding="utf-8").strip()
        except OSError:
            return False
        self._token_stamp = stamp
        changed = token != self.token
        self.token = token or self.token
        return changed

    def _auth_header(self, caller: Caller | None) -> dict[str, str]:
        if caller is not None:
            return {"Authorization": f"Bearer {caller.token}"}
        self.reload_token()
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @classmethod
    def from_environment(cls, audiences: list[str] | tuple[str, ...] = ()) -> KubeApi:
        """In-cluster service account (its token file re-read on rotation), else the
        kubeconfig."""
        import kubernetes

        cfg = kubernetes.client.Configuration()
        in_cluster = True
        try:
            kubernetes.config.load_incluster_config(client_configuration=cfg)
        except kubernetes.config.ConfigException:
            in_cluster = False
            kubernetes.config.load_kube_config(client_configuration=cfg)
        token = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
        if token and token.lower().startswith("bearer "):
            token = token[7:]
        token_file = SA_TOKEN_FILE if in_cluster and SA_TOKEN_FILE.is_file() else None
        context: ssl.SSLContext | bool | None = None
        if cfg.host.startswith("https"):
            if not cfg.verify_ssl:
                context = False
            else:
                context = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
                if cfg.cert_file:
                    context.load_cert_chain(cfg.cert_file, cfg.key_file)
        return cls(
            cfg.host, token=token, token_file=token_file, ssl_context=context, audiences=audiences
        )

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # no Authorization here: it is set per request (the caller's, or the current token)
            headers = {"User-Agent": "videojobs-gateway"}
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
        as_user: Caller | None = None,
        content_type: str = "application/json",
    ) -> Any:
        data = None if body is None else json.dumps(body)
        for attempt in (1, 2):
            headers = {"Content-Type": content_type, **self._auth_header(as_user)}
            self.requests += 1
            async with self.session.request(
                method, self.server + path, data=data, params=params, headers=headers
            ) as resp:
                text = await resp.text()
                status = resp.status
            # our own token expired or was rotated: re-read it and try once more
            if status == 401 and as_user is None and attempt == 1 and self.reload_token(force=True):
                continue
            break
        if status >= 300:
            try:
                message = json.loads(text).get("message", text)
            except (ValueError, AttributeError):
                message = text
            raise KubeError(status, str(message)[:500])
        return json.loads(text) if text else None

    # -- auth ------------------------------------------------------------------------------

    async def token_review(self, token: str) -> UserInfo | None:
        """Who ``token`` is, if it is valid for one of :attr:`audiences` (any audience the API
        server accepts when none are set)."""
        spec: dict[str, Any] = {"token": token}
        if self.audiences:
            spec["audiences"] = list(self.audiences)
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
        answer = await self.call("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body)
        status = (answer or {}).get("status") or {}
        if not status.get("authenticated"):
            return None
        if self.audiences and not set(status.get("audiences") or ()) & set(self.audiences):
            return None  # an authenticator that ignored the audiences we asked for
        user = status.get("user") or {}
        if not user.get("username"):
            return None
        given = user.get("extra") or {}
        extra = tuple(sorted((str(k), tuple(str(v) for v in vs or ())) for k, vs in given.items()))
        return UserInfo(
            str(user["username"]),
            tuple(user.get("groups") or ()),
            uid=str(user["uid"]) if user.get("uid") else None,
            extra=extra,
        )

    async def access_review(
        self, user: UserInfo, namespace: str, verb: str, resource: str, name: str | None = None
    ) -> bool:
        attributes = {"namespace": namespace, "verb": verb, "group": GROUP, "resource": resource}
        if name:
            attributes["name"] = name
        spec: dict[str, Any] = {
            "user": user.username,
            "groups": list(user.groups),
            "resourceAttributes": attributes,
        }
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {k: list(v) for k, v in user.extra}
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": spec,
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
        """Every VideoProcessingJob, read in pages of :attr:`page_size` (``limit`` +
        ``continue``): no answer is larger than a page, whatever the number of resources. The
        pages are one consistent snapshot; its ``resourceVersion`` (the first page's, which
        every continue token carries) is where a watch starts. An expired continue token (410)
        fails the listing: the caller lists again from the start."""
        items: list[dict[str, Any]] = []
        params: dict[str, str] = {"limit": str(self.page_size)}
        first: dict[str, Any] | None = None
        while True:
            page: dict[str, Any] = await self.call("GET", self.vpj_path(namespace), params=params)
            first = first or page
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
            params = {"limit": str(self.page_size), "continue": token}
        return {**first, "items": items}

    async def watch_vpjs(
        self, namespace: str | None, resource_version: str | None
    ) -> AsyncIterator[dict[str, Any]]:
        """Watch events (``{"type": ..., "object": ...}``) until the server ends the stream."""
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self.watch_seconds),
        }
        if resource_version:
            params["resourceVersion"] = resource_version
        self.requests += 1
        timeout = aiohttp.ClientTimeout(total=None, sock_read=400)
        async with self.session.get(
            self.server + self.vpj_path(namespace),
            params=params,
            timeout=timeout,
            headers=self._auth_header(None),
        ) as resp:
            if resp.status == 401:
                self.reload_token(force=True)  # the relist that follows uses the new token
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

    async def get_vpj(self, namespace: str, name: str, as_user: Caller | None) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "GET", self.vpj_path(namespace, name), as_user=as_user
        )
        return result

    async def create_vpj(
        self, namespace: str, body: dict[str, Any], as_user: Caller | None
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "POST", self.vpj_path(namespace), body, as_user=as_user
        )
        return result

    async def patch_vpj(
        self, namespace: str, name: str, patch: dict[str, Any], as_user: Caller | None
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(
            "PATCH",
            self.vpj_path(namespace, name),
            patch,
            as_user=as_user,
            content_type="application/merge-patch+json",
        )
        return result

    async def delete_vpj(self, namespace: str, name: str, as_user: Caller | None) -> None:
        await self.call("DELETE", self.vpj_path(namespace, name), as_user=as_user)
