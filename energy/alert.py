"""The Alert message on the `alerts` topic: raised, updated or resolved, one per change of state."""

from __future__ import annotations

from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

AlertState = Literal["raised", "updated", "resolved"]
Severity = Literal["green", "yellow", "orange", "red"]


class Alert(BaseModel):
    """One change of an alert's state.

    ``key`` identifies the alert across its life (``unit_id|rule``); ``ts_ms`` is the event time (epoch
    ms, UTC) of the data that changed it; ``value`` and ``threshold`` are in ``uom``.
    """

    model_config = ConfigDict(frozen=True)

    v: Literal[1] = 1
    key: str
    unit_id: str
    rule: str
    severity: Severity
    state: AlertState
    value: float
    threshold: float
    uom: str
    message: str
    ts_ms: int = Field(ge=0)

    def to_json(self) -> bytes:
        """The record written to the `alerts` topic."""
        return orjson.dumps(self.model_dump())

    @classmethod
    def from_json(cls, raw: bytes | str) -> Alert:
        """Parse a record of the `alerts` topic (raises pydantic.ValidationError or ValueError)."""
        return cls.model_validate(orjson.loads(raw))
