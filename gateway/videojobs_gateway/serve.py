"""``videojobs serve``: the gateway with the local backend, on this machine.

What a caller may make the server read is the service operator's choice, never the caller's:

- **local files**: ``--allow-local-files DIR`` lets jobs name files under ``DIR`` (checked after
  resolving symlinks; the data directory, where other callers' clips are, stays out of bounds);
- **private addresses** (loopback, RFC 1918, link-local, ...): ``--allow-private-networks``.

Without either flag both are allowed only in the one setting where the caller *is* the operator:
auth mode ``none`` on a loopback bind (like ``videojobs run``). Any other mode or bind runs jobs
with public addresses only and no local files.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videojobs_gateway.settings import GatewaySettings

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
"""The Host names a loopback bind answers by default (DNS rebinding defence)."""


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


@dataclass(frozen=True)
class ReadPolicy:
    """What jobs of ``videojobs serve`` may read besides public URLs."""

    files: bool | Path
    """``False``: no local files; ``True``: any (the local user's own server); a folder: only
    files under it (after resolving symlinks)."""
    private_networks: bool


def read_policy(
    host: str,
    settings: GatewaySettings,
    *,
    allow_local_files: Path | None = None,
    allow_private_networks: bool = False,
) -> ReadPolicy:
    """The operator's explicit choice, else files and private addresses only for the local user
    (auth mode ``none`` on a loopback bind)."""
    owner = settings.auth_mode == "none" and is_loopback(host)
    files: bool | Path = allow_local_files.resolve() if allow_local_files is not None else owner
    return ReadPolicy(files=files, private_networks=allow_private_networks or owner)


def server_options(settings: GatewaySettings) -> dict[str, Any]:
    """uvicorn's settings for both entry points (``videojobs serve``, ``videojobs-gateway``).

    uvicorn's proxy-header handling is off: by default it believes ``X-Forwarded-For`` from
    loopback, so any local process could claim a trusted proxy's address. The gateway reads
    forwarded addresses itself, from ``trusted_proxies`` only (:mod:`.middleware`), and header
    mode checks the connection's own peer address."""
    from videojobs_gateway.protocol import HeaderTimeoutH11Protocol

    HeaderTimeoutH11Protocol.header_timeout = settings.header_timeout_seconds
    return {
        "proxy_headers": False,
        "forwarded_allow_ips": "",
        "server_header": False,
        "http": HeaderTimeoutH11Protocol,
        "h11_max_incomplete_event_size": 64 * 1024,
        "timeout_keep_alive": 5,
        "limit_concurrency": settings.max_connections,
    }


def serve_local(
    data: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    concurrency: int = 1,
    settings: GatewaySettings | None = None,
    allow_unauthenticated: bool = False,
    allow_local_files: Path | None = None,
    allow_private_networks: bool = False,
    log_level: str = "info",
) -> int:
    """Run the gateway over a :class:`~videojobs_gateway.local.LocalBackend` until stopped."""
    import uvicorn

    from videojobs_gateway.app import create_app
    from videojobs_gateway.local import LocalBackend

    settings = settings or GatewaySettings()
    problem = bind_problem(host, settings, allow_unauthenticated)
    if problem is None and allow_local_files is not None and not allow_local_files.is_dir():
        problem = f"--allow-local-files {allow_local_files}: not a directory"
    if problem:
        print(f"videojobs serve: {problem}", file=sys.stderr)
        return 2
    if not settings.allowed_hosts and is_loopback(host):
        settings = settings.model_copy(update={"allowed_hosts": list(LOOPBACK_HOSTS)})
    policy = read_policy(
        host,
        settings,
        allow_local_files=allow_local_files,
        allow_private_networks=allow_private_networks,
    )
    logging.basicConfig(level=log_level.upper(), format="%(message)s", stream=sys.stderr)
    backend = LocalBackend(
        data,
        concurrency=concurrency,
        allow_files=policy.files,
        allow_private_networks=policy.private_networks,
        active_deadline=settings.active_deadline_seconds,
    )
    app = create_app(backend, settings)
    files = (
        str(policy.files) if isinstance(policy.files, Path) else "any" if policy.files else "none"
    )
    print(
        f"videojobs gateway: http://{host}:{port}/  (data in {backend.data_dir}; local files: "
        f"{files}; private networks: {'allowed' if policy.private_networks else 'refused'})",
        file=sys.stderr,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                **server_options(settings))  # fmt: skip
    return 0
