"""Kubernetes timestamps (RFC 3339, UTC)."""

from __future__ import annotations

import datetime as dt


def format_time(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with whole seconds, as Kubernetes writes timestamps."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> dt.datetime | None:
    """Parse a Kubernetes timestamp (whole or fractional seconds); None stays None."""
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
