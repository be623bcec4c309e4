"""The segment plan: the ordered list of clips a job will cut."""

from __future__ import annotations

from pydantic import Field

from videojobs.models.base import Model


class PlannedSegment(Model):
    """One clip to cut."""

    index: int = Field(ge=1, description="1-based position in the plan.")
    knowledge_id: str | None = Field(default=None, description="Knowledge id, if any.")
    title: str = Field(description="Clip title.")
    description: str = Field(default="", description="Clip description.")
    start: float = Field(ge=0, description="Start in the source, seconds (ms precision).")
    end: float = Field(gt=0, description="End in the source, seconds (exclusive).")
    stem: str = Field(description="File name stem, unique in the plan, filesystem/S3-safe.")
    cue_indices: tuple[int, int] | None = Field(
        default=None, description="First and last transcript cue (1-based) inside the clip."
    )
    confidence: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="For a clip proposed by segmentation.auto: how clear the topic change at its "
        "weaker edge is (0-1).",
    )

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return round(self.end - self.start, 3)


class SegmentPlan(Model):
    """The planner's answer: clips sorted by start time."""

    segments: list[PlannedSegment] = Field(description="Clips, sorted by start.")
    source_duration: float | None = Field(
        default=None, description="The source length the plan was clamped to, if known."
    )
    notes: list[str] = Field(
        default_factory=list, description="What the planner changed (merges, clamps, snaps)."
    )

    @property
    def total_duration(self) -> float:
        """Seconds of output."""
        return round(sum(s.duration for s in self.segments), 3)
