"""The one ASGI middleware around every request: request id, size limit, metrics, access log.

Plain ASGI (not ``BaseHTTPMiddleware``), so a status read pays a few microseconds for it.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from videojobs_gateway.metrics import Metrics
from videojobs_gateway.problems import ProblemError

access_log = logging.getLogger("videojobs_gateway.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _problem_bytes(status: int, title: str, detail: str, request_id: str) -> bytes:
    return json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail,
         "request_id": request_id}
    ).encode()  # fmt: skip


class GatewayMiddleware:
    """Request ids (``X-Request-ID`` in and out), body size limit (413), metrics, access log."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

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

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

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
            await self.app(scope, receive_wrapper, send_wrapper)
        finally:
            self._done(scope, status_holder[0], start, request_id)

    async def _refuse(self, send: Send, status: int, detail: str, request_id: str) -> None:
        body = _problem_bytes(status, "Content Too Large", detail, request_id)
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
                    }
                )
            )
