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
from pydantic_core import SchemaValidator
from pydantic_core import core_schema as cs

SCHEMA_VERSION = 1
MAX_READINGS_PER_MESSAGE = 10_000
#: Readings must fall within these instants (epoch ms): 2000-01-01 .. 2100-01-01 UTC.
TS_MIN_MS = 946_684_800_000
TS_MAX_MS = 4_102_444_800_000

Kind = Literal["cumulative", "interval", "rate"]
Quality = Literal["good", "estimated", "manual"]


class Reading(BaseModel):
    """One meter value. ``ts_ms`` is the instant in epoch milliseconds (UTC).

    An ``interval`` reading may give ``start`` (ISO-8601 or epoch ms): the quantity was used in
    (start, ts] and is spread over the 15-minute intervals of that period; without it, the quantity
    belongs to the interval ``ts`` closes.
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
    start_ms: int | None = Field(None, alias="start")

    @field_validator("value", "old_value")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @field_validator("start_ms", mode="before")
    @classmethod
    def _start_to_epoch_ms(cls, v: Any) -> int | None:
        return None if v is None else parse_ts_ms(v)

    @model_validator(mode="after")
    def _start_of_an_interval(self) -> Reading:
        if self.start_ms is not None and (self.kind != "interval" or self.start_ms >= self.ts_ms):
            raise ValueError("start is for interval readings and must be before ts")
        return self

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
        try:
            ms = round(dt.astimezone(UTC).timestamp() * 1000)
        except (OverflowError, ValueError) as exc:  # e.g. 0001-01-01T00:00:00+01:00
            raise ValueError(f"ts {v!r} is outside 2000-01-01..2100-01-01") from exc
    else:
        raise ValueError("ts must be ISO-8601 with offset or epoch milliseconds")
    if not TS_MIN_MS <= ms < TS_MAX_MS:
        raise ValueError(f"ts {v!r} is outside 2000-01-01..2100-01-01")
    return ms


def first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "message"
    return f"{where}: {err['msg']}"


def parse_message(raw: bytes | str) -> ParsedMessage:
    """Decode and validate one readings message.

    Raises :class:`MessageRejected` when the message is not JSON or its envelope is invalid;
    otherwise returns the valid readings and a rejection (rule ``bad_reading``) for each invalid one.

    The rules are those of :class:`Envelope` and :class:`Reading`. The common message (valid, no
    meter swap) takes a faster way to the same result (:data:`_PLAIN_MESSAGE`); any other goes
    through the models one reading at a time, so what is accepted and every rejection message are
    the models' own.
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MessageRejected(Rejection("not_json", f"message is not JSON: {exc}", None, _text(raw))) from exc
    if not isinstance(doc, dict):
        raise MessageRejected(Rejection("bad_envelope", "message is not a JSON object", None, doc))
    try:
        plain = _PLAIN_MESSAGE.validate_python(doc)
    except ValidationError:
        pass  # an invalid envelope or reading, or an unusual one: the models below say which and why
    else:
        return ParsedMessage(plain["unit_id"], plain["source"], plain["seq"], plain["readings"])
    try:
        env = Envelope.model_validate(doc)
    except ValidationError as exc:
        unit = doc.get("unit_id") if isinstance(doc.get("unit_id"), str) else None
        raise MessageRejected(Rejection("bad_envelope", first_error(exc), unit, doc)) from exc
    parsed = ParsedMessage(unit_id=env.unit_id, source=env.source, seq=env.seq)
    for item in env.readings:
        try:
            parsed.readings.append(Reading.model_validate(item))
        except ValidationError as exc:
            parsed.rejections.append(Rejection("bad_reading", first_error(exc), env.unit_id, item))
    return parsed


# The fast path of parse_message, for speed: validating a reading with Reading.model_validate
# costs twice what it could, because three of its checks are Python functions (_finite,
# _swap_has_old_value and, cheaper, _to_epoch_ms), and one pydantic call per message costs less
# than one per reading. tests/unit/test_fast_path.py holds the fast path to the models.


def _plain_message_validator() -> SchemaValidator:
    """A whole message validated in one pydantic-core call: a dict of :class:`Envelope`'s fields,
    with ``readings`` the :class:`Reading` objects that ``Reading.model_validate`` gives for each,
    or ``ValidationError`` (whose messages are not the models': they are not used).

    The envelope has Envelope's own field schemas (the model has no Python checks). Each reading
    has Reading's, except:

    * ``value``: finite is checked natively (``allow_inf_nan=False``), not by ``Reading._finite``;
    * ``ts``: an integer in range is taken natively, anything else goes to ``parse_ts_ms`` (which
      ``Reading._to_epoch_ms`` calls for every ``ts``);
    * ``event`` and ``old_value`` must be missing or null: a meter swap is left to the model, and
      with it ``_swap_has_old_value``, which holds for every other reading; likewise ``start``.
    """

    def text(longest: int) -> cs.ModelField:
        return cs.model_field(cs.str_schema(min_length=1, max_length=longest))

    def absent(alias: str | None = None) -> cs.ModelField:
        return cs.model_field(
            cs.with_default_schema(cs.none_schema(), default=None), validation_alias=alias
        )

    reading_fields = {
        "meter_id": text(128),
        "energy": text(64),
        "kind": cs.model_field(cs.literal_schema(["cumulative", "interval", "rate"])),
        "value": cs.model_field(cs.float_schema(allow_inf_nan=False)),
        "uom": text(16),
        "ts_ms": cs.model_field(
            cs.union_schema(
                [
                    # epoch ms in range, checked natively; anything else is parse_ts_ms's business
                    cs.int_schema(strict=True, ge=TS_MIN_MS, lt=TS_MAX_MS),
                    cs.no_info_plain_validator_function(parse_ts_ms),
                ]
            ),
            validation_alias="ts",
        ),
        "quality": cs.model_field(
            cs.with_default_schema(cs.literal_schema(["good", "estimated", "manual"]), default="good")
        ),
        "event": absent(),
        "old_value": absent(),
        "start_ms": absent("start"),  # an interval with its start is left to the model
    }
    reading = cs.model_schema(
        Reading,
        cs.model_fields_schema(reading_fields, model_name="Reading"),
        config=cs.CoreConfig(title="Reading", extra_fields_behavior="ignore"),
    )
    envelope_fields = {
        "v": cs.typed_dict_field(cs.literal_schema([1])),
        "unit_id": cs.typed_dict_field(cs.str_schema(min_length=1, max_length=64)),
        "source": cs.typed_dict_field(cs.str_schema(min_length=1, max_length=128)),
        "seq": cs.typed_dict_field(cs.int_schema(ge=0)),
        "readings": cs.typed_dict_field(
            cs.list_schema(reading, min_length=1, max_length=MAX_READINGS_PER_MESSAGE)
        ),
    }
    if set(reading_fields) != set(Reading.model_fields) or set(envelope_fields) != set(Envelope.model_fields):
        raise RuntimeError("schema._plain_message_validator must have every field of Reading and Envelope")
    return SchemaValidator(cs.typed_dict_schema(envelope_fields, extra_behavior="ignore"))


_PLAIN_MESSAGE = _plain_message_validator()


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
        **({"start": r.start_ms} if r.start_ms is not None else {}),
    }
