"""MQTT payloads to readings, without a broker: which subscriptions a topic matches, the
readings-message and JSON formats, ``{n}`` placeholders, field paths and timestamps.
Everything wrong with a payload becomes a :class:`~energy.schema.Rejection` naming its rule, and a
reading is only passed on when the stream would take it (the readings message's rules, and a ``ts``
at most an hour ahead of the collector's clock): what the stream would refuse is refused here,
where the site sees it."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from aiomqtt import Topic
from pydantic import ValidationError

from collectors.sources.base import MeterPoint, SourceReading
from collectors.sources.mqtt.config import PLACEHOLDER, JsonSubscription, MessageSubscription, TsFormat
from collectors.sources.push import source_readings
from energy.schema import (
    MessageRejected,
    Rejection,
    first_error,
    parse_message,
    parse_ts_ms,
    reading_problem,
)


class PayloadError(ValueError):
    """A payload (or one field of it) that cannot be used; ``rule`` as in :class:`Rejection`."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.rule = rule


def wildcard_levels(pattern: str, topic: str) -> list[str]:
    """The levels of ``topic`` that the ``+`` / ``#`` levels of ``pattern`` matched, in order
    (``#`` gives the rest of the topic, slashes included). ``topic`` must match ``pattern``."""
    levels = topic.split("/")
    out = []
    for i, level in enumerate(pattern.split("/")):
        if level == "#":
            out.append("/".join(levels[i:]))
        elif level == "+":
            out.append(levels[i])
    return out


def fill(template: str, levels: Sequence[str]) -> str:
    """``template`` with each ``{n}`` replaced by ``levels[n - 1]``."""
    return PLACEHOLDER.sub(lambda m: levels[int(m.group(1)) - 1], template)


def lookup(doc: Any, path: str) -> Any:
    """The value at a dotted ``path`` (list items by index); PayloadError ``missing_field``."""
    here = doc
    for part in path.removeprefix("$.").split("."):
        if isinstance(here, dict) and part in here:
            here = here[part]
        elif isinstance(here, list) and part.isdigit() and int(part) < len(here):
            here = here[int(part)]
        else:
            raise PayloadError("missing_field", f"no {path!r} in the payload")
    return here


def number(raw: Any, path: str) -> float:
    """A JSON number, or a string holding one, as a finite float; PayloadError ``not_a_number``."""
    if isinstance(raw, int | float | str) and not isinstance(raw, bool):
        try:
            value = float(raw)
        except ValueError:
            pass
        else:
            if math.isfinite(value):
                return value
    raise PayloadError("not_a_number", f"{path}: {raw!r} is not a finite number")


def ts_ms(raw: Any, fmt: TsFormat, path: str) -> int:
    """A payload's timestamp in ``fmt`` as epoch ms (2000..2100, as the readings message allows);
    PayloadError ``bad_ts``."""
    try:
        if fmt == "iso8601":
            if not isinstance(raw, str):
                raise ValueError(f"{raw!r} is not an ISO-8601 string")
            return parse_ts_ms(raw)
        return parse_ts_ms(round(number(raw, path) * (1000 if fmt == "epoch_s" else 1)))
    except (ValueError, OverflowError) as exc:  # OverflowError: epoch_s beyond 1.8e305 (× 1000 = inf)
        raise PayloadError("bad_ts", f"{path}: {exc}") from None


def json_reading(sub: JsonSubscription, topic: str, doc: Any, now_ms: int) -> SourceReading:
    """The reading ``sub`` maps ``doc`` (a decoded JSON payload on ``topic``) to, stamped ``now_ms``
    (the collector's clock, epoch ms) when ``sub.ts`` is not set. Raises PayloadError (``bad_reading``
    for what the stream would refuse)."""
    value = number(lookup(doc, sub.value), sub.value)
    at = now_ms if sub.ts is None else ts_ms(lookup(doc, sub.ts), sub.ts_format, sub.ts)
    reading = topic_point(sub, topic).reading(value, at)
    problem = reading_problem(reading.unit_id, reading.to_message_reading(), now_ms)
    if problem is not None:
        raise PayloadError("bad_reading", problem[0])
    return reading


def topic_point(sub: JsonSubscription, topic: str) -> MeterPoint:
    """``sub``'s meter point with its ``{n}`` placeholders filled from ``topic``; PayloadError
    ``bad_topic_level`` when a filled id is not a valid one (too long)."""
    point = sub.point
    if not sub.wildcards:
        return point
    levels = wildcard_levels(sub.topic, topic)
    filled = {"unit_id": fill(point.unit_id, levels), "meter_id": fill(point.meter_id, levels)}
    try:
        return MeterPoint.model_validate({**point.model_dump(), **filled})
    except ValidationError as exc:
        raise PayloadError("bad_topic_level", f"topic {topic!r}: {first_error(exc)}") from None


class PayloadMapper:
    """Maps one received payload to readings with every subscription whose pattern its topic
    matches (so two subscriptions on one topic read two values of one payload)."""

    def __init__(
        self, subscriptions: Sequence[MessageSubscription | JsonSubscription], clock: Callable[[], float]
    ) -> None:
        self._subs = list(subscriptions)
        self._clock = clock

    @property
    def topic_filters(self) -> list[str]:
        """The distinct patterns to subscribe to, in config order."""
        return list(dict.fromkeys(s.topic for s in self._subs))

    def map(self, topic: str, payload: bytes) -> tuple[list[SourceReading], list[Rejection]]:
        """The payload's readings and rejections (a payload no subscription matches gives neither)."""
        readings: list[SourceReading] = []
        rejections: list[Rejection] = []
        now_ms = round(self._clock() * 1000)
        doc: Any = None
        received = Topic(topic)
        for sub in self._subs:
            if not received.matches(sub.topic):
                continue
            try:
                if isinstance(sub, MessageSubscription):
                    got, rejected = source_readings(parse_message(payload, now_ms))
                    readings += got
                    rejections += rejected
                    continue
                if doc is None:
                    doc = _decode(payload)
                readings.append(json_reading(sub, topic, doc, now_ms))
            except MessageRejected as exc:
                rejections.append(exc.rejection)
            except PayloadError as exc:
                rejections.append(Rejection(exc.rule, str(exc), None, _preview(payload)))
        return readings, rejections


def _decode(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PayloadError("not_json", f"payload is not JSON: {exc}") from None


def _preview(payload: bytes) -> str:
    return payload[:200].decode("utf-8", "replace")
