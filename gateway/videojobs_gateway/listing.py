"""The caller's whole job list as one stream of changes (the console's list page).

Pure helpers: a job's display title, and :class:`ListDiff`, which compares one reading of the
list with the previous one and says which jobs are new, changed or gone. The route
(``routes/events.py``) reads the list from the backend's memory whenever its
:class:`~videojobs_gateway.backend.ChangeFeed` wakes it, and at every heartbeat: level-triggered,
so a merged or missed wake-up is repaired by the next reading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import unquote, urlparse

from videojobs_gateway.backend import Backend, Identity, JobRecord

PAGE = 200


def job_title(job: JobRecord) -> str | None:
    """What a person calls the job: the title the source reported, else the file name in its
    URL (``talk.mp4``); None when neither is known (the console shows the job id then)."""
    source = job.status.source
    if source is not None and source.title:
        return source.title
    url = str((job.spec.get("source") or {}).get("url", ""))
    name = PurePosixPath(unquote(urlparse(url).path)).name
    return name if "." in name.strip(".") else None


def all_jobs(backend: Backend, identity: Identity) -> list[JobRecord]:
    """Every job the caller may see, newest first (the backend's memory, page by page)."""
    jobs: list[JobRecord] = []
    cursor: str | None = None
    while True:
        chunk, cursor = backend.list_jobs(identity, phase=None, limit=PAGE, cursor=cursor)
        jobs += chunk
        if cursor is None:
            return jobs


@dataclass
class Changes:
    """One reading of the list against the previous one."""

    new: list[JobRecord] = field(default_factory=list)
    changed: list[JobRecord] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.new or self.changed or self.gone)


@dataclass
class ListDiff:
    """The versions of the jobs last reported, by job id."""

    seen: dict[str, int] = field(default_factory=dict)

    def reset(self, jobs: list[JobRecord]) -> None:
        self.seen = {j.id: j.version for j in jobs}

    def update(self, jobs: list[JobRecord]) -> Changes:
        """What changed since the last reading; the reading becomes the last one. New jobs come
        oldest first, so that a client putting each on top ends with the newest on top."""
        out = Changes()
        current: dict[str, int] = {}
        for job in jobs:
            current[job.id] = job.version
            old = self.seen.get(job.id)
            if old is None:
                out.new.append(job)
            elif old != job.version:
                out.changed.append(job)
        out.new.reverse()
        out.gone = [jid for jid in self.seen if jid not in current]
        self.seen = current
        return out
