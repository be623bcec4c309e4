"""``videojobs serve``: the gateway with the local backend, on this machine."""

from __future__ import annotations

import ipaddress
import logging
import sys
from pathlib import Path

from videojobs_gateway.settings import GatewaySettings


def is_loopback(host: str) -> bool:
    """True for loopback addresses and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_problem(host: str, settings: GatewaySettings, allow_unauthenticated: bool) -> str | None:
    """Why binding ``host`` is refused (auth mode none off loopback), or None."""
    if settings.auth_mode == "none" and not is_loopback(host) and not allow_unauthenticated:
        return (
            f"auth mode 'none' on a non-loopback address ({host}) would let anyone on the "
            "network run jobs; bind 127.0.0.1, choose an auth mode, or pass "
            "--allow-unauthenticated"
        )
    return None


def serve_local(
    data: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    concurrency: int = 1,
    settings: GatewaySettings | None = None,
    allow_unauthenticated: bool = False,
    log_level: str = "info",
) -> int:
    """Run the gateway over a :class:`~videojobs_gateway.local.LocalBackend` until stopped."""
    import uvicorn

    from videojobs_gateway.app import create_app
    from videojobs_gateway.local import LocalBackend

    settings = settings or GatewaySettings()
    problem = bind_problem(host, settings, allow_unauthenticated)
    if problem:
        print(f"videojobs serve: {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(level=log_level.upper(), format="%(message)s", stream=sys.stderr)
    backend = LocalBackend(data, concurrency=concurrency)
    app = create_app(backend, settings)
    print(
        f"videojobs gateway: http://{host}:{port}/  (data in {backend.data_dir})", file=sys.stderr
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
    return 0
