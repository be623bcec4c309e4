"""``videojobs-operator``: optional leader election, then kopf with the operator's handlers.

Namespaces come from ``--namespace`` (repeatable) or ``VIDEOJOBS_NAMESPACES``; neither means the
whole cluster (``--all-namespaces`` forces that). kopf serves its liveness probe on
``--liveness`` (default ``http://0.0.0.0:8080/healthz``); ``/metrics`` and ``/readyz`` are on
``VIDEOJOBS_METRICS_PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import logging
import os
import signal
import socket
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence

import kopf

from videojobs_operator.settings import OperatorSettings

DEFAULT_LIVENESS = "http://0.0.0.0:8080/healthz"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videojobs-operator", description="Run the VideoProcessingJob operator."
    )
    parser.add_argument(
        "-A", "--all-namespaces", action="store_true", help="watch the whole cluster"
    )
    parser.add_argument(
        "-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)"
    )
    parser.add_argument(
        "--liveness", default=DEFAULT_LIVENESS, help="kopf liveness endpoint URL ('' disables)"
    )
    return parser


class _StandbyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    ready: Callable[[], bool]


class _StandbyHandler(http.server.BaseHTTPRequestHandler):
    """Answers probes while the process waits for the Lease (kopf is not running yet)."""

    server: _StandbyServer

    def do_GET(self) -> None:
        status, body = 200, b"standby\n"
        if self.path.startswith("/metrics"):
            body = b""
        elif self.path.startswith("/readyz") and not self.server.ready():
            status, body = 503, b"standby: the API server cannot be reached\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@contextlib.contextmanager
def standby_probes(urls: Sequence[str], ready: Callable[[], bool]) -> Iterator[None]:
    """Serve the probes while waiting for leadership: liveness 200, ``/readyz`` 200 while
    ``ready()`` (the last attempt at the Lease got its answers from the API server), else 503.

    Without them a standby replica fails its liveness probe and is restarted over and over, and a
    rollout waits forever for it to become ready; with a ``/readyz`` that said 200 regardless, a
    Deployment whose only replica cannot reach the API server would look Ready.
    """
    servers = []
    for url in urls:
        parsed = urllib.parse.urlsplit(url)
        server = _StandbyServer((parsed.hostname or "0.0.0.0", parsed.port or 80), _StandbyHandler)
        server.ready = ready
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    try:
        yield
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def configure_logging(config: OperatorSettings) -> None:
    """kopf's formatter (JSON with the object reference under ``k8s``, or text)."""
    fmt = kopf.LogFormat.JSON if config.log_format == "json" else kopf.LogFormat.FULL
    kopf.configure(
        verbose=config.log_level == "DEBUG", log_format=fmt, log_refkey="k8s", log_prefix=None
    )
    logging.getLogger().setLevel(config.log_level)
    if config.log_level != "DEBUG":
        # kopf logs every successful event handler at INFO: one line per watch event.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, wait for leadership if enabled, run kopf until stopped."""
    args = _parser().parse_args(argv)
    config = OperatorSettings()
    configure_logging(config)
    logger = logging.getLogger("videojobs.operator")

    import videojobs_operator.handlers  # noqa: F401  (registers the handlers with kopf)

    namespaces = [] if args.all_namespaces else (args.namespace or config.namespaces)
    # kopf waits for threading/concurrent flags in an executor thread, which outlives a stop by
    # SIGTERM and keeps the process from exiting; an asyncio.Event on our own loop does not.
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    halt = threading.Event()  # ends the wait for the Lease and its renewals

    def terminate(signum: int, _frame: object) -> None:
        # Until kopf installs its own handlers: stop waiting for the Lease, and make kopf stop
        # as soon as it starts. (kopf replaces this handler once its loop runs.)
        halt.set()
        loop.call_soon_threadsafe(stop.set)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    elector = None
    if config.leader_election:
        from videojobs_operator.kube import make_api_client
        from videojobs_operator.leader import LeaseElector, lease_namespace, process_identity

        identity = process_identity(dict(os.environ), socket.gethostname())
        namespace = lease_namespace(config.leader_election_namespace, dict(os.environ))
        elector = LeaseElector(make_api_client(), namespace, identity)
        probes = [args.liveness] if args.liveness else []
        if config.metrics_port:
            probes.append(f"http://0.0.0.0:{config.metrics_port}/readyz")
        with standby_probes(probes, lambda: elector is not None and elector.api_reachable):
            if not elector.acquire(halt):
                return 0  # told to stop while standing by

        def lost() -> None:
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=elector.renew_until, args=(halt, lost), daemon=True).start()

    logger.info("starting; watching %s", ", ".join(namespaces) if namespaces else "all namespaces")
    exit_request: dict[str, int] = {}  # set by the startup handler: the CRD appeared late
    try:
        kopf.run(
            loop=loop,
            standalone=True,
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=args.liveness or None,
            stop_flag=stop,
            memo=kopf.Memo(stop_flag=stop, exit=exit_request),
        )
    finally:
        loop.close()
        halt.set()
        if elector is not None:
            elector.release()
    if elector is not None and elector.lost.is_set():
        return 1
    return exit_request.get("code", 0)


if __name__ == "__main__":
    sys.exit(main())
