"""Bad input at the `readings` door (hypothesis, derandomized): ``energy.schema.parse_message``, the
output message (``energy.output.parse_output``) and the worker's batch step
(``streams.processor.BatchProcessor``, with the real kernel behind it).

Every bad case is refused with the rule, field and check it was built to break (tests/property/
bad_input.py says which), nothing else is ever raised, nothing bad is taken as a reading, the good
readings beside a bad one go on, and every dead letter encodes to JSON that fits a Kafka message.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from energy.accounting import Accountant
from energy.ledger import LedgerPolicy
from energy.output import parse_output
from energy.registry import UnitInfo
from energy.schema import CHECKS, MAX_PAYLOAD_BYTES, MessageRejected, Rejection, parse_message
from streams.processor import BatchProcessor
from streams.state import UnitStateStore
from tests.property.bad_input import (
    GOOD_TS,
    NOT_NUMBER,
    NOT_TEXT,
    NOW_MS,
    TS_MALFORMED,
    TS_TOO_EARLY,
    TS_TOO_LATE,
    UNIT_ID,
    Case,
    Expect,
    bad_messages,
    bad_text,
    deep,
    dumps,
    envelope,
    expect,
    ledger_cases,
    match,
    messages_with_bad_readings,
    profile,
)

#: Kafka's default largest message (1 MB) less room for the record's key and headers.
KAFKA_MAX = 1_000_000
ACCOUNTANT = Accountant()
POLICY = LedgerPolicy(lateness_ms=7_200_000)
INFO = UnitInfo(
    unit_id=UNIT_ID, name="苏州某钢铁有限公司", region="江苏", grid_region="华东", industry="steel"
)


def dead_letter(r: Rejection, why: Expect) -> dict[str, Any]:
    """The dead letter of ``r``, checked against what was expected of it."""
    raw = r.to_json()
    assert len(raw) < KAFKA_MAX
    record: dict[str, Any] = orjson.loads(raw)
    assert record["rule"] == why.rule, (record, why)
    assert record["detail"] and len(record["detail"]) <= 500
    assert record.get("field") == why.field, (record, why)
    if why.checks:
        assert record.get("check") in why.checks, (record, why)
    assert record.get("check") is None or record["check"] in CHECKS
    payload = orjson.dumps(record["payload"])
    assert len(payload) <= MAX_PAYLOAD_BYTES or isinstance(record["payload"], str)
    return record


def whole_unit(case: Case) -> str | None:
    """The unit id a message refused whole must be keyed by: ours, unless that is what is wrong."""
    assert case.whole is not None
    if case.whole.rule == "not_json" or case.whole.field in (None, "unit_id"):
        return None
    return UNIT_ID


@profile(2500)
@given(bad_messages())
def test_a_bad_message_is_refused_whole_by_its_rule(case: Case) -> None:
    assert case.whole is not None
    with pytest.raises(MessageRejected) as refused:
        parse_message(case.raw, NOW_MS)
    record = dead_letter(refused.value.rejection, case.whole)
    assert record["unit_id"] == whole_unit(case)


@profile(2500)
@given(messages_with_bad_readings())
def test_bad_readings_are_refused_alone_and_their_siblings_go_on(case: Case) -> None:
    parsed = parse_message(case.raw, NOW_MS)
    assert [r.meter_id for r in parsed.readings] == case.good_meter_ids
    for r, why in match(case.bad_expectations, parsed.rejections):
        assert dead_letter(r, why)["unit_id"] == UNIT_ID


@profile(1000)
@given(ledger_cases())
def test_the_worker_step_refuses_bad_readings_by_their_rule_and_writes_the_good_ones(case: Case) -> None:
    out = BatchProcessor(ACCOUNTANT, POLICY).process([case.raw], UnitStateStore({}), lambda unit_id: INFO)
    records = [orjson.loads(value) for _key, value in out.rejected]
    assert sorted(r["rule"] for r in records) == sorted(e.rule for e in case.bad_expectations)
    assert all(key == UNIT_ID for key, _value in out.rejected)
    assert out.accepted == len(case.good_meter_ids)
    assert out.energy_points == len(case.good_meter_ids)
    written = {line.split("meter_id=")[1].split(",")[0] for line in out.lines if line.startswith("energy,")}
    assert written == set(case.good_meter_ids)


@profile(400)
@given(bad_messages())
def test_the_worker_step_turns_a_bad_message_into_one_dead_letter(case: Case) -> None:
    assert case.whole is not None
    out = BatchProcessor(ACCOUNTANT, POLICY).process([case.raw], UnitStateStore({}), lambda unit_id: INFO)
    ((key, value),) = out.rejected
    record = orjson.loads(value)
    assert record["rule"] == case.whole.rule and (key or None) == whole_unit(case)
    assert out.accepted == 0 and not [line for line in out.lines if line.startswith("energy,")]


# --- the output message ------------------------------------------------------------------------------

GOOD_ITEM = {"ts": NOW_MS - 86_400_000, "product_id": "clinker", "quantity": 5200.0, "value_10k_yuan": 1480.5}


@st.composite
def bad_items(draw: st.DrawFn) -> tuple[Any, Expect]:
    """An output item with one defect and how it must be refused (rule ``bad_output``)."""
    item = dict(GOOD_ITEM, ts=draw(GOOD_TS))
    how = draw(st.integers(min_value=0, max_value=8))
    if how == 0:
        name = draw(st.sampled_from(["quantity", "value_10k_yuan"]))
        item[name] = draw(NOT_NUMBER.filter(lambda v: v is not None))
        return item, expect("bad_output", name, "wrong_type")
    if how == 1:
        name = draw(st.sampled_from(["quantity", "value_10k_yuan"]))
        item[name] = draw(
            st.floats(max_value=-1e-300, allow_infinity=False)
            | st.floats(min_value=1.0000001e15, max_value=1e308)
        )
        return item, expect("bad_output", name, "out_of_range")
    if how == 2:
        item["ts"] = draw(TS_MALFORMED)
        return item, expect("bad_output", "ts", "bad_ts")
    if how == 3:
        item["ts"] = draw(TS_TOO_EARLY | TS_TOO_LATE)
        return item, expect("bad_output", "ts", "ts_out_of_range")
    if how == 4:
        item["product_id"] = draw(bad_text(64))
        return item, expect("bad_output", "product_id", "bad_text")
    if how == 5:
        item["product_id"] = draw(NOT_TEXT.filter(lambda v: v is not None))
        return item, expect("bad_output", "product_id", "wrong_type")
    if how == 6:
        del item["quantity"], item["value_10k_yuan"]
        return item, expect("bad_output", None, "missing")
    if how == 7:
        del item["product_id"], item["value_10k_yuan"]
        return item, expect("bad_output", None, "missing")
    return draw(
        st.one_of(
            st.none(), st.integers(-(2**63), 2**63), st.text(max_size=5), st.integers(1, 1000).map(deep)
        )
    ), expect("bad_output", None, "not_object")


@profile(800)
@given(st.lists(bad_items(), min_size=1, max_size=3), st.integers(min_value=0, max_value=3))
def test_bad_output_items_are_refused_alone(bads: list[tuple[Any, Expect]], goods: int) -> None:
    items = [dict(GOOD_ITEM, product_id=f"p{i}") for i in range(goods)] + [item for item, _ in bads]
    doc = orjson.loads(dumps({"v": 1, "unit_id": UNIT_ID, "source": "erp", "seq": 1, "outputs": items}))
    parsed = parse_output(doc)
    assert [i.product_id for i in parsed.items] == [f"p{i}" for i in range(goods)]
    assert len(parsed.rejections) == len(bads)
    for r, (_item, why) in zip(parsed.rejections, bads, strict=True):
        assert dead_letter(r, why)["unit_id"] == UNIT_ID


def as_output_message(case: Case) -> bool:
    """Whether ``case`` is a JSON object refused for its envelope (then it can be made an output
    message: its readings become output items)."""
    if case.whole is None or case.whole.rule != "bad_envelope":
        return False
    return isinstance(orjson.loads(case.raw), dict)


@profile(400)
@given(bad_messages().filter(as_output_message))
def test_a_bad_output_envelope_is_refused_whole(case: Case) -> None:
    assert case.whole is not None
    doc = orjson.loads(case.raw)
    if "readings" in doc:
        readings = doc.pop("readings")
        doc["outputs"] = [GOOD_ITEM] * len(readings) if isinstance(readings, list) else readings
    field = "outputs" if case.whole.field == "readings" else case.whole.field
    with pytest.raises(MessageRejected) as refused:
        parse_output(doc)
    record = dead_letter(refused.value.rejection, Expect("bad_envelope", field, case.whole.checks))
    assert record["unit_id"] == whole_unit(case)


# --- huge messages (written out: a few, as each costs milliseconds) ------------------------------------

BIG_READING = {
    "meter_id": "E1",
    "energy": "electricity",
    "kind": "cumulative",
    "value": 1.5,
    "uom": "kWh",
    "ts": NOW_MS - 60_000,
}
HUGE: list[tuple[str, bytes, Expect]] = [
    (
        "10,001 readings",
        dumps(envelope([BIG_READING] * 10_001)),
        expect("bad_envelope", "readings", "too_long"),
    ),
    (
        "a unit id of 500,000 characters",
        dumps(envelope([BIG_READING], unit_id="U" * 500_000)),
        expect("bad_envelope", "unit_id", "too_long"),
    ),
    ("5,000 levels deep", b'{"v":1,"seq":' + b"[" * 5000 + b"]" * 5000 + b"}", expect("not_json", None)),
    ("a 900 kB number", b'{"v":1,"seq":' + b"9" * 900_000 + b"}", expect("not_json", None)),
]


@pytest.mark.parametrize(
    ("raw", "why"), [(raw, why) for _name, raw, why in HUGE], ids=[n for n, _r, _w in HUGE]
)
def test_a_huge_bad_message_is_refused_whole_in_a_dead_letter_that_fits(raw: bytes, why: Expect) -> None:
    with pytest.raises(MessageRejected) as refused:
        parse_message(raw, NOW_MS)
    dead_letter(refused.value.rejection, why)


def test_a_huge_bad_reading_is_refused_alone_and_its_siblings_go_on() -> None:
    huge = dict(BIG_READING, meter_id="x" * 900_000)
    parsed = parse_message(dumps(envelope([BIG_READING, huge])), NOW_MS)
    assert [r.meter_id for r in parsed.readings] == ["E1"]
    (refused,) = parsed.rejections
    assert isinstance(dead_letter(refused, expect("bad_reading", "meter_id", "too_long"))["payload"], str)


def test_ten_thousand_bad_readings_give_ten_thousand_small_dead_letters() -> None:
    parsed = parse_message(dumps(envelope([dict(BIG_READING, value="NaN")] * 10_000)), NOW_MS)
    assert not parsed.readings and len(parsed.rejections) == 10_000
    assert {len(r.to_json()) < 1_000 for r in parsed.rejections} == {True}
