"""The worker contract: what the operator hands the worker pod, and how the worker answers.

See ``docs/worker-contract.md`` for the prose version. In short: the operator puts a
:class:`WorkerInput` as JSON in a per-run ConfigMap owned by the Job, mounted in the pod at
:data:`INPUT_FILE` (named by ``VIDEOJOBS_INPUT_FILE``; ``VIDEOJOBS_INPUT`` holding the JSON itself
serves local runs); the worker patches ``.status`` fields it owns and exits with one of
:class:`ExitCode`.
"""

from __future__ import annotations

from enum import IntEnum

from pydantic import Field

from videojobs.models.base import Model
from videojobs.models.spec import VideoProcessingJobSpec

INPUT_ENV = "VIDEOJOBS_INPUT"
"""Environment variable holding the :class:`WorkerInput` JSON (local runs and tests)."""

INPUT_FILE_ENV = "VIDEOJOBS_INPUT_FILE"
"""Environment variable naming the file that holds the :class:`WorkerInput` JSON."""

INPUT_MOUNT = "/var/run/videojobs/input"
"""Where the operator mounts the run's input ConfigMap."""

INPUT_KEY = "input.json"
"""The ConfigMap key (file name) of the input; ``input.json.gz`` (gzip, in ``binaryData``) when
the JSON alone would not fit in a ConfigMap."""

INPUT_FILE = f"{INPUT_MOUNT}/{INPUT_KEY}"

TRANSCRIPT_MOUNT = "/var/run/videojobs/transcript"
"""Where the operator mounts a transcript ConfigMap key (file name ``transcript``)."""

SCRATCH_MOUNT = "/scratch"
"""The writable scratch volume (the root filesystem is read-only)."""

OUTPUT_MOUNT = "/output"
"""Where a PVC storage backend is mounted."""

SHARD_INDEX_ENV = "JOB_COMPLETION_INDEX"
"""The shard's index in a sharded run: the Job controller sets it in every Indexed Job pod."""

COOKIES_MOUNT = "/var/run/videojobs/cookies"
"""Where a cookies Secret key is mounted (file name ``cookies.txt``)."""


class ExitCode(IntEnum):
    """Worker exit codes. 2, 10-19 and 30 are permanent (the Job fails at once), 20-29 transient.

    30 (``CLIP_MISMATCH``): a cut clip does not match its plan even with the safest method;
    cutting the same source again gives the same clip, so retrying cannot help.
    """

    OK = 0
    INTERNAL = 1
    USAGE = 2
    INVALID_SPEC = 10
    UNAVAILABLE = 11
    PRIVATE = 12
    LOGIN_REQUIRED = 13
    GEO_BLOCKED = 14
    AGE_RESTRICTED = 15
    UNSUPPORTED_URL = 16
    NOT_A_VIDEO = 17
    BLOCKED_ADDRESS = 18
    PLAN_ERROR = 19
    NETWORK = 20
    TIMEOUT = 21
    NO_SPACE = 22
    STORAGE = 23
    MEDIA_TOOL = 24
    CLIP_MISMATCH = 30
    TERMINATED = 143

    @property
    def permanent(self) -> bool:
        """True when retrying cannot help."""
        return self in (ExitCode.USAGE, ExitCode.CLIP_MISMATCH) or 10 <= self.value <= 19


PERMANENT_EXIT_CODES: tuple[int, ...] = tuple(c.value for c in ExitCode if c.permanent)


class ResourceRef(Model):
    """The VideoProcessingJob a worker works for."""

    namespace: str = Field(description="Namespace of the resource.")
    name: str = Field(description="Name of the resource.")
    uid: str = Field(description="UID of the resource (guards against a re-created namesake).")
    generation: int | None = Field(default=None, description="Spec generation being run.")
    job_name: str | None = Field(
        default=None,
        description="The run's Job, as the operator writes it into status.jobName; the worker's "
        "status writes test it, so a worker of an earlier run (a changed rerunToken) in its "
        "grace period never writes into the new run's status.",
    )


class WorkerInput(Model):
    """Everything the worker needs besides the media."""

    spec: VideoProcessingJobSpec = Field(description="The resource's spec.")
    resource: ResourceRef | None = Field(
        default=None, description="The resource to report to; absent in local runs."
    )
    transcript_path: str | None = Field(
        default=None, description="File holding the transcript (a mounted ConfigMap key)."
    )
    allow_private_networks: bool = Field(
        default=False,
        description="Allow downloads from private, loopback and link-local addresses.",
    )
    allowed_networks: list[str] = Field(
        default_factory=list, description="CIDRs allowed even though they are private."
    )
    trusted_s3_endpoints: list[str] = Field(
        default_factory=list,
        description="S3 endpoints the platform vouches for (operator setting s3AllowedEndpoints):"
        " exempt from the network guard. Any other endpoint passes the guard like a download.",
    )
    progress_interval_seconds: float = Field(
        default=5.0, gt=0, description="Least time between two progress patches."
    )
    shards: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Shards of the run (the Indexed Job's completions); each pod cuts the share "
        f"named by {SHARD_INDEX_ENV!r}. 1: one pod cuts every clip.",
    )
