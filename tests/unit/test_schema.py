"""The readings message: what is accepted, what is rejected whole, what is rejected alone."""

import orjson
import pytest

from energy.schema import MessageRejected, parse_message, parse_ts_ms


def message(**overrides: object) -> bytes:
    doc = {
        "v": 1,
        "unit_id": "U1",
        "source": "test",
        "seq": 7,
        "readings": [
            {"meter_id": "E1", "energy": "electricity", "kind": "cumulative", "value": 12.5,
             "uom": "kWh", "ts": "2025-03-03T10:00:00+08:00"},
        ],
    }
    doc.update(overrides)
    return orjson.dumps(doc)


def test_valid_message_parses_with_ts_in_epoch_ms_utc() -> None:
    parsed = parse_message(message())
    assert parsed.unit_id == "U1" and parsed.seq == 7 and not parsed.rejections
    (r,) = parsed.readings
    assert r.ts_ms == 1_740_967_200_000  # 2025-03-03T02:00:00Z
    assert r.quality == "good"


def test_iso_and_epoch_ms_give_the_same_instant() -> None:
    assert parse_ts_ms("2025-03-03T10:00:00+08:00") == parse_ts_ms(1_740_967_200_000)
    assert parse_ts_ms("2025-03-03T02:00:00Z") == 1_740_967_200_000


@pytest.mark.parametrize("ts", ["2025-03-03T10:00:00", "yesterday", True, 1.5, "1999-12-31T23:59:59Z"])
def test_bad_timestamps_are_refused(ts: object) -> None:
    with pytest.raises(ValueError):
        parse_ts_ms(ts)


def test_not_json_is_rejected_whole() -> None:
    with pytest.raises(MessageRejected) as info:
        parse_message(b"this is not json")
    assert info.value.rejection.rule == "not_json"


@pytest.mark.parametrize(
    "overrides",
    [{"v": 2}, {"unit_id": ""}, {"readings": []}, {"seq": -1}, {"source": None}],
)
def test_broken_envelope_is_rejected_whole(overrides: dict[str, object]) -> None:
    with pytest.raises(MessageRejected) as info:
        parse_message(message(**overrides))
    assert info.value.rejection.rule == "bad_envelope"


def test_an_invalid_reading_is_rejected_alone_and_its_siblings_go_on() -> None:
    good = {"meter_id": "G1", "energy": "natural_gas", "kind": "interval", "value": 3,
            "uom": "m³", "ts": 1_740_967_200_000}
    bad = {"meter_id": "E1", "energy": "electricity", "kind": "cumulative", "uom": "kWh",
           "ts": 1_740_967_200_000}
    parsed = parse_message(message(readings=[bad, good]))
    assert [r.meter_id for r in parsed.readings] == ["G1"]
    (rejection,) = parsed.rejections
    assert rejection.rule == "bad_reading" and "value" in rejection.detail
    assert rejection.unit_id == "U1" and rejection.payload == bad


def test_non_finite_values_are_refused() -> None:
    reading = {"meter_id": "E1", "energy": "electricity", "kind": "interval", "value": "NaN",
               "uom": "kWh", "ts": 1_740_967_200_000}
    parsed = parse_message(message(readings=[reading]))
    assert not parsed.readings and parsed.rejections[0].rule == "bad_reading"


def test_a_timestamp_that_overflows_is_a_bad_reading_not_a_crash() -> None:
    reading = {"meter_id": "E1", "energy": "electricity", "kind": "interval", "value": 1.0,
               "uom": "kWh", "ts": "0001-01-01T00:00:00+01:00"}
    parsed = parse_message(message(readings=[reading]))
    assert not parsed.readings and [r.rule for r in parsed.rejections] == ["bad_reading"]
