"""The whole ``VideoProcessingJob`` object as it appears in a manifest."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from videojobs.models.base import Model
from videojobs.models.spec import VideoProcessingJobSpec
from videojobs.models.status import VideoProcessingJobStatus


class ObjectMeta(Model):
    """The parts of Kubernetes object metadata that a manifest may carry."""

    model_config = Model.model_config | {"extra": "allow"}

    name: str | None = Field(
        default=None, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
    )
    generate_name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class VideoProcessingJob(Model):
    """A ``VideoProcessingJob`` manifest."""

    api_version: Literal["videojobs.io/v1alpha1"] = "videojobs.io/v1alpha1"
    kind: Literal["VideoProcessingJob"] = "VideoProcessingJob"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: VideoProcessingJobSpec
    status: VideoProcessingJobStatus | None = None

    @classmethod
    def from_manifest(cls, data: Any) -> VideoProcessingJob:
        """Validate a manifest dict (as loaded from YAML)."""
        return cls.model_validate(data)
