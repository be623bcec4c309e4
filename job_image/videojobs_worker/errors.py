"""Worker failures, each with a category and a documented exit code (docs/worker-contract.md)."""

from __future__ import annotations

from collections.abc import Iterable

from videojobs.errors import VideoJobsError
from videojobs.models import ErrorInfo, ExitCode


class WorkerError(VideoJobsError):
    """A classified failure: the worker reports it in status and exits with ``exit_code``."""

    def __init__(self, exit_code: ExitCode, reason: str, message: str) -> None:
        self.exit_code = exit_code
        self.reason = reason
        self.message = message
        super().__init__(f"{reason}: {message}")

    @property
    def category(self) -> str:
        """The exit code's name in CamelCase, e.g. ``LoginRequired``."""
        return "".join(part.capitalize() for part in self.exit_code.name.split("_"))

    @property
    def permanent(self) -> bool:
        """True when a retry cannot help."""
        return self.exit_code.permanent

    def to_error_info(self) -> ErrorInfo:
        """The ``status.error`` form."""
        return ErrorInfo(
            category=self.category,
            reason=self.reason,
            message=self.message,
            exit_code=int(self.exit_code),
            permanent=self.permanent,
        )


def exception_chain(
    exc: BaseException | None, attrs: Iterable[str] = ("cause", "__cause__", "__context__")
) -> list[BaseException]:
    """``exc`` and every exception behind it, each once.

    Follows the named attributes (yt-dlp's ``cause``, urllib's ``reason``, ...) and yt-dlp's
    ``exc_info[1]``: libraries bury the real failure in different places.
    """
    out: list[BaseException] = []
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        out.append(current)
        exc_info = getattr(current, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) > 1:
            stack.append(exc_info[1])
        for attr in attrs:
            inner = getattr(current, attr, None)
            if isinstance(inner, BaseException):
                stack.append(inner)
    return out
