"""The download guard: keep a cluster worker from fetching internal addresses (SSRF).

A ``VideoProcessingJob`` lets anyone who may create one make the worker pod fetch a URL. Without a
guard that URL could be the cloud metadata service (``169.254.169.254``: node credentials), the
Kubernetes API, or any service inside the cluster network. In cluster mode the worker therefore
refuses:

- every scheme but ``http`` and ``https`` (``file://`` in particular);
- a host that resolves to *any* address that is not globally routable: private (RFC 1918, ULA),
  loopback, link-local, shared (CGNAT), reserved, multicast, unspecified, plus the well-known
  metadata endpoints (``169.254.169.254``, ``fd00:ec2::254``, ``metadata.google.internal``).

``allowPrivateNetworks`` (operator setting) lifts the private-address rule; ``allowedNetworks``
lists CIDRs allowed anyway (an in-cluster MinIO, a media server on the LAN). Metadata addresses
are refused even with ``allowPrivateNetworks``; list them in ``allowedNetworks`` if you truly must.

Two layers enforce it:

1. :meth:`NetworkPolicy.check_url` before anything is fetched (the URL as given, and URLs handed to
   ffmpeg, such as HLS segment URLs and the final media URL).
2. :func:`guarded`: while active in a thread, every ``socket.getaddrinfo`` answer in that thread is
   checked *before* Python connects. yt-dlp's HTTP handlers (urllib and requests) resolve through
   it for every request, so redirects, extractor side-requests and HLS fragments fetched by
   yt-dlp are covered, and so is DNS rebinding (the checked answer is the one connected to).

What it cannot see: connections made by the ffmpeg *process* (yt-dlp's ranged downloads hand the
media URL to ffmpeg). Those URLs are checked by layer 1 just before, but a server that redirects
ffmpeg elsewhere, or a DNS answer that changes between the check and ffmpeg's lookup, is not
caught. ``docs/worker.md`` describes the residual risk; a NetworkPolicy on the worker pods that
denies egress to private ranges closes it at the network layer.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from videojobs.models import ExitCode
from videojobs_worker.errors import WorkerError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)
METADATA_HOSTS: frozenset[str] = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data"}
)

# Not "global" in the IANA sense but missing from ipaddress' flags in some Python versions.
_EXTRA_BLOCKED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n) for n in ("100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15")
)


class BlockedAddressError(OSError):
    """Raised from inside the resolver hook; carries the classified :class:`WorkerError`.

    An ``OSError`` so that HTTP libraries treat it as a connection failure and unwind cleanly.
    """

    def __init__(self, error: WorkerError) -> None:
        self.error = error
        super().__init__(error.message)


def _blocked_error(message: str) -> WorkerError:
    return WorkerError(ExitCode.BLOCKED_ADDRESS, "BlockedAddress", message)


@dataclass(frozen=True)
class NetworkPolicy:
    """What the worker may fetch."""

    allow_private: bool = False
    """Allow private, loopback, link-local and other non-global addresses."""
    allowed_networks: tuple[IPNetwork, ...] = field(default_factory=tuple)
    """CIDRs allowed even though they are not global (metadata addresses included)."""
    allow_files: bool = False
    """Allow ``file://`` URLs and plain paths (local mode only)."""

    @classmethod
    def cluster(
        cls, *, allow_private: bool = False, allowed_networks: Iterable[str] = ()
    ) -> NetworkPolicy:
        """The policy of a worker pod, from ``WorkerInput``; raises on a malformed CIDR."""
        networks = []
        for cidr in allowed_networks:
            try:
                networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
            except ValueError as exc:
                raise WorkerError(
                    ExitCode.USAGE, "InvalidAllowedNetwork", f"allowedNetworks: {exc}"
                ) from None
        return cls(allow_private=allow_private, allowed_networks=tuple(networks))

    @classmethod
    def local(cls) -> NetworkPolicy:
        """``videojobs run`` on a workstation: local files and any address."""
        return cls(allow_private=True, allow_files=True)

    # -- addresses ---------------------------------------------------------------------------

    def address_problem(self, address: IPAddress) -> str | None:
        """Why ``address`` is refused, or ``None`` when it is allowed."""
        if isinstance(address, ipaddress.IPv6Address):
            embedded = address.ipv4_mapped or address.sixtofour
            if embedded is not None:
                return self.address_problem(embedded)
            if address.teredo is not None:
                return self.address_problem(address.teredo[1])
        if any(address in net for net in self.allowed_networks):
            return None
        if address in METADATA_ADDRESSES:
            return "a cloud metadata endpoint"
        if self.allow_private:
            return None
        for flag in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
            if getattr(address, f"is_{flag}"):
                return f"a {flag.replace('_', '-')} address"
        if any(address in net for net in _EXTRA_BLOCKED) or not address.is_global:
            return "not a public address"
        return None

    def check_addresses(self, host: str, addresses: Iterable[str]) -> None:
        """Raise :class:`WorkerError` (``BLOCKED_ADDRESS``) unless every address is allowed."""
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])  # strip an IPv6 zone id
            problem = self.address_problem(address)
            if problem:
                shown = host if host == text else f"{host} ({text})"
                raise _blocked_error(
                    f"refusing to download from {shown}: {problem}. Ask the operator admin to "
                    "allow it (allowedNetworks / allowPrivateNetworks) if this is intended."
                )

    # -- URLs --------------------------------------------------------------------------------

    def check_url(self, url: str, *, resolve: bool = True) -> None:
        """Check a URL's scheme and every address its host resolves to."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme in ("", "file"):
            if self.allow_files:
                return
            raise _blocked_error(f"refusing {url!r}: local files are not allowed in the cluster")
        if scheme not in ("http", "https"):
            raise _blocked_error(f"refusing {url!r}: only http and https URLs are allowed")
        host = (parts.hostname or "").rstrip(".").lower()
        if not host:
            raise WorkerError(ExitCode.UNSUPPORTED_URL, "InvalidUrl", f"no host in {url!r}")
        if host in METADATA_HOSTS and not self.allowed_networks:
            raise _blocked_error(f"refusing {host}: a cloud metadata endpoint")
        if not resolve:
            return
        try:
            infos = _original_getaddrinfo(host, parts.port or 443, 0, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise WorkerError(
                ExitCode.NETWORK, "DnsFailure", f"cannot resolve {host}: {exc.strerror}"
            ) from None
        self.check_addresses(host, [info[4][0] for info in infos])


# -- the resolver hook -----------------------------------------------------------------------

_original_getaddrinfo = socket.getaddrinfo
_state = threading.local()
_install_lock = threading.Lock()
_installed = False


def _guarded_getaddrinfo(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
    answers = _original_getaddrinfo(host, port, *args, **kwargs)
    policy: NetworkPolicy | None = getattr(_state, "policy", None)
    if policy is not None:
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            if name.rstrip(".").lower() in METADATA_HOSTS and not policy.allowed_networks:
                raise _blocked_error(f"refusing {name}: a cloud metadata endpoint")
            policy.check_addresses(name, [a[4][0] for a in answers])
        except WorkerError as err:
            _state.blocked = err
            raise BlockedAddressError(err) from None
    return answers


def _install() -> None:
    global _installed
    with _install_lock:
        if not _installed:
            socket.getaddrinfo = _guarded_getaddrinfo
            _installed = True


@contextlib.contextmanager
def guarded(policy: NetworkPolicy | None) -> Iterator[None]:
    """Check every name resolution made by this thread against ``policy`` (``None``: no-op).

    Only the calling thread is affected: the Kubernetes and S3 clients, which legitimately talk
    to private addresses, run their requests in other threads or outside this block.
    """
    _state.blocked = None
    if policy is None:
        yield
        return
    _install()
    previous = getattr(_state, "policy", None)
    _state.policy = policy
    try:
        yield
    finally:
        _state.policy = previous


def last_blocked() -> WorkerError | None:
    """The last refusal of the resolver hook in this thread (libraries may bury the exception)."""
    return getattr(_state, "blocked", None)


def find_blocked(exc: BaseException | None) -> WorkerError | None:
    """A :class:`BlockedAddressError` anywhere in ``exc``'s cause chain, as a WorkerError."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, BlockedAddressError):
            return current.error
        stack.extend([current.__cause__, current.__context__])
        for attr in ("cause", "reason", "orig"):
            inner = getattr(current, attr, None)
            if isinstance(inner, BaseException):
                stack.append(inner)
        exc_info = getattr(current, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) > 1:
            stack.append(exc_info[1])
    return None
