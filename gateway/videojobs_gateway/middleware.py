"""The one ASGI middleware around every request: request id, Host allow-list, cross-site
writes, size limit, metrics, access log.

Plain ASGI (not ``BaseHTTPMiddleware``), so a status read pays a few microseconds for it.

- **Host** (DNS rebinding): with ``allowed_hosts`` set, a request naming any other host is
  ``400`` before it reaches a route (``videojobs serve`` on loopback answers loopback names only).
- **Cross-site writes** (CSRF): a ``POST``/``PUT``/``PATCH``/``DELETE`` whose ``Origin`` is not
  the gateway's own host nor a CORS origin is ``403``; a write with a body must be
  ``Content-Type: application/json`` (``415``): a browser sends that only after a CORS preflight,
  so a form or ``text/plain`` post from another site never reaches a route.
- **Forwarded addresses**: ``X-Forwarded-For`` is read only when the connection comes from one
  of ``trusted_proxies``, and only for the log; header-mode authentication checks the
  connection's own address.
- **Request timeout**: a response that has not started within ``request_timeout`` seconds is
  abandoned (the route is cancelled) and answered ``504``; a stream or a download that has
  started runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import re
import secrets
import time
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from videojobs_gateway.metrics import Metrics
from videojobs_gateway.problems import ProblemError

access_log = logging.getLogger("videojobs_gateway.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_TITLES = {400: "Bad Request", 403: "Forbidden", 413: "Content Too Large",
           415: "Unsupported Media Type", 504: "Gateway Timeout"}  # fmt: skip


def host_name(value: str) -> str:
    """The name part of a ``Host`` header (no port, no IPv6 brackets), lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def host_allowed(name: str, allowed: Sequence[str]) -> bool:
    """True when ``name`` is one of ``allowed`` (``*`` any, ``*.example.com`` subdomains)."""
    for pattern in allowed:
        pattern = host_name(pattern) if not pattern.startswith("*.") else pattern.lower()
        if pattern == "*" or name == pattern:
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _problem_bytes(status: int, title: str, detail: str, request_id: str) -> bytes:
    return json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail,
         "request_id": request_id}
    ).encode()  # fmt: skip


class GatewayMiddleware:
    """Request ids (``X-Request-ID`` in and out), body size limit (413), metrics, access log."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_body_bytes: int,
        allowed_hosts: Sequence[str] = (),
        cors_origins: Sequence[str] = (),
        trusted_proxies: Sequence[str] = (),
        request_timeout: float = 0.0,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.allowed_hosts = tuple(allowed_hosts)
        self.cors_origins = frozenset(o.rstrip("/").lower() for o in cors_origins)
        self.proxies = tuple(ipaddress.ip_network(c, strict=False) for c in trusted_proxies)
        self.request_timeout = request_timeout

    def _from_proxy(self, host: str | None) -> bool:
        try:
            address = ipaddress.ip_address(host or "")
        except ValueError:
            return False
        return any(address in net for net in self.proxies)

    def forwarded_for(self, scope: Scope, headers: dict[bytes, bytes]) -> str | None:
        """The client a trusted proxy forwarded for (the rightmost untrusted hop), else None."""
        client = scope.get("client")
        if not self.proxies or not client or not self._from_proxy(client[0]):
            return None
        hops = [
            h.strip() for h in headers.get(b"x-forwarded-for", b"").decode("latin-1").split(",")
        ]
        for hop in reversed([h for h in hops if h]):
            if not self._from_proxy(hop):
                return hop[:64]
        return None

    def refusal(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        """Why the request is refused before any route (Host, cross-site write), or None."""
        host = headers.get(b"host", b"").decode("latin-1")
        if self.allowed_hosts and not host_allowed(host_name(host), self.allowed_hosts):
            return 400, f"host {host[:100]!r} is not served here (allowed hosts: " + ", ".join(
                self.allowed_hosts
            ) + ")"
        if scope["method"] not in _UNSAFE:
            return None
        origin = headers.get(b"origin", b"").decode("latin-1").strip().rstrip("/").lower()
        if origin:
            same = origin.partition("://")[2] == host.strip().lower()
            if not same and origin not in self.cors_origins:
                return 403, f"cross-site request from {origin[:100]!r} refused"
        elif headers.get(b"sec-fetch-site", b"") == b"cross-site":
            return 403, "cross-site request refused"
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body_bytes:
            return 413, f"request body over {self.max_body_bytes} bytes"
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        has_body = length not in (b"0", b"") or b"transfer-encoding" in headers
        if (content_type or has_body) and not is_json(content_type):
            return 415, "a request body must be Content-Type: application/json"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else secrets.token_hex(8)
        scope["request_id"] = request_id
        status_holder = [500]
        rid_header = (b"x-request-id", request_id.encode())
        started = asyncio.Event()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.set()
                status_holder[0] = message["status"]
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        forwarded = self.forwarded_for(scope, headers)
        if forwarded is not None:
            scope["forwarded_for"] = forwarded
        refused = self.refusal(scope, headers)
        if refused is not None:
            await self._refuse(send_wrapper, refused[0], refused[1], request_id)
            self._done(scope, status_holder[0], start, request_id)
            return
        length = headers.get(b"content-length")
        limit = self.max_body_bytes
        if length is not None and length.isdigit() and int(length) > limit:
            await self._refuse(send_wrapper, 413, f"request body over {limit} bytes", request_id)
            self._done(scope, status_holder[0], start, request_id)
            return
        received = [0]

        async def receive_wrapper() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received[0] += len(message.get("body", b""))
                if received[0] > limit:
                    raise ProblemError(413, "Content Too Large", f"request body over {limit} bytes")
            return message

        try:
            if self.request_timeout > 0:
                await self._within_timeout(
                    self.app(scope, receive_wrapper, send_wrapper), started, send_wrapper,
                    request_id,
                )  # fmt: skip
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        finally:
            self._done(scope, status_holder[0], start, request_id)

    async def _within_timeout(
        self, call: Any, started: asyncio.Event, send: Send, request_id: str
    ) -> None:
        """Run the route; if its response has not started in time, cancel it and answer 504."""
        task = asyncio.ensure_future(call)
        waiter = asyncio.ensure_future(started.wait())
        try:
            await asyncio.wait(
                {task, waiter}, timeout=self.request_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        except BaseException:
            task.cancel()
            raise
        finally:
            waiter.cancel()
        if task.done() or started.is_set():
            await task
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if not started.is_set():
            detail = f"no answer within {self.request_timeout:g} s; try again later"
            await self._refuse(send, 504, detail, request_id)

    async def _refuse(self, send: Send, status: int, detail: str, request_id: str) -> None:
        body = _problem_bytes(status, _TITLES.get(status, "Refused"), detail, request_id)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _done(self, scope: Scope, status: int, start: float, request_id: str) -> None:
        elapsed = time.perf_counter() - start
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope["method"]
        self.metrics.observe(template, method, status, elapsed)
        if access_log.isEnabledFor(logging.INFO):
            state: dict[str, Any] = scope.get("state") or {}
            identity = state.get("identity")
            client = scope.get("client")
            access_log.info(
                json.dumps(
                    {
                        "request_id": request_id,
                        "method": method,
                        "path": scope["path"],
                        "route": template,
                        "status": status,
                        "ms": round(elapsed * 1000, 2),
                        "identity": getattr(identity, "name", None),
                        "namespace": getattr(identity, "namespace", None),
                        "client": client[0] if client else None,
                        "forwarded_for": scope.get("forwarded_for"),
                    }
                )
            )
