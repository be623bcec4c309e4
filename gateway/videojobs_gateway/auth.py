"""Authentication modes (anchor: Argo Server's auth modes): none, apikey, header, client.

Each mode is an :class:`Authenticator` whose ``authenticate(request)`` returns the caller's
:class:`~videojobs_gateway.backend.Identity` or raises a 401/403 problem. A caller may name the
namespace to work in (``?namespace=`` or ``X-Videojobs-Namespace``); otherwise their own.

- ``none``: one local user; for loopback use (``videojobs serve`` refuses another bind).
- ``apikey``: ``Authorization: Bearer <key>`` or ``X-Api-Key``; the keys file (a mounted Secret
  key) lists ``{name, sha256, namespace, rate}``; it is re-read when it changes, so a key removed
  from it is refused at once. A key works only in its namespace (403 elsewhere).
- ``header``: an authenticating proxy sets ``X-Remote-User`` (and groups, namespace); the
  headers count only from the configured proxy addresses; from anywhere else they are ignored.
- ``client``: the caller's Kubernetes bearer token, checked with a TokenReview for the gateway's
  own audience (``token_audiences``; answers cached for ``token_cache_seconds``, at most
  ``token_cache_entries``); what they may do is asked with a SubjectAccessReview (the job's name,
  the user's uid and extra included; cached the same way), and the cluster backend writes with
  the caller's own token (no impersonation), so Kubernetes RBAC is the one permission system.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml
from fastapi import Request

from videojobs_gateway.backend import Identity, UserInfo
from videojobs_gateway.problems import ProblemError
from videojobs_gateway.settings import GatewaySettings

NAMESPACE_HEADER = "X-Videojobs-Namespace"
_NS = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class Authenticator(Protocol):
    mode: str

    async def authenticate(self, request: Request) -> Identity: ...


def unauthorized(detail: str, scheme: str = "Bearer") -> ProblemError:
    return ProblemError(
        401, "Unauthorized", detail, type_="unauthorized",
        headers={"WWW-Authenticate": f'{scheme} realm="videojobs"'},
    )  # fmt: skip


def forbidden(detail: str) -> ProblemError:
    return ProblemError(403, "Forbidden", detail, type_="forbidden")


def requested_namespace(request: Request) -> str | None:
    """The namespace the caller asks for, if any (400 when malformed)."""
    ns = request.query_params.get("namespace") or request.headers.get(NAMESPACE_HEADER)
    if ns is not None and not _NS.match(ns):
        raise ProblemError(400, "Bad Request", f"namespace: not a namespace name ({ns!r})")
    return ns


def client_key(request: Request) -> str:
    """The caller's address: the one a trusted proxy forwarded for, else the connection's."""
    forwarded = request.scope.get("forwarded_for")
    if forwarded:
        return str(forwarded)
    return request.client.host if request.client else "-"


def bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


class NoAuth:
    """``none``: everyone is one local user in one namespace (loopback use)."""

    mode = "none"

    def __init__(self, namespace: str) -> None:
        self.identity = Identity(name="local", namespace=namespace)

    async def authenticate(self, request: Request) -> Identity:
        ns = requested_namespace(request)
        if ns is not None and ns != self.identity.namespace:
            raise forbidden(f"this gateway serves namespace {self.identity.namespace!r} only")
        return self.identity


@dataclass(frozen=True)
class ApiKey:
    name: str
    sha256: str
    namespace: str
    rate: float | None = None


def hash_key(key: str) -> str:
    """What the keys file stores for ``key``."""
    return hashlib.sha256(key.encode()).hexdigest()


def load_keys(path: Path) -> list[ApiKey]:
    """The keys of a YAML/JSON keys file (a list, or ``{keys: [...]}``)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if isinstance(data, dict):
        data = data.get("keys", [])
    keys = []
    for i, entry in enumerate(data):
        try:
            keys.append(
                ApiKey(
                    name=str(entry["name"]),
                    sha256=str(entry["sha256"]).lower(),
                    namespace=str(entry["namespace"]),
                    rate=float(entry["rate"]) if entry.get("rate") is not None else None,
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: keys[{i}]: {exc}") from None
    return keys


class ApiKeyAuth:
    """``apikey``: hashed keys from a file, each bound to a namespace and a rate."""

    mode = "apikey"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, ApiKey] = {}
        self._reload()

    def _reload(self) -> None:
        try:
            st = self.path.stat()
        except OSError:
            self._keys, self._stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._keys = {k.sha256: k for k in load_keys(self.path)}
            self._stamp = stamp

    async def authenticate(self, request: Request) -> Identity:
        key = bearer(request) or request.headers.get("x-api-key")
        if not key:
            raise unauthorized("an API key is required (Authorization: Bearer <key>)")
        self._reload()
        digest = hash_key(key)
        found = next((k for h, k in self._keys.items() if hmac.compare_digest(h, digest)), None)
        if found is None:
            raise unauthorized("unknown or revoked API key")
        ns = requested_namespace(request)
        if ns is not None and ns != found.namespace:
            raise forbidden(f"key {found.name!r} is bound to namespace {found.namespace!r}")
        return Identity(name=f"key:{found.name}", namespace=found.namespace, rate=found.rate)


class HeaderAuth:
    """``header``: identity headers from a trusted authenticating proxy only."""

    mode = "header"

    def __init__(self, settings: GatewaySettings) -> None:
        self.networks = [ipaddress.ip_network(c, strict=False) for c in settings.trusted_proxies]
        self.settings = settings

    def trusted(self, host: str | None) -> bool:
        if host is None:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.networks)

    async def authenticate(self, request: Request) -> Identity:
        client = request.client.host if request.client else None
        if not self.trusted(client):
            # identity headers from anyone but the proxy are ignored: no identity at all
            raise unauthorized(
                f"requests must come through the authenticating proxy (not {client})", "Proxy"
            )
        user = request.headers.get(self.settings.user_header)
        if not user:
            raise unauthorized(f"the proxy sent no {self.settings.user_header}", "Proxy")
        groups = tuple(
            g.strip()
            for g in request.headers.get(self.settings.group_header, "").split(",")
            if g.strip()
        )
        own = request.headers.get(self.settings.namespace_header) or self.settings.namespace
        ns = requested_namespace(request)
        if ns is not None and ns != own:
            raise forbidden(f"{user} works in namespace {own!r}")
        return Identity(name=f"user:{user}", namespace=own, groups=groups)


# -- client mode ------------------------------------------------------------------------------


class Reviewer(Protocol):
    """The Kubernetes API calls client mode needs (see :mod:`videojobs_gateway.kube`)."""

    async def token_review(self, token: str) -> UserInfo | None: ...

    async def access_review(
        self, user: UserInfo, namespace: str, verb: str, resource: str, name: str | None = None
    ) -> bool: ...


_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "DELETE": "delete"}


class _TTLCache:
    """Answers kept ``seconds``, at most ``entries`` of them (expired ones go first, then the
    oldest): a flood of distinct bogus tokens cannot grow it."""

    def __init__(
        self, seconds: float, entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.entries = max(1, entries)
        self.clock = clock
        self._data: dict[Any, tuple[float, Any]] = {}

    def __len__(self) -> int:
        return len(self._data)

    def cached(self, key: Any) -> bool:
        """True when an unexpired answer for ``key`` is kept."""
        hit = self._data.get(key)
        return hit is not None and hit[0] > self.clock()

    async def get(self, key: Any, make: Callable[[], Awaitable[Any]]) -> Any:
        now = self.clock()
        hit = self._data.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await make()
        self._data.pop(key, None)
        if len(self._data) >= self.entries:
            self._data = {k: v for k, v in self._data.items() if v[0] > now}
            while len(self._data) >= self.entries:
                del self._data[next(iter(self._data))]  # insertion order: the oldest
        self._data[key] = (now + self.seconds, value)
        return value


class ClientAuth:
    """``client``: the caller's Kubernetes token; RBAC decides (SubjectAccessReview)."""

    mode = "client"

    def __init__(self, reviewer: Reviewer, settings: GatewaySettings) -> None:
        self.reviewer = reviewer
        self.settings = settings
        self.tokens = _TTLCache(settings.token_cache_seconds, settings.token_cache_entries)
        self.access = _TTLCache(settings.token_cache_seconds, settings.token_cache_entries)

    async def authenticate(self, request: Request) -> Identity:
        token = bearer(request)
        if token is None:
            raise unauthorized("a Kubernetes bearer token is required")
        digest = hashlib.sha256(token.encode()).hexdigest()
        fresh = not self.tokens.cached(digest)
        failures = getattr(request.app.state, "failures", None)
        client = client_key(request)
        if fresh and failures is not None:
            failures.check(client)  # before a TokenReview for a token not seen lately
        user: UserInfo | None = await self.tokens.get(
            digest, lambda: self.reviewer.token_review(token)
        )
        if user is None and fresh and failures is not None:
            failures.failed(client)
        if user is None:
            raise unauthorized("the token was not accepted by the Kubernetes API (TokenReview)")
        ns = requested_namespace(request) or self.settings.namespace
        verb = _VERBS.get(request.method, "get")
        if request.method == "GET" and request.url.path.endswith("/jobs"):
            verb = "list"
        if request.method == "POST" and request.url.path.endswith(("/cancel", "/retry")):
            verb = "patch"
        job = request.path_params.get("job_id")
        name = str(job) if job and verb != "create" else None
        allowed = await self.access.get(
            (user, ns, verb, name),
            lambda: self.reviewer.access_review(user, ns, verb, "videoprocessingjobs", name),
        )
        if not allowed:
            what = f"videoprocessingjobs/{name}" if name else "videoprocessingjobs"
            raise forbidden(f"{user.username} may not {verb} {what} in {ns!r}")
        return Identity(name=user.username, namespace=ns, token=token, groups=user.groups)


def build_authenticator(
    settings: GatewaySettings, reviewer: Reviewer | None = None
) -> Authenticator:
    """The authenticator of ``settings.auth_mode``."""
    if settings.auth_mode == "apikey":
        if settings.api_keys_file is None:
            raise ValueError("auth mode apikey needs VIDEOJOBS_GATEWAY_API_KEYS_FILE")
        return ApiKeyAuth(settings.api_keys_file)
    if settings.auth_mode == "header":
        if not settings.trusted_proxies:
            raise ValueError("auth mode header needs VIDEOJOBS_GATEWAY_TRUSTED_PROXIES")
        return HeaderAuth(settings)
    if settings.auth_mode == "client":
        if reviewer is None:
            from videojobs_gateway.kube import KubeApi

            reviewer = KubeApi.from_environment(settings.token_audiences)
        return ClientAuth(reviewer, settings)
    return NoAuth(settings.namespace)


__all__ = ["json"]
