"""A fault-injecting HTTPS proxy between a client (the operator) and the real API server.

A fake for fault injection only: every request it lets through is answered by the real API
server, unchanged. A seeded :class:`~tests.realk8s.faults.FaultPlan` (``network``: drops and
delays too) picks which request gets which fault, and the proxy does it:

- ``429``: ``Too Many Requests`` with ``Retry-After`` (a ``Status`` body as the API server's
  priority and fairness writes it); ``500``: an ``InternalError`` Status; ``409`` (updates): a
  ``Conflict`` Status, "the object has been modified";
- ``cut``: a watch forwarded, its stream broken off (the connection closed mid-stream) after a
  seeded 0.2–3 s;
- ``410``: a resumed watch (one with a ``resourceVersion``) told that version is too old, as
  kube-apiserver's watch cache tells it: a ``200`` stream with one ``ERROR`` event (``Expired``).
  With ``--gone-as-http F`` a fraction F of them is an HTTP 410 answer to the watch request
  instead, which the API concepts allow a server to send (and old watch caches did, kubernetes
  issue 25151): kopf 1.45.2 then ends the operator (``APIClientError`` out of its watcher, which
  retries only 429), hence off by default;
- ``drop``: the connection closed without an answer, half the time before the request is
  forwarded, half after the server answered (a write that landed, its answer lost);
- ``delay``: the request forwarded after 0.2–2 s.

And on ``SIGUSR1`` it starts to **hang**, as an API server behind a dead load balancer does:
every request from then on is accepted and never answered, and the streams already open
(watches) stop carrying anything, their connections left open (the leader election test).

It serves TLS with a certificate of the cluster's CA, forwards the client's own
``Authorization`` (so the server's authentication and RBAC judge the client, not the proxy), and
writes its counts as JSON to ``--stats`` after every request.

Run: ``python -m tests.realk8s.faultproxy --upstream URL --ca CA --cert C --key K --port P
--rate 0.05 --seed N --stats FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import signal
import ssl
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.realk8s.faults import FaultPlan

HOP = {
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "upgrade",
    "proxy-connection",
}


def status_body(code: int, reason: str, message: str, **details: Any) -> bytes:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return json.dumps(body).encode()


def action_of(request: web.Request) -> tuple[str, bool]:
    """kmock's action names (``watch``, ``update``, ...) and whether a watch resumes."""
    q = request.query
    if request.method == "GET" and q.get("watch") in ("true", "1"):
        return "watch", q.get("resourceVersion") not in (None, "", "0")
    return {"PUT": "update", "PATCH": "update", "POST": "create", "DELETE": "delete"}.get(
        request.method, "get"
    ), False


class Proxy:
    def __init__(
        self, upstream: str, ca: str, plan: FaultPlan, stats: Path, gone_as_http: float = 0.0
    ) -> None:
        self.gone_as_http = gone_as_http
        self.upstream = upstream.rstrip("/")
        self.ctx = ssl.create_default_context(cafile=ca)
        self.plan = plan
        self.stats = stats
        self.rng = random.Random(plan.seed + 1)
        self.requests: collections.Counter[str] = collections.Counter()
        self.session: aiohttp.ClientSession | None = None
        self.hanging = asyncio.Event()

    async def _hang(self) -> web.StreamResponse:
        """Never answer: hold the connection until the client gives up (or the proxy ends)."""
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def _write_stats(self) -> None:
        tmp = self.stats.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"requests": dict(self.requests), "injected": dict(self.plan.injected)})
        )
        tmp.replace(self.stats)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.hanging.is_set():
            self.requests["hung"] += 1
            self._write_stats()
            return await self._hang()
        action, resumed = action_of(request)
        self.requests[action] += 1
        kind = self.plan.pick("operator", action, resumed)
        try:
            return await self._handle(request, action, kind)
        finally:
            self._write_stats()

    async def _handle(
        self, request: web.Request, action: str, kind: str | None
    ) -> web.StreamResponse:
        json_type = {"Content-Type": "application/json"}
        if kind == "429":
            return web.Response(
                status=429,
                body=status_body(
                    429,
                    "TooManyRequests",
                    "Too many requests, please try again later.",
                    retryAfterSeconds=self.plan.retry_after_seconds,
                ),
                headers={**json_type, "Retry-After": str(self.plan.retry_after_seconds)},
            )
        if kind == "500":
            return web.Response(
                status=500,
                body=status_body(500, "InternalError", "Internal error occurred: injected"),
                headers=json_type,
            )
        if kind == "409":
            return web.Response(
                status=409,
                body=status_body(
                    409,
                    "Conflict",
                    "Operation cannot be fulfilled: the object has been modified; please apply "
                    "your changes to the latest version and try again",
                ),
                headers=json_type,
            )
        if kind == "410":
            rv = request.query.get("resourceVersion", "")
            gone = status_body(410, "Expired", f"too old resource version: {rv} (999999999)")
            if self.rng.random() < self.gone_as_http:
                return web.Response(status=410, body=gone, headers=json_type)
            resp = web.StreamResponse(status=200, headers=json_type)
            await resp.prepare(request)
            event = {"type": "ERROR", "object": json.loads(gone)}
            await resp.write(json.dumps(event).encode() + b"\n")
            await resp.write_eof()
            return resp
        if kind == "delay":
            await asyncio.sleep(self.rng.uniform(0.2, 2.0))
        drop_after = False
        if kind == "drop":
            if self.rng.random() < 0.5:
                return self._drop(request)
            drop_after = True
        cut_at = (
            asyncio.get_running_loop().time() + self.plan.cut_after() if kind == "cut" else None
        )
        return await self._forward(request, action, cut_at, drop_after)

    def _drop(self, request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=503)  # never reaches the client: its connection is gone

    async def _forward(
        self, request: web.Request, action: str, cut_at: float | None, drop_after: bool
    ) -> web.StreamResponse:
        assert self.session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        body = await request.read()
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None, sock_connect=10)
        async with self.session.request(
            request.method,
            self.upstream + request.rel_url.raw_path_qs,
            headers=headers,
            data=body if body else None,
            ssl=self.ctx,
            timeout=timeout,
            auto_decompress=False,
            allow_redirects=False,
            # the client's own Accept-Encoding only: the answer (gzip or not) passes unchanged
            skip_auto_headers=("Accept-Encoding",),
        ) as upstream:
            if drop_after:
                await upstream.read()
                return self._drop(request)
            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP}
            if action != "watch" and cut_at is None:
                data = await upstream.read()
                return web.Response(status=upstream.status, body=data, headers=out_headers)
            resp = web.StreamResponse(status=upstream.status, headers=out_headers)
            await resp.prepare(request)
            loop = asyncio.get_running_loop()
            while True:
                wait = None if cut_at is None else max(0.0, cut_at - loop.time())
                try:
                    chunk = await asyncio.wait_for(upstream.content.readany(), wait)
                except TimeoutError:
                    self._drop(request)  # the stream broken off mid-way
                    return resp
                if not chunk:
                    break
                if self.hanging.is_set():
                    await self._hang()
                await resp.write(chunk)
            await resp.write_eof()
            return resp


async def serve(args: argparse.Namespace) -> None:
    plan = FaultPlan(
        rate=args.rate,
        seed=args.seed,
        watch_cut_rate=args.watch_cut_rate,
        gone_rate=args.gone_rate,
        guarantee=not args.no_guarantee,
        network=True,
    )
    proxy = Proxy(args.upstream, args.ca, plan, Path(args.stats), args.gone_as_http)
    proxy.session = aiohttp.ClientSession(auto_decompress=False)
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, proxy.hanging.set)
    app = web.Application(client_max_size=64 * 2**20)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(args.cert, args.key)
    site = web.TCPSite(runner, "127.0.0.1", args.port, ssl_context=tls)
    await site.start()
    proxy._write_stats()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--watch-cut-rate", type=float, default=0.2)
    parser.add_argument("--gone-rate", type=float, default=0.1)
    parser.add_argument("--gone-as-http", type=float, default=0.0)
    parser.add_argument("--stats", required=True)
    parser.add_argument(
        "--no-guarantee", action="store_true", help="no fault unless a rate picks it"
    )
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
