"""Dependencies as types: a route's signature says what it needs (the store, the caller)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from videojobs_gateway.backend import Backend, Identity


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
    """The authenticated caller (401/403 problems otherwise), rate-limited (429)."""
    identity: Identity = await request.app.state.auth.authenticate(request)
    request.app.state.limiter.check(identity)
    request.state.identity = identity
    return identity


BackendDep = Annotated[Backend, Depends(get_backend)]
IdentityDep = Annotated[Identity, Depends(get_identity)]
