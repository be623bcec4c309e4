"""Dependencies as types: a route's signature says what it needs (the store, the caller)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from videojobs_gateway.backend import Backend, Identity


def get_backend(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


async def get_identity(request: Request) -> Identity:
    """The authenticated caller (401/403 problems otherwise), rate-limited (429)."""
    identity: Identity = await request.app.state.auth.authenticate(request)
    request.app.state.limiter.check(identity)
    request.state.identity = identity
    return identity


BackendDep = Annotated[Backend, Depends(get_backend)]
IdentityDep = Annotated[Identity, Depends(get_identity)]
