"""Gateway settings: ``VIDEOJOBS_GATEWAY_*`` environment variables (the chart renders them)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

AuthMode = Literal["none", "apikey", "header", "client"]


class GatewaySettings(BaseSettings):
    """How the gateway authenticates, limits and serves."""

    model_config = SettingsConfigDict(env_prefix="VIDEOJOBS_GATEWAY_", extra="ignore")

    auth_mode: AuthMode = Field(default="none", description="none, apikey, header or client.")
    namespace: str = Field(
        default="default", description="The namespace of every job in auth mode none."
    )
    api_keys_file: Path | None = Field(
        default=None,
        description="apikey mode: YAML/JSON list of {name, sha256, namespace, rate} (a mounted "
        "Secret key); re-read when it changes, so a removed key is revoked at once.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="header mode: CIDRs of the authenticating proxy; identity headers from "
        "any other address are ignored.",
    )
    user_header: str = Field(default="X-Remote-User", description="header mode: user name.")
    group_header: str = Field(default="X-Remote-Group", description="header mode: groups.")
    namespace_header: str = Field(
        default="X-Remote-Namespace",
        description="header mode: the caller's namespace (else the setting namespace).",
    )
    token_cache_seconds: float = Field(
        default=60.0, description="client mode: how long a TokenReview answer is reused."
    )
    rate_per_second: float = Field(
        default=50.0, description="Requests per second per identity (token bucket refill)."
    )
    rate_burst: int = Field(default=100, description="Bucket size per identity.")
    max_body_bytes: int = Field(default=4 * 2**20, description="Largest request body.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS (exact matches)."
    )
    signing_key: str | None = Field(
        default=None,
        description="Key of the signed file URLs (browsers' <video> and <img> carry no "
        "credentials); random per process when unset: set one for several replicas.",
    )
    file_url_seconds: float = Field(
        default=900.0, description="How long a signed file URL stays valid."
    )
    stream_heartbeat_seconds: float = Field(
        default=15.0, description="SSE comment line interval while nothing changes."
    )

    # -- the cluster backend (``videojobs-gateway``, the chart's gateway Deployment) ----------
    namespaces: list[str] = Field(
        default_factory=list,
        description="cluster: namespaces whose VideoProcessingJobs are served (one watch "
        "each); empty watches the whole cluster.",
    )
    claim_name: str = Field(
        default="videojobs-clips",
        description="cluster: storage.pvc.claimName of a REST submission without storage.",
    )
    claim_path: str = Field(
        default="", description="cluster: storage.pvc.path of such a submission."
    )
    clips_root: Path | None = Field(
        default=None,
        description="cluster: where the clips claim is mounted (read-only) in the gateway "
        "pod; unset serves no files from a volume.",
    )
    worker_root: str = Field(
        default="/output",
        description="cluster: where the worker mounts the claim (the prefix of its file:// URIs).",
    )
    host: str = Field(default="0.0.0.0", description="cluster: the address to listen on.")
    port: int = Field(default=8000, description="cluster: the port to listen on.")
