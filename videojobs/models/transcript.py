"""The transcript model: timed cues, whatever format they came from."""

from __future__ import annotations

from pydantic import Field, model_validator

from videojobs.models.base import Model
from videojobs.models.spec import KnowledgePoint


class Word(Model):
    """One timed word inside a cue, for formats that carry word-level timestamps."""

    start: float = Field(ge=0, description="Start, seconds.")
    end: float = Field(ge=0, description="End, seconds.")
    text: str = Field(description="The word as written, punctuation included.")


class Cue(Model):
    """One timed piece of text."""

    index: int = Field(ge=1, description="1-based position in the transcript.")
    id: str | None = Field(default=None, description="Cue identifier, when the format has one.")
    start: float = Field(ge=0, description="Start, seconds.")
    end: float = Field(ge=0, description="End, seconds.")
    text: str = Field(description="Plain text, tags removed, lines joined by newlines.")
    line: int | None = Field(default=None, description="Line in the source text where it starts.")
    words: list[Word] | None = Field(
        default=None,
        description="Word-level timestamps, in order, when the format has them (None otherwise).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Cue:
        if self.end < self.start:
            raise ValueError(f"cue {self.index} ends ({self.end:g}s) before it starts")
        return self


class Transcript(Model):
    """A parsed transcript, cues in time order."""

    format: str = Field(description="The format it was parsed from.")
    cues: list[Cue] = Field(description="Cues sorted by start time.")
    language: str | None = Field(default=None, description="Language, when known.")
    knowledge_points: list[KnowledgePoint] = Field(
        default_factory=list,
        description="Knowledge points carried by the document itself (the seed JSON shape).",
    )

    @property
    def duration(self) -> float:
        """End of the last cue, seconds (0 for an empty transcript)."""
        return max((c.end for c in self.cues), default=0.0)
