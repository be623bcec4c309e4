"""Dependencies as types: a route's signature says what it needs (the store, the caller)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from videojobs_gateway import access
from videojobs_gateway.auth import unauthorized
from videojobs_gateway.backend import Backend, Identity

FILES = "/api/v1/videos/files/"


def get_backend(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


async def get_identity(
    request: Request,
    namespace: Annotated[
        str | None,
        Query(
            pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
            description="Work in this namespace (default: the caller's own).",
        ),
    ] = None,
) -> Identity:
    """The authenticated caller (401/403 problems otherwise), rate-limited (429).

    A file download may instead carry a signed ``access`` token for its job (see
    :mod:`videojobs_gateway.access`)."""
    token = request.query_params.get(access.PARAM)
    job_id = request.path_params.get("job_id")
    if token is not None and job_id and request.url.path.startswith(FILES):
        signed = access.verify(request.app.state.signing_key, token, str(job_id))
        if signed is None:
            raise unauthorized("the signed file URL is invalid or has expired")
        request.app.state.limiter.check(signed)  # the signer's bucket and rate
        request.state.identity = signed
        return signed
    identity: Identity = await request.app.state.auth.authenticate(request)
    request.app.state.limiter.check(identity)
    request.state.identity = identity
    return identity


BackendDep = Annotated[Backend, Depends(get_backend)]
IdentityDep = Annotated[Identity, Depends(get_identity)]
