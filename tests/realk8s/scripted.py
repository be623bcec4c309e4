"""A worker that fails on cue, for the real cluster's scenarios of worker failures.

The node agent runs it for the image ``videojobs-scripted:realk8s`` (``conftest.SCRIPTED_IMAGE``)
with the pod's real mounts, environment and user. It reads its run's input as the real worker
does (``VIDEOJOBS_INPUT_FILE``, the operator's input ConfigMap), takes the run's source URL as the
address of the test's cue server (:class:`Cues`), asks it what this attempt does (it passes the
resource's name, ``JOB_COMPLETION_INDEX`` and its pod's name) and does it: exit with a code and
the worker's termination message, run until SIGTERM (``hang``), or wait until the test opens a
gate and then exit. A sharded run's merge step (``merge``, when the operator has one) succeeds
at once, naming a manifest in its termination message. Everything else (the Job, its pods,
retries, deletion, status) is the real cluster's.

Run: ``python tests/realk8s/scripted.py run`` (the operator's ``args``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SCRIPTED_IMAGE = "videojobs-scripted:realk8s"


@dataclass
class Attempt:
    """What one pod does."""

    exit: int = 0
    message: str = ""
    category: str = "Scripted"
    hang: bool = False
    """Run until SIGTERM (cancel, deletion, a failed Job's other pods)."""
    gate: str = ""
    """Wait until the test opens this gate, then exit with ``exit``."""


Script = Callable[[str, int, int], Attempt]
"""(resource name, completion index, attempt number from 1) -> what that pod does."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        parts = url.path.strip("/").split("/")
        if parts[0] == "gate":
            body = b"open" if parts[1] in self.server.cues.opened else b"closed"
        else:
            name = parts[-1].removesuffix(".mp4")
            body = json.dumps(asdict(self.server.cues.next(name, query))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    cues: Cues


class Cues:
    """The test's side: answers each scripted pod with its :class:`Attempt` and counts them."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.attempts: Counter[tuple[str, int]] = Counter()
        self.pods: list[tuple[str, int, str]] = []
        self.opened: set[str] = set()
        self.lock = threading.Lock()
        self.port = 0

    def next(self, name: str, query: dict[str, str]) -> Attempt:
        index = int(query.get("index") or 0)
        with self.lock:
            self.attempts[name, index] += 1
            self.pods.append((name, index, query.get("pod", "")))
            return self.script(name, index, self.attempts[name, index])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/cue/{name}.mp4"

    def open(self, gate: str) -> None:
        self.opened.add(gate)

    @contextmanager
    def serving(self) -> Iterator[Cues]:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.cues = self
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return bytes(resp.read())


def main(argv: list[str]) -> int:
    from videojobs.models.worker import INPUT_FILE_ENV, SHARD_INDEX_ENV, WorkerInput
    from videojobs_worker.progress import write_termination_log

    if argv[:1] == ["merge"]:  # a sharded run's merge step: done, its manifest named
        uri = "file:///output/scripted/manifest.json"
        line = {"exitCode": 0, "category": "Ok", "message": "merged", "manifestUri": uri}
        with contextlib.suppress(OSError):
            Path("/dev/termination-log").write_text(json.dumps(line) + "\n")
        return 0
    worker_input = WorkerInput.model_validate_json(open(os.environ[INPUT_FILE_ENV]).read())
    url = urllib.parse.urlsplit(str(worker_input.spec.source.url))
    query = urllib.parse.urlencode(
        {"index": os.environ.get(SHARD_INDEX_ENV, "0"), "pod": socket.gethostname()}
    )
    attempt = Attempt(**json.loads(_get(f"{url.scheme}://{url.netloc}{url.path}?{query}")))
    print(f"scripted: {attempt}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if attempt.hang:
        stop.wait()
        print("stopped by SIGTERM", flush=True)
        return 143
    while attempt.gate and not stop.is_set():
        if _get(f"{url.scheme}://{url.netloc}/gate/{attempt.gate}") == b"open":
            break
        time.sleep(0.3)
    if attempt.exit:
        write_termination_log(attempt.exit, attempt.category, attempt.message)
    return attempt.exit


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
