"""Base model and shared field types of the contract.

Every model serialises to camelCase (the Kubernetes convention) and is built from either
camelCase or snake_case. Unknown fields are errors, as they are for ``kubectl apply`` with
strict field validation.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel

from videojobs.times import format_timestamp, parse_time


class Model(BaseModel):
    """Base of every contract model: camelCase aliases, no unknown fields."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_default=True,
    )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-compatible camelCase form, without unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusModel(Model):
    """Base of status models: unknown fields are kept out, not rejected.

    A newer worker or operator may write fields an older one does not know; status is read
    leniently so that a mixed-version rollout never fails to parse it.
    """

    model_config = ConfigDict(extra="ignore")


def _time_input(value: Any) -> float:
    if isinstance(value, float):
        # Kubernetes' int-or-string has no floats: the API server would reject what we accepted.
        raise ValueError(
            f"invalid time {value!r}: write fractional seconds as a string ('{value}')"
        )
    if isinstance(value, str) and len(value) > 32:
        raise ValueError(f"invalid time {value[:40]!r}...: longer than 32 characters")
    return parse_time(value)


TimeValue = Annotated[
    float,
    BeforeValidator(_time_input),
    PlainSerializer(lambda seconds: format_timestamp(seconds), return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "maxLength": 32,
            "description": "A time: HH:MM:SS(.mmm), MM:SS(.mmm), whole seconds, or a duration "
            "like 1m30s. Write fractional seconds as a string ('65.5').",
        }
    ),
]
"""A point in time or a duration, in seconds; written as int-or-string in manifests."""

DurationValue = TimeValue
"""A length of time; same forms as :data:`TimeValue`."""

Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
"""An RFC 3339 timestamp as Kubernetes writes them (``2026-11-25T14:00:00Z``)."""

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
"""A short identifier (knowledge ids, cue ids): letters, digits, ``.``, ``_``, ``-``; 63 at most."""
