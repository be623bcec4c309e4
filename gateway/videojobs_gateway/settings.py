"""Gateway settings: ``VIDEOJOBS_GATEWAY_*`` environment variables (the chart renders them)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from videojobs_gateway.presign import S3Settings

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
        "any other address are ignored. Any mode: X-Forwarded-For from these addresses names "
        "the client (access log, failed-review limit).",
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
    token_cache_entries: int = Field(
        default=10_000,
        ge=1,
        description="client mode: most review answers kept (the oldest go first).",
    )
    token_audiences: list[str] = Field(
        default_factory=lambda: ["videojobs-gateway"],
        description="client mode: the audiences a caller's token must be minted for "
        "(kubectl create token NAME --audience videojobs-gateway); the TokenReview asks for "
        "them, so a token for the API server or another service is refused.",
    )
    unauthenticated_rate_per_second: float = Field(
        default=10.0,
        description="client mode: TokenReviews refused per second per client address before "
        "an uncached token is answered 429 without a review; 0 disables.",
    )
    rate_per_second: float = Field(
        default=50.0, description="Requests per second per identity (token bucket refill)."
    )
    rate_burst: int = Field(default=100, description="Bucket size per identity.")
    max_body_bytes: int = Field(default=4 * 2**20, description="Largest request body.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS (exact matches)."
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host header values answered (names, no port; '*.example.com' matches "
        "subdomains); any other is 400 (DNS rebinding). Empty: any host, except that "
        "videojobs serve on a loopback bind answers localhost, 127.0.0.1 and ::1 only.",
    )
    metrics_public: bool = Field(
        default=False,
        description="Serve /metrics without credentials (its job counts cover every tenant); "
        "by default it needs an authenticated caller in every mode but none.",
    )
    header_timeout_seconds: float = Field(
        default=10.0, description="A request's headers must arrive within this time."
    )
    request_timeout_seconds: float = Field(
        default=30.0,
        description="A response must start within this time, else 504 (0: no limit). "
        "Streams and downloads that have started are not cut.",
    )
    max_connections: int | None = Field(
        default=None, description="Connections served at once (more are answered 503)."
    )
    max_validation_seconds: float = Field(
        default=20.0,
        description="A submission whose checking takes longer is refused with 422.",
    )
    max_json_depth: int = Field(
        default=32, description="Deepest nesting of a request body (deeper: 400)."
    )
    max_json_nodes: int = Field(
        default=100_000,
        description="Most values (objects, arrays, strings, numbers) in a request body.",
    )
    signing_key: str | None = Field(
        default=None,
        description="Key of the signed file URLs (browsers' <video> and <img> carry no "
        "credentials); random per process when unset: set one for several replicas.",
    )
    file_url_seconds: float = Field(
        default=900.0, description="How long a signed file URL stays valid."
    )
    active_deadline_seconds: float = Field(
        default=6 * 3600.0,
        ge=0,
        description="serve: a job whose spec sets no activeDeadlineSeconds is stopped after "
        "running this long (a stalled source must not hold a slot for ever); 0: no limit.",
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
    # -- S3 downloads (cluster): presigned with the gateway's own access, never a tenant's -------
    s3_buckets: list[str] = Field(
        default_factory=list,
        description="cluster: buckets (or bucket/prefix) whose listed files are served by a 307 "
        "to a presigned URL; {namespace} stands for the job's namespace. Empty: none.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="cluster: the S3 endpoint presigned URLs point at (reachable by the "
        "callers); unset: AWS.",
    )
    s3_job_endpoints: list[str] = Field(
        default_factory=list,
        description="cluster: other endpoint URLs of the same storage that jobs' specs may name "
        "(e.g. the in-cluster address); a job naming any other endpoint is not signed for.",
    )
    s3_region: str | None = Field(default=None, description="cluster: the S3 region.")
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="auto", description="cluster: S3 addressing style (MinIO usually needs path)."
    )
    s3_credentials_dir: Path | None = Field(
        default=None,
        description="cluster: a mounted Secret with files access-key-id and secret-access-key "
        "(re-read when rotated).",
    )
    s3_access_key_id: str | None = Field(default=None, description="cluster: S3 access key id.")
    s3_secret_access_key: SecretStr | None = Field(
        default=None, description="cluster: S3 secret access key."
    )
    s3_default_credentials: bool = Field(
        default=False,
        description="cluster: without keys, use boto3's default chain (pod identity, IRSA).",
    )
    s3_presign_seconds: int = Field(
        default=300, ge=1, le=604800, description="cluster: how long a presigned URL is valid."
    )
    host: str = Field(default="0.0.0.0", description="cluster: the address to listen on.")
    port: int = Field(default=8000, description="cluster: the port to listen on.")

    def s3(self) -> S3Settings:
        """The S3 download settings of the cluster backend."""
        secret = self.s3_secret_access_key
        return S3Settings(
            buckets=tuple(self.s3_buckets),
            endpoint_url=self.s3_endpoint_url or None,
            job_endpoints=tuple(self.s3_job_endpoints),
            region=self.s3_region or None,
            addressing_style=self.s3_addressing_style,
            access_key_id=self.s3_access_key_id or None,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
            credentials_dir=self.s3_credentials_dir,
            default_credentials=self.s3_default_credentials,
            expires_seconds=self.s3_presign_seconds,
        )
