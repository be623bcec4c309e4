"""Errors of the shared core.

Every error a user can cause carries one or more :class:`Problem` s: where (a field path such as
``spec.knowledgePoints[2].quote`` or a transcript line) and what is wrong, in words a person can
act on. The CLI prints one line per problem; the operator puts them in ``status.error``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input."""

    path: str
    """Field path (``spec.output.formats``) or source (``transcript``)."""
    message: str
    """What is wrong and what was expected."""
    line: int | None = None
    """Line number in a transcript, when the problem is in one."""

    def __str__(self) -> str:
        where = f"{self.path}, line {self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


class VideoJobsError(Exception):
    """Base of every videojobs error."""


class InvalidSpec(VideoJobsError):
    """The resource, its transcript or its plan is invalid; retrying cannot help."""

    def __init__(self, problems: list[Problem] | Problem) -> None:
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


class TranscriptError(InvalidSpec):
    """A transcript could not be parsed; the problem names the line."""


class PlanError(InvalidSpec):
    """The spec cannot be turned into clips (unmatched quote, overlap under reject, ...)."""


class ConfigError(VideoJobsError, ValueError):
    """An operator or worker setting is invalid; the message names the variable."""
