"""``videojobs-gateway``: the gateway with the cluster backend (the chart's Deployment).

Settings come from ``VIDEOJOBS_GATEWAY_*`` variables (:mod:`videojobs_gateway.settings`); the
Kubernetes connection from the pod's ServiceAccount, else ``KUBECONFIG``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from videojobs_gateway.settings import GatewaySettings


def build_app(settings: GatewaySettings) -> object:
    """The FastAPI app over a :class:`~videojobs_gateway.cluster.ClusterBackend`."""
    from videojobs_gateway.app import create_app
    from videojobs_gateway.cluster import ClusterBackend
    from videojobs_gateway.kube import KubeApi
    from videojobs_gateway.presign import Presigner

    kube = KubeApi.from_environment(settings.token_audiences)
    s3 = settings.s3()
    backend = ClusterBackend(
        kube,
        namespaces=settings.namespaces,
        as_caller=settings.auth_mode == "client",
        claim_name=settings.claim_name,
        claim_path=settings.claim_path,
        clips_root=settings.clips_root,
        worker_root=settings.worker_root,
        presigner=Presigner(s3) if s3.buckets else None,
    )
    reviewer = kube if settings.auth_mode == "client" else None
    return create_app(backend, settings, reviewer=reviewer)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="videojobs-gateway",
        description="The videojobs REST gateway over VideoProcessingJobs (cluster backend).",
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    import uvicorn

    from videojobs_gateway.serve import server_options

    settings = GatewaySettings()
    logging.basicConfig(level=args.log_level.upper(), format="%(message)s", stream=sys.stderr)
    app = build_app(settings)
    uvicorn.run(
        app,  # type: ignore[arg-type]
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        access_log=False,
        **server_options(settings),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
