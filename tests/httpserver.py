"""A local HTTP server for tests and benchmarks: media files, HLS, errors, redirects.

``MediaServer(root)`` serves the files under ``root`` on ``127.0.0.1`` (a random free port) from a
thread, honours single ``Range`` requests with ``206 Partial Content`` (Python's ``http.server``
does not, and a test of ranged downloads needs it), and counts the body bytes it actually wrote
per path, so a test can check how much of a file a client fetched.

Fixed routes (they shadow files of the same name):

- ``/404`` and ``/500``: those statuses; ``/status/<code>``: any status;
- ``/html``: an HTML page without any media (yt-dlp's generic extractor finds nothing there);
- ``/redirect?to=<url or path>``: a ``302`` to ``to`` (``&code=301`` for another status);
- ``/flaky/<n>/<path>``: the first ``n`` requests (per ``n``/``path`` pair) get ``503``, later
  ones are served ``<path>`` (for retry tests);
- ``/slow/<bytes per second>/<path>``: ``<path>``, throttled;
- ``/lavf-redirect/<path>?to=<url>``: a ``302`` to ``to`` for ffmpeg (User-Agent ``Lavf``),
  ``<path>`` for everyone else.
- ``/needs-referer/<path>``: ``<path>`` only for requests whose ``Referer`` is
  :data:`EMBED_REFERER`, ``403`` for the rest (a video that plays only embedded).

Usage::

    with MediaServer(tmp_path) as server:
        url = server.url("clip.mp4")
        ...
        assert server.bytes_served("clip.mp4") < size

No pytest in here, so benchmarks import it too. HLS test streams: ``tests.mediakit.make_hls``.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urljoin, urlsplit

CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".m4a": "audio/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".vtt": "text/vtt; charset=utf-8",
    ".srt": "application/x-subrip",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
}

HTML_PAGE = b"""<!DOCTYPE html>
<html><head><title>Nothing to see</title></head>
<body><h1>A page without any video</h1><p>Just text.</p></body></html>
"""

EMBED_REFERER = "https://lessons.example/embedding-page"
"""The only ``Referer`` that ``/needs-referer/`` serves."""

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Request:
    """One request the server saw."""

    method: str
    path: str
    """The path without the query string, without the leading slash, URL-decoded."""
    range: str | None
    status: int


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        # A small send buffer keeps "bytes served" close to "bytes the client read": a client
        # that stops reading (ffmpeg after a seek) leaves less in flight.
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    # -- routing ---------------------------------------------------------------------------

    def _dispatch(self, *, head: bool) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path).lstrip("/")
        query = parse_qs(parts.query)
        try:
            if path == "404":
                self._plain(HTTPStatus.NOT_FOUND, path, head)
            elif path == "500":
                self._plain(HTTPStatus.INTERNAL_SERVER_ERROR, path, head)
            elif path.startswith("status/"):
                self._plain(HTTPStatus(int(path.split("/", 1)[1])), path, head)
            elif path == "html":
                self._body(HTTPStatus.OK, path, HTML_PAGE, "text/html; charset=utf-8", head)
            elif path == "redirect":
                target = query.get("to", ["/"])[0]
                code = int(query.get("code", ["302"])[0])
                self._record(path, code)
                self.send_response(code)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path.startswith("lavf-redirect/"):
                # Redirects ffmpeg only (User-Agent "Lavf/..."), serves everyone else: a server
                # that treats the ffmpeg doing a ranged download differently from the checks.
                rest = path.split("/", 1)[1]
                if self.headers.get("User-Agent", "").startswith("Lavf"):
                    self._record(path, 302)
                    self.send_response(302)
                    self.send_header("Location", query.get("to", ["/"])[0])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._file(rest, head, counted_as=rest)
            elif path.startswith("needs-referer/"):
                rest = path.split("/", 1)[1]
                if self.headers.get("Referer") == EMBED_REFERER:
                    self._file(rest, head, counted_as=rest)
                else:
                    self._plain(HTTPStatus.FORBIDDEN, path, head)
            elif path.startswith("flaky/"):
                _, count, rest = path.split("/", 2)
                with self.server.lock:
                    self.server.flaky_hits[(count, rest)] += 1
                    hits = self.server.flaky_hits[(count, rest)]
                if hits <= int(count):
                    self._plain(HTTPStatus.SERVICE_UNAVAILABLE, path, head)
                else:
                    self._file(rest, head, counted_as=rest)
            elif path.startswith("slow/"):
                _, rate, rest = path.split("/", 2)
                self._file(rest, head, counted_as=rest, rate=float(rate))
            else:
                self._file(path, head, counted_as=path)
        except (BrokenPipeError, ConnectionResetError):
            # Clients (ffmpeg, yt-dlp) hang up mid-body on purpose: a ranged read stops early.
            self.close_connection = True

    # -- responses -------------------------------------------------------------------------

    def _record(self, path: str, status: int) -> None:
        with self.server.lock:
            self.server.requests.append(
                Request(self.command, path, self.headers.get("Range"), int(status))
            )

    def _send_counted(self, data: bytes, path: str) -> None:
        # Count before writing: a client may read the body and ask for the count before this
        # thread runs again. A failed write takes its bytes back.
        self.server.count(path, len(data))
        try:
            self.wfile.write(data)
        except OSError:
            self.server.count(path, -len(data))
            raise

    def _plain(self, status: HTTPStatus, path: str, head: bool) -> None:
        body = f"{status.value} {status.phrase}\n".encode()
        self._body(status, path, body, "text/plain; charset=utf-8", head)

    def _body(self, status: HTTPStatus, path: str, body: bytes, ctype: str, head: bool) -> None:
        self._record(path, status)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self._send_counted(body, path)

    def _file(self, rel: str, head: bool, *, counted_as: str, rate: float | None = None) -> None:
        root = self.server.root
        target = (root / rel).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            self._plain(HTTPStatus.NOT_FOUND, rel, head)
            return
        size = target.stat().st_size
        start, end = 0, size - 1
        status = HTTPStatus.OK
        header = self.headers.get("Range")
        if header:
            match = _RANGE.match(header.strip())
            first, last = (match.group(1), match.group(2)) if match else ("", "")
            if not match or (first == "" and last == ""):
                start, end = 0, size - 1  # unparseable or multi-range: ignore it, like many servers
            elif first == "":
                start, end = max(0, size - int(last)), size - 1
            else:
                start = int(first)
                end = min(int(last), size - 1) if last else size - 1
                if start >= size or start > end:
                    self._record(rel, HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                    self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            if match and (first, last) != ("", ""):
                status = HTTPStatus.PARTIAL_CONTENT
        length = end - start + 1 if size else 0
        self._record(rel, status)
        self.send_response(status)
        ctype = CONTENT_TYPES.get(target.suffix.lower(), "application/octet-stream")
        self.send_header("Content-Type", ctype)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Last-Modified", self.date_time_string(int(target.stat().st_mtime)))
        self.end_headers()
        if head or not length:
            return
        with target.open("rb") as fh:
            fh.seek(start)
            remaining = length
            began = time.monotonic()
            sent = 0
            step = _CHUNK if rate is None else max(1024, int(rate / 10))
            while remaining > 0:
                chunk = fh.read(min(step, remaining))
                if not chunk:
                    break
                self._send_counted(chunk, counted_as)
                remaining -= len(chunk)
                sent += len(chunk)
                if rate:
                    ahead = sent / rate - (time.monotonic() - began)
                    if ahead > 0:
                        time.sleep(ahead)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, root: Path, host: str) -> None:
        super().__init__((host, 0), _Handler)
        self.root = root.resolve()
        self.lock = threading.Lock()
        self.served: Counter[str] = Counter()
        self.requests: list[Request] = []
        self.flaky_hits: defaultdict[tuple[str, str], int] = defaultdict(int)

    def count(self, path: str, n: int) -> None:
        with self.lock:
            self.served[path] += n

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up is normal here; do not print tracebacks


class MediaServer:
    """Serve a directory over HTTP on 127.0.0.1 in a background thread (a context manager).

    ``host`` may be another loopback address (``127.0.0.2``), e.g. to test that a redirect to a
    second host is noticed.
    """

    def __init__(self, root: Path, host: str = "127.0.0.1") -> None:
        self.root = Path(root)
        self.host = host
        self._server = _Server(self.root, host)
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> MediaServer:
        """Start serving (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="media-server", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> MediaServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/``."""
        return f"http://{self.host}:{self.port}/"

    def url(self, path: str | Path = "") -> str:
        """The URL of ``path`` (relative to the root, or a route such as ``404``)."""
        return urljoin(self.base_url, quote(str(path).lstrip("/"), safe="/?=&:%"))

    def redirect_url(self, target: str, *, code: int = 302) -> str:
        """A URL that redirects to ``target`` (an absolute URL or a path on this server)."""
        extra = "" if code == 302 else f"&code={code}"
        return f"{self.base_url}redirect?to={quote(target, safe='')}{extra}"

    def flaky_url(self, path: str, failures: int) -> str:
        """A URL for ``path`` whose first ``failures`` requests get HTTP 503."""
        return self.url(f"flaky/{failures}/{path}")

    def slow_url(self, path: str, bytes_per_second: int) -> str:
        """A URL for ``path`` served at about ``bytes_per_second``."""
        return self.url(f"slow/{bytes_per_second}/{path}")

    # -- counters --------------------------------------------------------------------------

    def bytes_served(self, path: str | Path | None = None) -> int:
        """Body bytes written for ``path`` (relative to the root; all paths when ``None``)."""
        with self._server.lock:
            if path is None:
                return sum(self._server.served.values())
            return self._server.served[str(path).lstrip("/")]

    def bytes_served_under(self, prefix: str) -> int:
        """Body bytes written for every path starting with ``prefix`` (e.g. an HLS directory)."""
        prefix = prefix.lstrip("/")
        with self._server.lock:
            return sum(n for p, n in self._server.served.items() if p.startswith(prefix))

    @property
    def requests(self) -> list[Request]:
        """Every request so far, in order."""
        with self._server.lock:
            return list(self._server.requests)

    def reset(self) -> None:
        """Forget counters, requests and flaky-route state."""
        with self._server.lock:
            self._server.served.clear()
            self._server.requests.clear()
            self._server.flaky_hits.clear()
