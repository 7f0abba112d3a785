"""The readings message (ARCHITECTURE.md): one message per unit scan carrying 1..N readings.

A message that is not JSON or has a broken envelope is rejected whole; a reading that fails
validation is rejected on its own and its siblings go on. Every rejection names its rule; one that
breaks the schema also names the field and the check it failed (:data:`CHECKS`). A rejection is
always small enough to publish and to encode, whatever it was given (:func:`bounded_payload`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError, SchemaValidator
from pydantic_core import core_schema as cs

SCHEMA_VERSION = 1
MAX_READINGS_PER_MESSAGE = 10_000
#: Readings must fall within these instants (epoch ms): 2000-01-01 .. 2100-01-01 UTC.
TS_MIN_MS = 946_684_800_000
TS_MAX_MS = 4_102_444_800_000
#: Largest magnitude of a reading's ``value`` and ``old_value`` in any uom: no meter reads 10¹⁵, and
#: there a float64 resolves a register only to 0.125, so deltas would no longer be exact.
MAX_VALUE = 1e15
#: Longest period (ms) an interval reading's ``start``..``ts`` may cover: a month's statistic stamped
#: up to a day late (32 days; the reading is spread over each 15-minute interval of it).
MAX_SPAN_MS = 32 * 86_400_000
#: How far (ms) a reading's ``ts`` may be ahead of the clock of whoever receives it (one hour of clock
#: drift): a meter whose clock is wrong by hours or years, or local time sent as UTC, is refused
#: instead of moving the unit's newest time into the future (which would make all its real readings
#: too late).
MAX_AHEAD_MS = 3_600_000

# Identifiers (unit, meter and source ids, energy codes, uoms) are tags in InfluxDB, Kafka keys and
# words in alerts and logs: no control characters (NUL, line breaks, C1), format characters (bidi
# overrides, zero-width marks, BOM) or line/paragraph separators anywhere, and no white space or
# backslash at either end (InfluxDB 1.x cannot store a tag value ending in a backslash).
_NOT_IN_TEXT = r"\p{Cc}\p{Cf}\p{Zl}\p{Zp}"
_TEXT_END = rf"[^\s\\{_NOT_IN_TEXT}]"
#: The pattern every identifier matches (pydantic's Rust regex syntax).
TEXT_PATTERN = rf"^{_TEXT_END}(?:[^{_NOT_IN_TEXT}]*{_TEXT_END})?$"
TEXT_RULE = (
    "must be text without control or format characters (NUL, line breaks, bidi overrides, zero-width "
    "marks) that does not start or end with white space or a backslash"
)

#: A rejection keeps its payload as received while the payload's JSON is at most this many bytes, so
#: that a dead letter always fits a Kafka message (1 MB by default); a larger one keeps a preview.
MAX_PAYLOAD_BYTES = 256 * 1024
#: Bytes of JSON kept as the preview of a payload over :data:`MAX_PAYLOAD_BYTES`.
PREVIEW_BYTES = 4096
#: Characters of a rejection's ``detail`` (longer ones are cut).
MAX_DETAIL_CHARS = 500

#: The ``check`` of a rejection that breaks the schema: code → what failed. Stable codes (dashboards
#: and tools may count them); ``rule`` says what was refused (``bad_envelope``, ``bad_reading``,
#: ``bad_output``), ``field`` where.
CHECKS: dict[str, str] = {
    "missing": "a required field is absent",
    "wrong_type": "a field has the wrong JSON type (a number as text, true/false for a number, …)",
    "not_object": "the message, a reading or an item is not a JSON object",
    "not_allowed": "not one of the allowed values (v, kind, quality, event)",
    "empty": "empty text or an empty list",
    "too_long": "text or a list longer than allowed (ids 64/128 characters, 10,000 readings)",
    "bad_text": f"an identifier that {TEXT_RULE.removeprefix('must be ')}",
    "not_finite": "NaN or ±infinity",
    "out_of_range": "a number out of its range (seq below 0, |value| above 10¹⁵)",
    "bad_ts": "ts or start is neither ISO-8601 with a UTC offset nor epoch milliseconds",
    "ts_out_of_range": "ts or start outside 2000-01-01..2100-01-01 UTC",
    "ts_in_future": "ts more than an hour ahead of the receiving clock",
    "bad_start": "start on a reading that is not an interval, not before ts, or over 32 days before it",
    "swap_fields": "event meter_swap without old_value, or old_value without the event",
    "invalid": "anything else the schema refuses",
}

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

    meter_id: str = Field(min_length=1, max_length=128, pattern=TEXT_PATTERN)
    energy: str = Field(min_length=1, max_length=64, pattern=TEXT_PATTERN)
    kind: Kind
    value: float = Field(strict=True, allow_inf_nan=False, ge=-MAX_VALUE, le=MAX_VALUE)
    uom: str = Field(min_length=1, max_length=16, pattern=TEXT_PATTERN)
    ts_ms: int = Field(alias="ts")
    quality: Quality = "good"
    event: Literal["meter_swap"] | None = None
    old_value: float | None = Field(None, strict=True, allow_inf_nan=False, ge=-MAX_VALUE, le=MAX_VALUE)
    start_ms: int | None = Field(None, alias="start")

    @field_validator("start_ms", mode="before")
    @classmethod
    def _start_to_epoch_ms(cls, v: Any) -> int | None:
        return None if v is None else epoch_ms_field(v)

    @model_validator(mode="after")
    def _start_of_an_interval(self) -> Reading:
        if self.start_ms is None:
            return self
        if self.kind != "interval" or self.start_ms >= self.ts_ms:
            raise PydanticCustomError("bad_start", "start is for interval readings and must be before ts")
        if self.ts_ms - self.start_ms > MAX_SPAN_MS:
            raise PydanticCustomError(
                "bad_start", f"start is more than {MAX_SPAN_MS // 86_400_000} days before ts"
            )
        return self

    @model_validator(mode="after")
    def _swap_has_old_value(self) -> Reading:
        if (self.event == "meter_swap") != (self.old_value is not None):
            raise PydanticCustomError(
                "swap_fields", "a meter_swap event needs old_value, and old_value needs the event"
            )
        return self

    @field_validator("ts_ms", mode="before")
    @classmethod
    def _to_epoch_ms(cls, v: Any) -> int:
        return epoch_ms_field(v)


class EnvelopeHead(BaseModel):
    """What every message has (readings and output messages): schema version ``v`` (the integer 1),
    ``unit_id``, ``source`` (the collector) and ``seq`` (its message counter)."""

    model_config = ConfigDict(extra="ignore")

    v: Literal[1]
    unit_id: str = Field(min_length=1, max_length=64, pattern=TEXT_PATTERN)
    source: str = Field(min_length=1, max_length=128, pattern=TEXT_PATTERN)
    seq: int = Field(ge=0, strict=True)

    @field_validator("v", mode="before")
    @classmethod
    def _v_is_an_integer(cls, v: Any) -> Any:
        if type(v) in (bool, float):  # Literal[1] alone takes true and 1.0
            raise PydanticCustomError("wrong_type", "v must be the integer 1")
        return v


class Envelope(EnvelopeHead):
    """The message around the readings; ``readings`` are validated one by one afterwards."""

    readings: list[Any] = Field(min_length=1, max_length=MAX_READINGS_PER_MESSAGE)


@dataclass(frozen=True)
class Rejection:
    """Why something was not used. ``rule`` is a stable code; ``detail`` says what was wrong; for a
    schema rule, ``field`` is the dotted path of the field at fault (None: the message or reading as
    a whole) and ``check`` the stable code of the check it failed (:data:`CHECKS`).

    ``detail`` is cut at :data:`MAX_DETAIL_CHARS` and ``payload`` bounded by :func:`bounded_payload`,
    so that every rejection can be encoded and published."""

    rule: str
    detail: str
    unit_id: str | None = None
    payload: Any = None
    field: str | None = None
    check: str | None = None

    def __post_init__(self) -> None:
        if len(self.detail) > MAX_DETAIL_CHARS:
            object.__setattr__(self, "detail", self.detail[: MAX_DETAIL_CHARS - 1] + "…")
        object.__setattr__(self, "payload", bounded_payload(self.payload))

    def to_json(self) -> bytes:
        """The dead-letter record for `readings.rejected`: ``rule``, ``detail``, ``unit_id``,
        ``payload``, and ``field`` and ``check`` when set."""
        doc = {"rule": self.rule, "detail": self.detail, "unit_id": self.unit_id, "payload": self.payload}
        if self.field is not None:
            doc["field"] = self.field
        if self.check is not None:
            doc["check"] = self.check
        return orjson.dumps(doc, default=str)


def bounded_payload(payload: Any) -> Any:
    """``payload`` as given when its JSON takes at most :data:`MAX_PAYLOAD_BYTES`; otherwise the
    first :data:`PREVIEW_BYTES` of that JSON as text, marked as cut. What JSON cannot carry (nesting
    deeper than the encoder's 255 levels, less 16 for the record around it; lone surrogates; integers
    beyond 64 bits) is made plain first: 64 levels deep, lone surrogates as ``?``, big integers as
    text."""
    wrapped = payload
    for _ in range(16):  # room for the record (and a reply) the payload goes into
        wrapped = [wrapped]
    try:
        encoded = orjson.dumps(wrapped, default=str)[16:-16]
    except TypeError:  # orjson.JSONEncodeError
        payload = _plain(payload, 64)
        encoded = orjson.dumps(payload)
    if len(encoded) <= MAX_PAYLOAD_BYTES:
        return payload
    preview = encoded[:PREVIEW_BYTES].decode("utf-8", "ignore")
    return f"{preview}… (cut: {len(encoded)} bytes of JSON)"


def _plain(value: Any, depth: int) -> Any:
    """``value`` with what orjson cannot encode replaced (see :func:`bounded_payload`)."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if depth <= 0:
        return "…"
    if isinstance(value, dict):
        return {_plain(str(k), 0): _plain(v, depth - 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, depth - 1) for v in value]
    return _plain(str(value), 0)


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


class TsError(ValueError):
    """A timestamp that cannot be used; ``check`` is ``bad_ts`` or ``ts_out_of_range`` (:data:`CHECKS`)."""

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(detail)
        self.check = check


def parse_ts_ms(v: Any) -> int:
    """An ISO-8601 string with offset, or an integer of epoch milliseconds, as epoch ms (UTC);
    raises :class:`TsError` (a ValueError)."""
    if isinstance(v, bool):
        raise TsError("bad_ts", "ts must be ISO-8601 with offset or epoch milliseconds")
    if isinstance(v, int):
        ms = v
    elif isinstance(v, float) and v.is_integer():
        ms = int(v)
    elif isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v)
        except ValueError as exc:
            raise TsError("bad_ts", f"ts {_shown(v)} is not ISO-8601") from exc
        if dt.tzinfo is None:
            raise TsError("bad_ts", f"ts {_shown(v)} has no UTC offset")
        try:
            ms = round(dt.astimezone(UTC).timestamp() * 1000)
        except (OverflowError, ValueError) as exc:  # e.g. 0001-01-01T00:00:00+01:00
            raise TsError("ts_out_of_range", f"ts {_shown(v)} is outside 2000-01-01..2100-01-01") from exc
    else:
        raise TsError("bad_ts", "ts must be ISO-8601 with offset or epoch milliseconds")
    if not TS_MIN_MS <= ms < TS_MAX_MS:
        raise TsError("ts_out_of_range", f"ts {_shown(v)} is outside 2000-01-01..2100-01-01")
    return ms


def epoch_ms_field(v: Any) -> int:
    """:func:`parse_ts_ms` for a model's field validator: its error as a pydantic error whose type is
    the check."""
    try:
        return parse_ts_ms(v)
    except TsError as exc:
        raise PydanticCustomError(exc.check, "{detail}", {"detail": str(exc)}) from None


def _shown(v: Any) -> str:
    """``repr(v)``, at most 64 characters."""
    text = repr(v)
    return text if len(text) <= 64 else text[:63] + "…"


#: pydantic's error types → :data:`CHECKS` (types ending in ``_type`` or ``_parsing`` are
#: ``wrong_type``; our own validators raise errors whose type is the check itself).
_CHECK_OF_ERROR = {
    "missing": "missing",
    "literal_error": "not_allowed",
    "string_too_short": "empty",
    "too_short": "empty",
    "string_too_long": "too_long",
    "too_long": "too_long",
    "string_pattern_mismatch": "bad_text",
    "finite_number": "not_finite",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
    "model_type": "not_object",
    "model_attributes_type": "not_object",
    "dict_type": "not_object",
    "int_parsing_size": "out_of_range",  # an integer beyond 64 bits (signed)
    "int_from_float": "wrong_type",
    "string_unicode": "wrong_type",
}


def explain(exc: ValidationError, whole: str = "message") -> tuple[str, str | None, str]:
    """``(detail, field, check)`` of the first error of ``exc``: ``field`` is the dotted path (None
    when the error is about the whole thing, which ``detail`` then calls ``whole``)."""
    err = exc.errors(include_url=False)[0]
    kind = err["type"]
    if kind in CHECKS:
        check = kind
    elif kind in _CHECK_OF_ERROR:
        check = _CHECK_OF_ERROR[kind]
    else:
        check = "wrong_type" if kind.endswith(("_type", "_parsing")) else "invalid"
    where = ".".join(str(p) for p in err["loc"])
    message = TEXT_RULE if check == "bad_text" else err["msg"]
    return f"{where or whole}: {message}", where or None, check


def first_error(exc: ValidationError) -> str:
    """The ``detail`` of :func:`explain`."""
    return explain(exc)[0]


def validation_rejection(
    rule: str, exc: ValidationError, unit_id: str | None, payload: Any, whole: str = "message"
) -> Rejection:
    """The rejection by ``rule`` of ``payload`` for the first error of ``exc`` (:func:`explain`)."""
    detail, where, check = explain(exc, whole)
    return Rejection(rule, detail, unit_id, payload, where, check)


_UNIT_ID = SchemaValidator(cs.str_schema(min_length=1, max_length=64, pattern=TEXT_PATTERN))
_TEXT = SchemaValidator(cs.str_schema(pattern=TEXT_PATTERN))


def _text_rule(v: str) -> str:
    if not _TEXT.isinstance_python(v):
        raise PydanticCustomError("bad_text", TEXT_RULE)
    return v


#: An identifier's text (:data:`TEXT_PATTERN`) for models whose errors people read as they are
#: (registry files): the error says the rule instead of showing the pattern.
IdText = Annotated[str, AfterValidator(_text_rule)]


def unit_id_of(doc: dict[str, Any]) -> str | None:
    """The ``unit_id`` of a message refused whole, when it is a valid one (the dead letter's key)."""
    unit = doc.get("unit_id")
    return unit if isinstance(unit, str) and _UNIT_ID.isinstance_python(unit) else None


def parse_message(raw: bytes | str, now_ms: int | None = None) -> ParsedMessage:
    """Decode and validate one readings message; ``now_ms`` is the receiver's clock (epoch ms), and
    a reading more than :data:`MAX_AHEAD_MS` ahead of it is refused (None: no such check).

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
        raise MessageRejected(
            Rejection("bad_envelope", "message is not a JSON object", None, doc, None, "not_object")
        )
    try:
        plain = _PLAIN_MESSAGE.validate_python(doc)
    except ValidationError:
        # an invalid envelope or reading, or an unusual one: the models say which and why
        parsed = _parse_with_models(doc)
    else:
        parsed = ParsedMessage(plain["unit_id"], plain["source"], plain["seq"], plain["readings"])
    if now_ms is not None:
        _refuse_ahead(parsed, now_ms)
    return parsed


def _parse_with_models(doc: dict[str, Any]) -> ParsedMessage:
    """:func:`parse_message` of a decoded message, reading by reading."""
    try:
        env = Envelope.model_validate(doc)
    except ValidationError as exc:
        raise MessageRejected(validation_rejection("bad_envelope", exc, unit_id_of(doc), doc)) from exc
    parsed = ParsedMessage(unit_id=env.unit_id, source=env.source, seq=env.seq)
    for item in env.readings:
        try:
            parsed.readings.append(Reading.model_validate(item))
        except ValidationError as exc:
            parsed.rejections.append(validation_rejection("bad_reading", exc, env.unit_id, item, "reading"))
    return parsed


def _refuse_ahead(parsed: ParsedMessage, now_ms: int) -> None:
    """Move the readings of ``parsed`` stamped more than :data:`MAX_AHEAD_MS` after ``now_ms`` to
    its rejections (rule ``bad_reading``, check ``ts_in_future``)."""
    limit = now_ms + MAX_AHEAD_MS
    if all(r.ts_ms <= limit for r in parsed.readings):
        return
    kept = []
    for r in parsed.readings:
        if r.ts_ms <= limit:
            kept.append(r)
            continue
        detail = ahead_detail(r.ts_ms, now_ms)
        parsed.rejections.append(
            Rejection("bad_reading", detail, parsed.unit_id, reading_to_json(r), "ts", "ts_in_future")
        )
    parsed.readings = kept


def reading_problem(
    unit_id: str, item: dict[str, Any], now_ms: int | None = None
) -> tuple[str, str | None, str] | None:
    """What the stream would refuse in one reading a collector built for ``unit_id`` (``item`` as in
    the ``readings`` list): ``(detail, field, check)`` as :func:`explain`, or None when it is fine.
    ``now_ms`` (epoch ms) is the collector's clock for the ``ts_in_future`` check (None: none)."""
    try:
        _UNIT_ID.validate_python(unit_id)
    except ValidationError as exc:
        detail, _, check = explain(exc, "unit_id")
        return detail, "unit_id", check
    try:
        reading = Reading.model_validate(item)
    except ValidationError as exc:
        return explain(exc, "reading")
    if now_ms is not None and reading.ts_ms > now_ms + MAX_AHEAD_MS:
        return ahead_detail(reading.ts_ms, now_ms), "ts", "ts_in_future"
    return None


def ahead_detail(ts_ms: int, now_ms: int) -> str:
    """Why a reading at ``ts_ms`` is refused at ``now_ms`` (both epoch ms) as ``ts_in_future``."""
    return (
        f"ts: {_utc(ts_ms)} is {(ts_ms - now_ms) / 3_600_000:.1f} h ahead of the receiving clock "
        f"({_utc(now_ms)}; at most {MAX_AHEAD_MS // 60_000} min): the meter's clock or time zone is wrong"
    )


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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

    * ``ts``: an integer in range is taken natively, anything else goes to ``parse_ts_ms`` (which
      ``Reading._to_epoch_ms`` calls for every ``ts``);
    * ``event`` and ``old_value`` must be missing or null: a meter swap is left to the model, and
      with it ``_swap_has_old_value``, which holds for every other reading; likewise ``start``.
    """

    def text(longest: int) -> cs.ModelField:
        return cs.model_field(cs.str_schema(min_length=1, max_length=longest, pattern=TEXT_PATTERN))

    def absent(alias: str | None = None) -> cs.ModelField:
        return cs.model_field(
            cs.with_default_schema(cs.none_schema(), default=None), validation_alias=alias
        )

    reading_fields = {
        "meter_id": text(128),
        "energy": text(64),
        "kind": cs.model_field(cs.literal_schema(["cumulative", "interval", "rate"])),
        "value": cs.model_field(
            cs.float_schema(allow_inf_nan=False, strict=True, ge=-MAX_VALUE, le=MAX_VALUE)
        ),
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
        "v": cs.typed_dict_field(cs.chain_schema([cs.int_schema(strict=True), cs.literal_schema([1])])),
        "unit_id": cs.typed_dict_field(cs.str_schema(min_length=1, max_length=64, pattern=TEXT_PATTERN)),
        "source": cs.typed_dict_field(cs.str_schema(min_length=1, max_length=128, pattern=TEXT_PATTERN)),
        "seq": cs.typed_dict_field(cs.int_schema(ge=0, strict=True)),
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
