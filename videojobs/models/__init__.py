"""The contract: every model the operator, the worker and the CLI share."""

from videojobs.models.base import DurationValue, Model, StatusModel, TimeValue
from videojobs.models.plan import PlannedSegment, SegmentPlan
from videojobs.models.spec import (
    AutoSegmentation,
    CaptionsFromSource,
    ConfigMapKeyRef,
    ExplicitSegment,
    KnowledgePoint,
    Output,
    PvcStorage,
    Quality,
    S3Storage,
    SecretKeyRef,
    Segmentation,
    Source,
    Storage,
    TranscriptSource,
    VideoProcessingJobSpec,
    WorkerResources,
)
from videojobs.models.status import (
    FINISHED_PHASES,
    CaptionsUsed,
    Condition,
    ErrorInfo,
    OutputFile,
    OutputKind,
    Progress,
    SegmentResult,
    ShardProgress,
    ShardsSummary,
    SourceInfo,
    VideoProcessingJobStatus,
)
from videojobs.models.transcript import Cue, Transcript, Word
from videojobs.models.worker import (
    INPUT_ENV,
    INPUT_FILE,
    INPUT_FILE_ENV,
    PERMANENT_EXIT_CODES,
    ExitCode,
    ResourceRef,
    WorkerInput,
)

GROUP = "videojobs.io"
VERSION = "v1alpha1"
KIND = "VideoProcessingJob"
PLURAL = "videoprocessingjobs"
SINGULAR = "videoprocessingjob"
SHORT_NAMES = ("vpj",)
API_VERSION = f"{GROUP}/{VERSION}"

__all__ = [
    "API_VERSION",
    "FINISHED_PHASES",
    "GROUP",
    "INPUT_ENV",
    "INPUT_FILE",
    "INPUT_FILE_ENV",
    "KIND",
    "PERMANENT_EXIT_CODES",
    "PLURAL",
    "SHORT_NAMES",
    "SINGULAR",
    "VERSION",
    "CaptionsFromSource",
    "CaptionsUsed",
    "Condition",
    "ConfigMapKeyRef",
    "Cue",
    "DurationValue",
    "ErrorInfo",
    "ExitCode",
    "ExplicitSegment",
    "KnowledgePoint",
    "Model",
    "Output",
    "OutputFile",
    "OutputKind",
    "PlannedSegment",
    "Progress",
    "PvcStorage",
    "Quality",
    "ResourceRef",
    "S3Storage",
    "SecretKeyRef",
    "SegmentPlan",
    "SegmentResult",
    "Segmentation",
    "AutoSegmentation",
    "ShardProgress",
    "ShardsSummary",
    "Source",
    "SourceInfo",
    "StatusModel",
    "Storage",
    "TimeValue",
    "Transcript",
    "TranscriptSource",
    "VideoProcessingJobSpec",
    "VideoProcessingJobStatus",
    "Word",
    "WorkerInput",
    "WorkerResources",
]
