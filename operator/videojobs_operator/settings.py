"""Operator settings, read from ``VIDEOJOBS_*`` environment variables.

The Helm chart renders every field from ``values.yaml`` (``operator.config``) into the operator's
environment; ``docs/configuration.md`` lists them. A test checks that the two stay in step.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class OperatorSettings(BaseSettings):
    """Everything an installation can tune."""

    model_config = SettingsConfigDict(env_prefix="VIDEOJOBS_", extra="ignore")

    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated namespaces to watch; empty watches the whole cluster.",
    )
    worker_image: str = Field(
        default="ghcr.io/videojobs/videojobs-worker:0.1.0",
        description="Image the Jobs run (the job image).",
    )
    worker_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="imagePullPolicy of the worker container."
    )
    worker_service_account: str = Field(
        default="videojobs-worker",
        description="ServiceAccount the worker pods run as, in each watched namespace.",
    )
    worker_service_account_annotations: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="JSON object of annotations for the worker ServiceAccounts the operator "
        "creates (IRSA, workload identity); kept up to date on existing ones it manages.",
    )
    worker_image_pull_secrets: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated Secret names the worker ServiceAccounts the operator "
        "creates pull images with (a private worker image).",
    )
    worker_cpu: str = Field(default="1", description="Default CPU request and limit per worker.")
    worker_memory: str = Field(default="1Gi", description="Default memory request and limit.")
    worker_scratch_size: str = Field(
        default="20Gi", description="Default size limit of the worker's scratch emptyDir."
    )
    max_running_jobs: int = Field(
        default=20, ge=0, description="Jobs running at once, cluster-wide; 0 means no limit."
    )
    max_running_jobs_per_namespace: int = Field(
        default=0, ge=0, description="Jobs running at once per namespace; 0 means no limit."
    )
    max_running_pods: int = Field(
        default=32,
        ge=0,
        description="Worker pods running at once, cluster-wide: a sharded run counts its shards "
        "(and has at most this many); 0 means no limit.",
    )
    default_active_deadline_seconds: int = Field(
        default=6 * 3600, ge=30, description="activeDeadlineSeconds when the spec has none."
    )
    default_ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        description="Delete finished resources after this long when the spec says nothing; "
        "unset keeps them.",
    )
    job_ttl_seconds_after_finished: int = Field(
        default=3600, ge=0, description="ttlSecondsAfterFinished of the Jobs themselves."
    )
    allow_private_networks: bool = Field(
        default=False,
        description="Let workers download from private, loopback and link-local addresses.",
    )
    allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated CIDRs workers may download from although they are private.",
    )
    s3_allowed_endpoints: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated S3 endpoint URLs specs may use (an absent endpoint takes "
        "the first); workers trust them. Empty: any endpoint that passes the network guard.",
    )
    s3_allowed_buckets: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated buckets specs may use; {namespace} stands for the "
        "resource's namespace. Empty: any bucket.",
    )
    s3_credentials_secret: str | None = Field(
        default=None,
        description="Secret (in each tenant namespace) the worker's S3 keys come from; specs "
        "naming another Secret are refused. Unset: the spec's credentialsSecretRef.",
    )
    s3_namespace_prefix: bool = Field(
        default=False,
        description="Put every S3 key under '<namespace>/'; the spec's prefix is relative to it.",
    )
    progress_interval_seconds: float = Field(
        default=5.0, gt=0, description="Least time between two progress patches by a worker."
    )
    progress_shards_per_interval: int = Field(
        default=4,
        ge=0,
        description="Shards of one run that report per progress_interval_seconds: each of k "
        "shards reports every progress_interval_seconds * max(1, k / this), so a run's shards "
        "write at most this many times per interval whatever k; 0 lets every shard report "
        "every interval.",
    )
    summed_progress_interval_seconds: float = Field(
        default=10.0,
        ge=0,
        description="Least time between two rewrites of a sharded run's summed progress by the "
        "operator; 0 rewrites it on every change of a shard's.",
    )
    pending_timeout_seconds: int = Field(
        default=600,
        ge=30,
        description="Fail a job whose pod cannot be scheduled or pulled for this long.",
    )
    default_parallelism: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Most shards for a job without spec.parallelism: one shard per "
        "parallelism_min_clips clips of its plan, at most this many; 1 keeps every such job in "
        "one pod.",
    )
    parallelism_min_clips: int = Field(
        default=20,
        ge=1,
        description="Clips (explicit segments or knowledge points) per shard when "
        "default_parallelism applies: a plan needs twice as many for two shards.",
    )
    manage_worker_rbac: bool = Field(
        default=True,
        description="Create the worker ServiceAccount, Role and RoleBinding in a namespace on "
        "its first job; turn off when the chart provisions them (namespaced mode).",
    )
    leader_election: bool = Field(
        default=True,
        description="Run only while holding a Lease, so that extra replicas stand by.",
    )
    leader_election_namespace: str | None = Field(
        default=None,
        description="Namespace of the Lease; defaults to the pod's namespace (POD_NAMESPACE).",
    )
    metrics_port: int = Field(default=9090, description="Port of the Prometheus /metrics endpoint.")
    log_format: Literal["json", "text"] = Field(default="json", description="Log line format.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level."
    )

    @field_validator("worker_service_account_annotations", mode="before")
    @classmethod
    def _json_object(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator(
        "namespaces",
        "allowed_networks",
        "worker_image_pull_secrets",
        "s3_allowed_endpoints",
        "s3_allowed_buckets",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
