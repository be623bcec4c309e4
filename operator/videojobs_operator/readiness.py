"""When the operator is ready, and what it does when its CRD is not installed yet.

Ready (``/readyz`` 200) means both:

- the API server serves ``videoprocessingjobs.videojobs.io``. kopf runs with scanning disabled
  (it watches exactly the resources it was told about, needing no cluster-wide discovery
  rights), so a CRD installed *after* the operator started (GitOps tools apply in any order)
  would never be watched. The gate checks discovery at start; while the CRD is missing the
  operator is not ready and looks again every :data:`CRD_POLL_SECONDS`; once it appears the
  operator stops with exit code 1 so that Kubernetes restarts it, and the new process watches
  the CRD from its first moment. An API server that cannot be reached is not a missing CRD:
  the operator is not ready, says so, and looks again (kopf's watches retry by themselves).
- kopf's indices are filled: kopf calls no handler before every index has its initial listing,
  so the first handler call proves it (:meth:`Readiness.indexed`); with no VideoProcessingJob
  at all no handler runs, so an empty listing of the watched namespaces proves it too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

logger = logging.getLogger("videojobs.operator")

CRD_POLL_SECONDS = 10.0


class Readiness:
    """The two conditions of readiness, and the CRD gate."""

    def __init__(self) -> None:
        self.crd_served = False
        self.indices_filled = False

    @property
    def ready(self) -> bool:
        return self.crd_served and self.indices_filled

    def indexed(self) -> None:
        """A handler ran: kopf has filled every index."""
        self.indices_filled = True

    async def gate(
        self,
        served: Callable[[], Awaitable[bool]],
        count_resources: Callable[[], Awaitable[int | None]],
        on_installed: Callable[[], None],
        *,
        interval: float = CRD_POLL_SECONDS,
    ) -> None:
        """Check the CRD; while missing poll it, and call ``on_installed`` once it appears."""
        missing_at_start = False
        unreachable_logged = False
        while True:
            try:
                self.crd_served = await served()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the API server is unreachable or refuses: not "missing"
                self.crd_served = False
                if not unreachable_logged:
                    logger.warning(
                        "cannot reach the API server to look for the VideoProcessingJob CRD "
                        "(%s): not ready; trying again every %.0fs",
                        exc,
                        interval,
                    )
                unreachable_logged = True
                await asyncio.sleep(interval)
                continue
            if self.crd_served:
                break
            if not missing_at_start:
                logger.error(
                    "the CRD videoprocessingjobs.videojobs.io is not installed: not ready; "
                    "checking every %.0fs and restarting once it is",
                    interval,
                )
            missing_at_start = True
            await asyncio.sleep(interval)
        if missing_at_start:
            logger.warning("the VideoProcessingJob CRD is installed now; restarting to watch it")
            self.crd_served = False  # not ready: this process does not watch it
            on_installed()
            return
        try:
            if await count_resources() == 0:
                self.indexed()  # nothing to index: no handler would ever prove it
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # e.g. no list right at cluster scope: the handlers tell
            logger.debug("could not count VideoProcessingJobs: %s", exc)


def namespaces_or_cluster(namespaces: Sequence[str]) -> list[str | None]:
    """The scopes to list: each watched namespace, or the whole cluster (None)."""
    return list(namespaces) or [None]
