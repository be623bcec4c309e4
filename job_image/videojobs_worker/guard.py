"""The download guard: keep a cluster worker from fetching internal addresses (SSRF).

A ``VideoProcessingJob`` lets anyone who may create one make the worker pod fetch a URL. Without a
guard that URL could be the cloud metadata service (``169.254.169.254``: node credentials), the
Kubernetes API, or any service inside the cluster network. In cluster mode the worker therefore
refuses:

- every scheme but ``http`` and ``https`` (``file://`` in particular);
- a host that resolves to *any* address that is not globally routable: private (RFC 1918, ULA),
  loopback, link-local, site-local (``fec0::/10``), shared (CGNAT), reserved, multicast,
  unspecified, plus the well-known metadata endpoints (``169.254.169.254``, ``fd00:ec2::254``,
  the EKS Pod Identity agent ``169.254.170.23`` / ``fd00:ec2::23``, ``metadata.google.internal``).

``allowPrivateNetworks`` (operator setting) lifts the private-address rule; ``allowedNetworks``
lists CIDRs allowed anyway (an in-cluster MinIO, a media server on the LAN). Metadata addresses
are refused even with ``allowPrivateNetworks``; list them in ``allowedNetworks`` if you truly must
(the metadata host names stay refused until a metadata address is listed).

Three layers enforce it:

1. :meth:`NetworkPolicy.check_url` before anything is fetched (the URL as given, and URLs handed to
   ffmpeg, such as HLS segment URLs and the final media URL).
2. :func:`guarded`: while active in a thread, every ``socket.getaddrinfo`` answer in that thread is
   checked *before* Python connects. yt-dlp's HTTP handlers (urllib and requests) resolve through
   it for every request, so redirects, extractor side-requests and HLS fragments fetched by
   yt-dlp are covered, and so is DNS rebinding (the checked answer is the one connected to).

3. :class:`GuardProxy`: ffmpeg and ffprobe, which fetch media themselves (ranged downloads,
   header probes), get ``-http_proxy`` pointing at this in-process forward proxy, which applies
   the same checks to every connection they make, after redirects too.

A NetworkPolicy denying egress to private ranges remains the recommended outer layer
(``docs/worker.md``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import selectors
import socket
import socketserver
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from videojobs.models import ExitCode
from videojobs_worker.errors import WorkerError, exception_chain

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.170.23",  # AWS EKS Pod Identity agent
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS Pod Identity agent over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)
METADATA_HOSTS: frozenset[str] = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data"}
)

# Not "global" in the IANA sense but missing from ipaddress' flags in some Python versions.
_EXTRA_BLOCKED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in ("100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "fec0::/10")  # fec0: site-local
)


_NAT64: tuple[ipaddress.IPv6Network, ...] = (
    ipaddress.IPv6Network("64:ff9b::/96"),  # RFC 6052 well-known prefix
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # RFC 8215 local-use prefix
)


def _nat64(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a NAT64 address stands for (its last 32 bits), else None.

    ``[64:ff9b::a9fe:a9fe]`` reaches ``169.254.169.254`` through a NAT64 gateway: it is judged
    as the IPv4 address it translates to."""
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


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

    @property
    def allows_metadata(self) -> bool:
        """True only when ``allowedNetworks`` explicitly lists a metadata address."""
        return any(a in net for net in self.allowed_networks for a in METADATA_ADDRESSES)

    def check_host_name(self, host: str) -> None:
        """Refuse the well-known metadata host names (whatever they resolve to)."""
        name = host.strip("[]").rstrip(".").lower()
        if name in METADATA_HOSTS and not self.allows_metadata:
            raise _blocked_error(f"refusing {name}: a cloud metadata endpoint")

    @classmethod
    def local(cls) -> NetworkPolicy:
        """``videojobs run`` on a workstation: local files and any address."""
        return cls(allow_private=True, allow_files=True)

    # -- addresses ---------------------------------------------------------------------------

    def address_problem(self, address: IPAddress) -> str | None:
        """Why ``address`` is refused, or ``None`` when it is allowed."""
        if isinstance(address, ipaddress.IPv6Address):
            embedded = address.ipv4_mapped or address.sixtofour or _nat64(address)
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
        flags = ("loopback", "link_local", "site_local", "multicast", "unspecified", "reserved")
        for flag in (*flags, "private"):
            if getattr(address, f"is_{flag}", False):
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
            raise _blocked_error(
                f"refusing {url!r}: local files are not allowed (in the cluster; for "
                "videojobs serve, unless its operator passes --allow-local-files)"
            )
        if scheme not in ("http", "https"):
            raise _blocked_error(f"refusing {url!r}: only http and https URLs are allowed")
        host = (parts.hostname or "").rstrip(".").lower()
        if not host:
            raise WorkerError(ExitCode.UNSUPPORTED_URL, "InvalidUrl", f"no host in {url!r}")
        self.check_host_name(host)
        if not resolve:
            return
        try:
            infos = _original_getaddrinfo(host, parts.port or 443, 0, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise WorkerError(
                ExitCode.NETWORK, "DnsFailure", f"cannot resolve {host}: {exc.strerror}"
            ) from None
        self.check_addresses(host, [str(info[4][0]) for info in infos])


# -- what an error may say about fetched content ------------------------------------------------

_QUOTED = re.compile(r"'(?:[^'\\\n]|\\.)*'" + r'|"(?:[^"\\\n]|\\.)*"' + r"|<[^<>\n]{1,80}>")
FETCHED_NOT_SHOWN = "(text of the fetched document is not shown)"


def redact_fetched(message: str) -> str:
    """``message`` without any quoted text: for errors about a document fetched from a URL.

    The URL is the caller's, the bytes are the server's: an error that quotes them (``the first
    line is 'SECRET=...'``) turns any fetch into a read of an internal page (SSRF). Quoted
    values become ``'…'``; where, what and which line stay."""
    redacted, count = _QUOTED.subn(lambda m: "<…>" if m[0][0] == "<" else "'…'", message)
    return f"{redacted} {FETCHED_NOT_SHOWN}" if count else redacted


# -- the resolver hook -----------------------------------------------------------------------

_original_getaddrinfo = socket.getaddrinfo
_state = threading.local()
_install_lock = threading.Lock()
_installed = False
_host_policies: dict[str, NetworkPolicy] = {}
"""Hosts checked in *every* thread (S3 endpoints a tenant chose: boto3 uses its own threads)."""


def _host_key(host: object) -> str:
    name = host.decode() if isinstance(host, bytes) else str(host)
    return name.strip("[]").rstrip(".").lower()


def guard_host(host: str, policy: NetworkPolicy) -> None:
    """Check every resolution of ``host`` against ``policy``, in any thread, from now on.

    For clients that make requests from their own thread pools (boto3's transfers): the checked
    answer is the one connected to, so DNS rebinding between a check and the connect fails.
    """
    _install()
    with _install_lock:
        _host_policies[_host_key(host)] = policy


def _guarded_getaddrinfo(
    host: bytes | str | None, port: bytes | str | int | None, *args: Any, **kwargs: Any
) -> list[Any]:
    answers = _original_getaddrinfo(host, port, *args, **kwargs)
    policy: NetworkPolicy | None = getattr(_state, "policy", None)
    if policy is None and _host_policies:
        policy = _host_policies.get(_host_key(host))
    if policy is not None:
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            policy.check_host_name(name)
            policy.check_addresses(name, [str(a[4][0]) for a in answers])
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
    attrs = ("__cause__", "__context__", "cause", "reason", "orig")
    for current in exception_chain(exc, attrs):
        if isinstance(current, BlockedAddressError):
            return current.error
    return None


# -- a guarded forward proxy for ffmpeg ------------------------------------------------------------


UPSTREAM_BUFFER = 1024 * 1024
"""Receive buffer of the proxy's origin connections: ~170 Mbit/s at 50 ms RTT, small overshoot."""


class GuardProxy:
    """A forward HTTP proxy on 127.0.0.1 that checks every connection it makes.

    ffmpeg and ffprobe fetch media themselves (ranged downloads, header probes), outside the
    resolver hook. Given ``-http_proxy`` they send every request through this proxy — plain HTTP
    as absolute-form requests, HTTPS as ``CONNECT`` tunnels, including the requests that follow
    redirects and the HLS playlists and segments they open — and the proxy resolves the target,
    checks every address with the policy and connects to exactly the checked address (so DNS
    rebinding cannot slip past). A refused request gets ``403`` and is recorded in
    :attr:`refusals`, which the downloader reports as ``BLOCKED_ADDRESS``.
    """

    def __init__(self, policy: NetworkPolicy, *, timeout: float = 30.0) -> None:
        self.policy = policy
        self.timeout = timeout
        self.refusals: list[WorkerError] = []
        self.connections = 0
        self._server = _ProxyServer(self)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (for ffmpeg's ``-http_proxy``)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> GuardProxy:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="guard-proxy", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def open(self, host: str, port: int) -> socket.socket:
        """Connect to ``host:port`` if the policy allows every address it resolves to."""
        name = host.strip("[]").rstrip(".").lower()
        try:
            self.policy.check_host_name(name)
            infos = _original_getaddrinfo(name, port, 0, socket.SOCK_STREAM)
            self.policy.check_addresses(name, [str(info[4][0]) for info in infos])
        except WorkerError as err:
            self.refusals.append(err)
            raise
        last: OSError | None = None
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            # A bounded receive buffer (no autotuning up to tens of MiB): when ffmpeg hangs up
            # after the bytes it needed, little more has been fetched from the origin.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UPSTREAM_BUFFER)
            sock.settimeout(self.timeout)
            try:
                sock.connect(address)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            self.connections += 1
            return sock
        raise last or OSError(f"cannot connect to {name}:{port}")


class _ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, proxy: GuardProxy) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.proxy = proxy

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients (ffmpeg seeking) hang up mid-transfer all the time


class _ProxyHandler(socketserver.StreamRequestHandler):
    server: _ProxyServer

    def handle(self) -> None:
        # ffmpeg is on the same host: a small send buffer towards it costs no speed and keeps
        # what is in flight (and wasted when it hangs up after a seek) small.
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(65536)
            if not chunk or len(head) > 65536:
                return
            head += chunk
        header_block, _, rest = head.partition(b"\r\n\r\n")
        lines = header_block.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            return self._reply(400, "bad request line")
        proxy = self.server.proxy
        if method.upper() == "CONNECT":
            host, _, port = target.rpartition(":")
            try:
                upstream = proxy.open(host, int(port))
            except WorkerError as err:
                return self._reply(403, err.message)
            except (OSError, ValueError) as exc:
                return self._reply(502, str(exc))
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            return self._pipe(upstream)
        parts = urlsplit(target)
        if parts.scheme.lower() != "http" or not parts.hostname:
            return self._reply(400, "only absolute http:// requests and CONNECT are proxied")
        try:
            upstream = proxy.open(parts.hostname, parts.port or 80)
        except WorkerError as err:
            return self._reply(403, err.message)
        except OSError as exc:
            return self._reply(502, str(exc))
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        headers = [
            line
            for line in lines[1:]
            if line.split(":", 1)[0].strip().lower()
            not in ("connection", "proxy-connection", "keep-alive", "proxy-authorization")
        ]
        request = "\r\n".join([f"{method} {path} {version}", *headers, "Connection: close", "", ""])
        upstream.sendall(request.encode("latin-1") + rest)
        self._pipe(upstream)

    def _reply(self, status: int, message: str) -> None:
        body = (message + "\n").encode()
        reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
        self.request.sendall(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )

    def _pipe(self, upstream: socket.socket) -> None:
        """Copy bytes both ways until either side closes."""
        client = self.request
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, upstream)
        sel.register(upstream, selectors.EVENT_READ, client)
        try:
            while True:
                events = sel.select(timeout=self.server.proxy.timeout * 10)
                if not events:
                    return
                for key, _ in events:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            sel.close()
            upstream.close()
