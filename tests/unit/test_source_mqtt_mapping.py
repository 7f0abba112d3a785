"""MQTT payload mapping without a broker: topic levels, paths, timestamps and each rejection rule."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from collectors.sources.mqtt.config import JsonSubscription, Subscription
from collectors.sources.mqtt.mapping import PayloadMapper, ts_ms, wildcard_levels

NOW_S = 1_767_225_600.0


def mapper(**sub: Any) -> PayloadMapper:
    doc = {
        "topic": "p/+/m/#",
        "format": "json",
        "unit_id": "{1}",
        "meter_id": "{2}",
        "energy": "electricity",
        "uom": "kWh",
        "value": "v",
        **sub,
    }
    return PayloadMapper([TypeAdapter(Subscription).validate_python(doc)], lambda: NOW_S)


def rules(m: PayloadMapper, payload: bytes, topic: str = "p/U1/m/EL01") -> list[str]:
    readings, rejections = m.map(topic, payload)
    assert readings == []
    return [r.rule for r in rejections]


def test_wildcard_levels_gives_plus_levels_and_the_rest_for_hash() -> None:
    assert wildcard_levels("p/+/m/#", "p/U1/m/EL01/a") == ["U1", "EL01/a"]


def test_placeholders_fill_unit_and_meter_and_clock_stamps() -> None:
    readings, rejections = mapper().map("p/U1/m/EL01", b'{"v": 7}')
    assert rejections == []
    assert [(r.unit_id, r.meter_id, r.value, r.ts_ms) for r in readings] == [
        ("U1", "EL01", 7.0, 1_767_225_600_000)
    ]


def test_topic_not_matching_gives_nothing() -> None:
    assert mapper().map("other/U1", b"not json") == ([], [])


@pytest.mark.parametrize(
    ("payload", "rule"),
    [
        (b"v=7", "not_json"),
        (b'{"w": 7}', "missing_field"),
        (b'{"v": "seven"}', "not_a_number"),
        (b'{"v": true}', "not_a_number"),
        (b'{"v": "inf"}', "not_a_number"),
    ],
)
def test_bad_payload_is_rejected_with_its_rule(payload: bytes, rule: str) -> None:
    assert rules(mapper(), payload) == [rule]


def test_bad_timestamp_is_rejected_as_bad_ts() -> None:
    assert rules(mapper(ts="t", ts_format="iso8601"), b'{"v": 1, "t": "2026-01-01T00:00:00"}') == ["bad_ts"]
    assert rules(mapper(ts="t", ts_format="epoch_ms"), b'{"v": 1, "t": 12}') == ["bad_ts"]


def test_too_long_topic_level_is_rejected_as_bad_topic_level() -> None:
    assert rules(mapper(), b'{"v": 1}', topic="p/" + "U" * 65 + "/m/EL01") == ["bad_topic_level"]


def test_readings_message_that_is_not_one_is_rejected_whole() -> None:
    m = PayloadMapper(
        [TypeAdapter(Subscription).validate_python({"topic": "g/#", "format": "readings_message"})],
        lambda: NOW_S,
    )
    assert rules(m, b'{"v": 1}', topic="g/x") == ["bad_envelope"]


@pytest.mark.parametrize(
    ("raw", "fmt", "expected"),
    [
        (1767225600123, "epoch_ms", 1767225600123),
        (1767225600.5, "epoch_s", 1767225600500),
        ("1767225600", "epoch_s", 1767225600000),
        ("2026-01-01T08:00:00+08:00", "iso8601", 1767225600000),
    ],
)
def test_ts_formats(raw: Any, fmt: Any, expected: int) -> None:
    assert ts_ms(raw, fmt, "t") == expected


def test_placeholder_beyond_the_topic_wildcards_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match=r"meter_id: \{3\}"):
        JsonSubscription.model_validate(
            {
                "topic": "p/+/m/+",
                "format": "json",
                "unit_id": "U",
                "meter_id": "{3}",
                "energy": "electricity",
                "uom": "kWh",
                "value": "v",
            }
        )


def test_invalid_topic_pattern_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="Invalid wildcard"):
        TypeAdapter(Subscription).validate_python({"topic": "a/#/b", "format": "readings_message"})
