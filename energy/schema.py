"""The readings message (ARCHITECTURE.md): one message per unit scan carrying 1..N readings.

A message that is not JSON or has a broken envelope is rejected whole; a reading that fails
validation is rejected on its own and its siblings go on. Every rejection names its rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SCHEMA_VERSION = 1
MAX_READINGS_PER_MESSAGE = 10_000
#: Readings must fall within these instants (epoch ms): 2000-01-01 .. 2100-01-01 UTC.
TS_MIN_MS = 946_684_800_000
TS_MAX_MS = 4_102_444_800_000

Kind = Literal["cumulative", "interval", "rate"]
Quality = Literal["good", "estimated", "manual"]


class Reading(BaseModel):
    """One meter value. ``ts_ms`` is the instant in epoch milliseconds (UTC).

    A cumulative reading with ``event = "meter_swap"`` reports a replaced meter: ``old_value`` is the
    old meter's final register and ``value`` the new meter's first, both in ``uom``.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    meter_id: str = Field(min_length=1, max_length=128)
    energy: str = Field(min_length=1, max_length=64)
    kind: Kind
    value: float
    uom: str = Field(min_length=1, max_length=16)
    ts_ms: int = Field(alias="ts")
    quality: Quality = "good"
    event: Literal["meter_swap"] | None = None
    old_value: float | None = None

    @field_validator("value", "old_value")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @model_validator(mode="after")
    def _swap_has_old_value(self) -> Reading:
        if (self.event == "meter_swap") != (self.old_value is not None):
            raise ValueError("a meter_swap event needs old_value, and old_value needs the event")
        return self

    @field_validator("ts_ms", mode="before")
    @classmethod
    def _to_epoch_ms(cls, v: Any) -> int:
        return parse_ts_ms(v)


class Envelope(BaseModel):
    """The message around the readings; ``readings`` are validated one by one afterwards."""

    model_config = ConfigDict(extra="ignore")

    v: Literal[1]
    unit_id: str = Field(min_length=1, max_length=64)
    source: str = Field(min_length=1, max_length=128)
    seq: int = Field(ge=0)
    readings: list[Any] = Field(min_length=1, max_length=MAX_READINGS_PER_MESSAGE)


@dataclass(frozen=True)
class Rejection:
    """Why something was not used. ``rule`` is a stable code; ``detail`` says what was wrong."""

    rule: str
    detail: str
    unit_id: str | None = None
    payload: Any = None

    def to_json(self) -> bytes:
        """The dead-letter record for `readings.rejected`."""
        return orjson.dumps(
            {"rule": self.rule, "detail": self.detail, "unit_id": self.unit_id, "payload": self.payload},
            default=str,
        )


@dataclass
class ParsedMessage:
    """A message whose envelope was valid: its good readings and its rejected ones."""

    unit_id: str
    source: str
    seq: int
    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


class MessageRejected(Exception):
    """The whole message is unusable; carries the :class:`Rejection`."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(f"{rejection.rule}: {rejection.detail}")
        self.rejection = rejection


def parse_ts_ms(v: Any) -> int:
    """An ISO-8601 string with offset, or an integer of epoch milliseconds, as epoch ms (UTC)."""
    if isinstance(v, bool):
        raise ValueError("ts must be ISO-8601 with offset or epoch milliseconds")
    if isinstance(v, int):
        ms = v
    elif isinstance(v, float) and v.is_integer():
        ms = int(v)
    elif isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v)
        except ValueError as exc:
            raise ValueError(f"ts {v!r} is not ISO-8601") from exc
        if dt.tzinfo is None:
            raise ValueError(f"ts {v!r} has no UTC offset")
        ms = round(dt.astimezone(UTC).timestamp() * 1000)
    else:
        raise ValueError("ts must be ISO-8601 with offset or epoch milliseconds")
    if not TS_MIN_MS <= ms < TS_MAX_MS:
        raise ValueError(f"ts {v!r} is outside 2000-01-01..2100-01-01")
    return ms


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "message"
    return f"{where}: {err['msg']}"


def parse_message(raw: bytes | str) -> ParsedMessage:
    """Decode and validate one readings message.

    Raises :class:`MessageRejected` when the message is not JSON or its envelope is invalid;
    otherwise returns the valid readings and a rejection (rule ``bad_reading``) for each invalid one.
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MessageRejected(Rejection("not_json", f"message is not JSON: {exc}", None, _text(raw))) from exc
    if not isinstance(doc, dict):
        raise MessageRejected(Rejection("bad_envelope", "message is not a JSON object", None, doc))
    try:
        env = Envelope.model_validate(doc)
    except ValidationError as exc:
        unit = doc.get("unit_id") if isinstance(doc.get("unit_id"), str) else None
        raise MessageRejected(Rejection("bad_envelope", _first_error(exc), unit, doc)) from exc
    parsed = ParsedMessage(unit_id=env.unit_id, source=env.source, seq=env.seq)
    for item in env.readings:
        try:
            parsed.readings.append(Reading.model_validate(item))
        except ValidationError as exc:
            parsed.rejections.append(Rejection("bad_reading", _first_error(exc), env.unit_id, item))
    return parsed


def _text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return text[:2000]


def reading_to_json(r: Reading) -> dict[str, Any]:
    """A reading as it travels on the `readings` topic (ts in epoch ms)."""
    return {
        "meter_id": r.meter_id,
        "energy": r.energy,
        "kind": r.kind,
        "value": r.value,
        "uom": r.uom,
        "ts": r.ts_ms,
        "quality": r.quality,
        **({"event": r.event, "old_value": r.old_value} if r.event else {}),
    }
