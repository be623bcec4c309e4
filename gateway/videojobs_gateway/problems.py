"""``application/problem+json`` (RFC 9457) responses, and the handlers that produce them."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from videojobs.errors import InvalidSpec
from videojobs_gateway.backend import BackendError

PROBLEM = "application/problem+json"
TYPE_BASE = "https://videojobs.io/problems/"


class ProblemError(Exception):
    """Raise from anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    request: Request | None,
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type_: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": TYPE_BASE + type_ if type_ else "about:blank",
        "title": title,
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    if request is not None:
        body["instance"] = request.url.path
        rid = getattr(request.state, "request_id", None) or request.scope.get("request_id")
        if rid:
            body["request_id"] = rid
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def invalid_response(request: Request, exc: InvalidSpec) -> Response:
    errors = [{"field": p.path, "message": p.message} for p in exc.problems]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem_response(request, 422, "Invalid job", detail, type_="invalid-job", errors=errors)


def install(app: FastAPI) -> None:
    """Every error the app can raise becomes a problem document."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> Response:
        return problem_response(
            request, exc.status, exc.title, exc.detail, type_=exc.type, headers=exc.headers,
            **exc.extra,
        )  # fmt: skip

    @app.exception_handler(BackendError)
    async def _backend(request: Request, exc: BackendError) -> Response:
        return problem_response(request, exc.status, exc.title, exc.detail)

    from videojobs_gateway.kube import KubeError

    @app.exception_handler(KubeError)
    async def _kube(request: Request, exc: KubeError) -> Response:
        if exc.status in (403, 404, 409, 422):
            return problem_response(request, exc.status, "Kubernetes API", exc.message)
        return problem_response(
            request, 502, "Bad Gateway", f"the Kubernetes API answered {exc.status}"
        )

    @app.exception_handler(InvalidSpec)
    async def _invalid(request: Request, exc: InvalidSpec) -> Response:
        return invalid_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "header")]
            errors.append({"field": ".".join(loc) or "request", "message": err.get("msg", "")})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem_response(
            request, 422, "Invalid request", detail, type_="invalid-request", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        from http import HTTPStatus

        try:
            title = HTTPStatus(exc.status_code).phrase
        except ValueError:
            title = "Error"
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only its first route's
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem_response(request, exc.status_code, title, detail, headers=headers)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        import logging

        logging.getLogger("videojobs_gateway").exception("unhandled error")
        return problem_response(request, 500, "Internal Server Error", type(exc).__name__)


def allowed_methods(request: Request) -> list[str]:
    """The methods the OpenAPI document declares at the request's path, over all its routes
    (Starlette's ``Allow`` names only those of the first route that matches the path)."""
    import re

    table = getattr(request.app.state, "allowed_methods", None)
    if table is None:
        table = []
        for template, item in request.app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
            methods = sorted(m.upper() for m in item if m in _METHODS)
            table.append((re.compile(f"^{pattern}$"), methods))
        request.app.state.allowed_methods = table
    found: set[str] = set()
    for pattern, methods in table:
        if pattern.match(request.url.path):
            found.update(methods)
    return sorted(found)


_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for problem documents."""
    from videojobs_gateway.schemas import ProblemDoc

    return {
        code: {"model": ProblemDoc, "content": {PROBLEM: {}}, "description": "A problem"}
        for code in codes
    }
