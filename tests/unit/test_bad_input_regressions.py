"""One test per bug the bad-input work found in the readings message and the worker's batch step (the
property tests in tests/property/ found most of them; these name each one and fail without its fix).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from energy.accounting import Accountant
from energy.ledger import LedgerPolicy
from energy.output import parse_output
from energy.registry import UnitInfo
from energy.schema import MessageRejected, Rejection, parse_message
from streams.processor import BatchProcessor
from streams.state import UnitStateStore

NOW = 1_772_416_800_000  # 2026-03-02T02:00:00Z
GOOD = {"meter_id": "E1", "energy": "electricity", "kind": "interval", "value": 2.5, "uom": "kWh", "ts": NOW}
INFO = UnitInfo(unit_id="U1", name="U1", region="江苏", grid_region="华东", industry="steel")


def message(*readings: Any, **envelope: Any) -> bytes:
    return orjson.dumps(
        {"v": 1, "unit_id": "U1", "source": "s", "seq": 1, "readings": list(readings), **envelope}
    )


def nested(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


def process(*raws: bytes) -> tuple[list[dict[str, Any]], list[str]]:
    """Dead letters and ``energy`` lines of one batch (a fresh worker)."""
    out = BatchProcessor(Accountant(), LedgerPolicy(lateness_ms=7_200_000)).process(
        list(raws), UnitStateStore({}), lambda unit_id: INFO
    )
    return [orjson.loads(v) for _k, v in out.rejected], [
        line for line in out.lines if line.startswith("energy,")
    ]


@pytest.mark.parametrize("depth", [254, 300, 1000])
def test_a_reading_nested_deeper_than_the_encoder_goes_is_a_dead_letter_not_a_crash(depth: int) -> None:
    """The dead letter's orjson.dumps raised TypeError (255 levels) out of the batch: the agent died and
    the message came back after every restart."""
    raw = message(GOOD)[:-2] + b"," + nested(depth) + b"]}"
    letters, points = process(raw)
    assert [(d["rule"], d["check"]) for d in letters] == [("bad_reading", "not_object")]
    assert len(points) == 1


def test_an_envelope_with_a_deeply_nested_value_is_a_dead_letter_not_a_crash() -> None:
    raw = message(GOOD)[:-1] + b',"x":1,"seq":' + nested(400) + b"}"
    (letter,), _points = process(raw)
    assert (letter["rule"], letter["field"], letter["unit_id"]) == ("bad_envelope", "seq", "U1")


def test_a_huge_unit_id_is_not_the_dead_letters_key_and_the_dead_letter_fits_a_kafka_message() -> None:
    """The unit id of a refused message was taken as it came: a 500,000-character key, and a dead
    letter of the whole message beside it, over Kafka's 1 MB."""
    with pytest.raises(MessageRejected) as refused:
        parse_message(message(*[GOOD] * 5000, unit_id="U" * 500_000))
    rejection = refused.value.rejection
    assert rejection.unit_id is None and rejection.field == "unit_id" and rejection.check == "too_long"
    assert len(rejection.to_json()) < 300_000


@pytest.mark.parametrize("meter_id", ["E1\\", "\\\\", "E\x00", "E\n1", "\u202eE1", "E1\u200b", " E1", "E1 "])
def test_an_id_influxdb_cannot_store_or_that_hides_characters_is_refused(meter_id: str) -> None:
    """A meter id ending in a backslash made InfluxDB 1.x refuse the line ("invalid tag format"): the
    reading was counted in the unit's totals and its point silently lost with the batch's lines."""
    letters, points = process(message(dict(GOOD, meter_id=meter_id), dict(GOOD, meter_id="E2")))
    assert [(d["rule"], d["field"], d["check"]) for d in letters] == [("bad_reading", "meter_id", "bad_text")]
    assert len(points) == 1 and "meter_id=E2" in points[0]


@pytest.mark.parametrize(
    ("field", "value"), [("value", True), ("value", "12.5"), ("value", "NaN"), ("seq", "7")]
)
def test_a_number_of_the_wrong_type_is_refused_not_converted(field: str, value: Any) -> None:
    """``true`` was taken as 1.0 kWh and ``"12.5"`` as 12.5: the message's types are JSON's."""
    raw = message(dict(GOOD, value=value)) if field == "value" else message(GOOD, seq=value)
    letters, points = process(raw)
    assert [(d["field"], d["check"]) for d in letters] == [(field, "wrong_type")] and not points


@pytest.mark.parametrize("v", [True, 1.0])
def test_v_must_be_the_integer_1(v: Any) -> None:
    with pytest.raises(MessageRejected) as refused:
        parse_message(message(GOOD, v=v))
    assert (refused.value.rejection.field, refused.value.rejection.check) == ("v", "wrong_type")


def test_an_absurd_value_is_refused() -> None:
    letters, _points = process(message(dict(GOOD, value=1e300), dict(GOOD, meter_id="E2", value=-1e16)))
    assert [(d["field"], d["check"]) for d in letters] == [("value", "out_of_range")] * 2


def test_a_reading_from_the_future_is_refused_and_does_not_make_the_units_real_readings_late() -> None:
    """A meter clock in 2099 moved the unit's newest time there: every real reading after it was
    refused as too_late, for good."""
    future = dict(GOOD, meter_id="E9", ts="2099-01-01T00:00:00+08:00")
    letters, points = process(message(future), message(GOOD))
    assert [(d["rule"], d["check"]) for d in letters] == [("bad_reading", "ts_in_future")]
    assert len(points) == 1


def test_an_interval_start_over_a_month_before_ts_is_refused() -> None:
    """A start 20 years before ts spread one reading over 700,000 intervals: as many points, in one
    batch."""
    letters, points = process(message(dict(GOOD, start=NOW - 20 * 365 * 86_400_000)))
    assert [(d["rule"], d["check"]) for d in letters] == [("bad_reading", "bad_start")] and not points


def test_a_rejection_of_text_with_lone_surrogates_encodes() -> None:
    """parse_message of a str kept its lone surrogates in the not_json payload; to_json raised."""
    with pytest.raises(MessageRejected) as refused:
        parse_message('{"v": 1, "unit_id": "\ud800"')
    assert orjson.loads(refused.value.rejection.to_json())["rule"] == "not_json"


def test_every_rejection_is_bounded_whoever_makes_it() -> None:
    rejection = Rejection("too_late", "d" * 10_000, "U1", {"x": "y" * 2_000_000})
    assert len(rejection.detail) == 500 and isinstance(rejection.payload, str)
    assert len(rejection.to_json()) < 10_000


def test_an_output_item_of_the_wrong_type_or_absurd_is_refused() -> None:
    doc = {"v": 1, "unit_id": "U1", "source": "erp", "seq": 1, "outputs": [
        {"ts": NOW, "value_10k_yuan": True},
        {"ts": NOW, "product_id": "p\\", "quantity": 1.0},
        {"ts": NOW, "value_10k_yuan": 1e300},
        {"ts": NOW, "value_10k_yuan": 12.5},
    ]}  # fmt: skip
    parsed = parse_output(doc)
    assert [(r.field, r.check) for r in parsed.rejections] == [
        ("value_10k_yuan", "wrong_type"),
        ("product_id", "bad_text"),
        ("value_10k_yuan", "out_of_range"),
    ]
    assert [i.value_10k_yuan for i in parsed.items] == [12.5]
