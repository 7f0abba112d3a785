"""The kernel's fast paths give exactly what the rules they shortcut give (hypothesis).

* ``schema.parse_message``: one pydantic-core call per plain message (``_PLAIN_MESSAGE``) instead of
  the models reading by reading: the same readings (values, fields set, type), the same rejections
  with the same messages, the same whole-message refusals;
* ``counters.plain_update``: the plain reading without a ``CounterUpdate``: the same state and the
  same segment as ``counter_update``, and nothing changed when it declines;
* ``UnitLedger.apply``: with ``plain_update`` on and off, the same points, totals, rejections,
  alerts, events and ledger.
(The line-protocol encoders are held to the plain encoder in tests/unit/test_line_protocol_encoders.py.)
"""

from __future__ import annotations

import copy
from typing import Any
from unittest import mock

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from energy import ledger as ledger_module
from energy.accounting import Accountant
from energy.counters import (
    NO_LIMITS,
    CounterLimits,
    CounterRejected,
    CounterUpdate,
    MeterState,
    Segment,
    counter_update,
    plain_update,
)
from energy.ledger import LedgerPolicy, LedgerResult, UnitLedger
from energy.registry import UnitInfo
from energy.schema import (
    Envelope,
    MessageRejected,
    ParsedMessage,
    Reading,
    Rejection,
    _text,
    parse_message,
    unit_id_of,
    validation_rejection,
)

MIN = 60_000
HOUR = 60 * MIN
T0 = 1_767_542_400_000 - 8 * HOUR  # 2026-01-05 00:00 China time: a midnight nearby
FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- schema ---------------------------------------------------------------------------------------


def models_parse(raw: bytes) -> ParsedMessage:
    """parse_message as it was before the fast path: the models, reading by reading."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MessageRejected(Rejection("not_json", f"message is not JSON: {exc}", None, _text(raw))) from exc
    if not isinstance(doc, dict):
        raise MessageRejected(
            Rejection("bad_envelope", "message is not a JSON object", None, doc, None, "not_object")
        )
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


def outcome(parse: Any, raw: bytes) -> tuple[Any, ...]:
    """Everything a parse gives, in comparable form (readings with their fields set and order)."""
    try:
        msg = parse(raw)
    except MessageRejected as exc:
        r = exc.rejection
        return ("rejected", r.rule, r.detail, r.unit_id, orjson.dumps(r.payload, default=str))
    except Exception as exc:  # an error escaping parse_message (e.g. OverflowError) must be the same
        return ("raised", type(exc).__name__, str(exc))
    readings = [(type(r), repr(r), r, sorted(r.model_fields_set), r.__pydantic_extra__) for r in msg.readings]
    return ("parsed", msg.unit_id, msg.source, msg.seq, readings, msg.rejections)


_MISSING = object()
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
json_int = st.integers(min_value=-(2**63), max_value=2**64 - 1)
json_float = st.floats(allow_nan=False, allow_infinity=False)
anything = st.one_of(st.none(), st.booleans(), json_int, json_float, text, st.lists(json_int, max_size=2))
TS_MIN, TS_MAX = 946_684_800_000, 4_102_444_800_000

USUAL_READING = {
    "meter_id": "E1", "energy": "electricity", "kind": "cumulative", "value": 1234.5, "uom": "kWh", "ts": T0,
}  # fmt: skip
# Values on and around the edges of every rule of a reading and of the envelope.
READING_EDGES: dict[str, list[Any]] = {
    "meter_id": ["", "m", "m" * 128, "m" * 129, "江" * 128, "江" * 129, "😀", None, 1, ["E1"]],
    "energy": ["", "e" * 64, "e" * 65, "natural_gas", "unobtainium", None, 1.5],
    "kind": ["cumulative", "interval", "rate", "RATE", "", None, 1, True],
    "value": [0, 1, -1, 0.0, -0.0, 1.5, 1e308, -1e308, 2**53, 2**53 + 1, 2**63, 2**64 - 1, -(2**63), True,
              False, "1.5", " 2 ", "NaN", "inf", "-Infinity", "1e400", "x", "", None, [1]],
    "uom": ["", "u", "u" * 16, "u" * 17, "MWh", "度", None, 3],
    "ts": [TS_MIN - 1, TS_MIN, TS_MAX - 1, TS_MAX, 0, -1, 2**63, 2**64 - 1, True, False, None, 1.7e12,
           1.7e12 + 0.5, float(T0), str(T0), "2026-01-05T08:00:00+08:00", "2026-01-05T00:00:00Z",
           "2026-01-05T08:00:00", "yesterday", "", "1999-12-31T23:59:59Z", "2000-01-01T00:00:00Z",
           "2099-12-31T23:59:59.999Z", "2100-01-01T00:00:00Z", [T0]],
    "quality": ["good", "estimated", "manual", "bad", "", None, 1],
    "event": [None, "meter_swap", "swap", "", 1],
    "old_value": [None, 0, 5.5, -1.0, "5", "NaN", True, 2**53 + 1, [1]],
    "ts_ms": [T0, "x"],
    "extra": [None, {"a": 1}],
}  # fmt: skip
ENVELOPE_EDGES: dict[str, list[Any]] = {
    "v": [1, 1.0, True, 2, 0, "1", None],
    "unit_id": ["", "u", "u" * 64, "u" * 65, None, 7],
    "source": ["", "s", "s" * 128, "s" * 129, None, 7],
    "seq": [0, -1, 2**64 - 1, 1.0, 1.5, "3", True, None],
    "readings": [[], [USUAL_READING] * 10_000, [USUAL_READING] * 10_001, None, "x", {"a": 1}],
    "extra": [1],
}
# What a field of a reading may be instead of its usual value, for hypothesis.
READING_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "meter_id": st.one_of(st.sampled_from(READING_EDGES["meter_id"]), text, anything),
    "energy": st.one_of(st.sampled_from(READING_EDGES["energy"]), anything),
    "kind": st.sampled_from(READING_EDGES["kind"]),
    "value": st.one_of(json_float, json_int, st.sampled_from(READING_EDGES["value"])),
    "uom": st.one_of(st.sampled_from(READING_EDGES["uom"]), anything),
    "ts": st.one_of(
        st.sampled_from(READING_EDGES["ts"]),
        st.integers(min_value=TS_MIN - 2, max_value=TS_MAX + 2),
        st.floats(min_value=1.7e12, max_value=1.8e12),
        anything,
    ),
    "quality": st.sampled_from(READING_EDGES["quality"]),
    "event": st.sampled_from(READING_EDGES["event"]),
    "old_value": st.one_of(json_float, st.sampled_from(READING_EDGES["old_value"])),
    "ts_ms": st.sampled_from(READING_EDGES["ts_ms"]),
    "extra": anything,
}


@st.composite
def readings(draw: st.DrawFn) -> dict[str, Any]:
    """A usual reading with one to three fields changed, added or left out."""
    reading = dict(USUAL_READING)
    for name in draw(st.lists(st.sampled_from(sorted(READING_FIELDS)), min_size=1, max_size=3)):
        if draw(st.integers(min_value=0, max_value=5)) == 0:
            reading.pop(name, None)
        else:
            reading[name] = draw(READING_FIELDS[name])
    return reading


ENVELOPE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "v": st.sampled_from(ENVELOPE_EDGES["v"]),
    "unit_id": st.one_of(st.sampled_from(ENVELOPE_EDGES["unit_id"]), anything),
    "source": st.one_of(st.sampled_from(ENVELOPE_EDGES["source"]), anything),
    "seq": st.one_of(json_int, st.sampled_from(ENVELOPE_EDGES["seq"])),
    "readings": st.one_of(st.sampled_from(ENVELOPE_EDGES["readings"]), anything),
}


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """A message of usual readings and one changed one (see :func:`readings`: whether a message
    takes the fast path depends on all its readings), sometimes with one or two envelope fields
    changed, added or left out."""
    items = [
        dict(USUAL_READING, meter_id=f"E{i}") for i in range(draw(st.integers(min_value=0, max_value=3)))
    ]
    items.insert(draw(st.integers(min_value=0, max_value=len(items))), draw(readings()))
    doc: dict[str, Any] = {"v": 1, "unit_id": "U1", "source": "test", "seq": 7, "readings": items}
    if draw(st.integers(min_value=0, max_value=3)) == 0:
        for name in draw(st.lists(st.sampled_from(sorted(ENVELOPE_FIELDS)), min_size=1, max_size=2)):
            if draw(st.integers(min_value=0, max_value=4)) == 0:
                doc.pop(name, None)
            else:
                doc[name] = draw(ENVELOPE_FIELDS[name])
    return orjson.dumps(doc)


@FAST
@given(messages())
def test_parse_message_gives_what_the_models_give(raw: bytes) -> None:
    assert outcome(parse_message, raw) == outcome(models_parse, raw)


def edge_messages() -> list[bytes]:
    """A message for every edge value: in the one reading, in one of two readings, and in the envelope;
    and with every field of a reading or of the envelope left out."""
    out = []
    usual = {"v": 1, "unit_id": "U1", "source": "test", "seq": 7}
    for name, values in READING_EDGES.items():
        for value in [*values, _MISSING]:
            changed = {k: v for k, v in {**USUAL_READING, name: value}.items() if v is not _MISSING}
            out.append(orjson.dumps({**usual, "readings": [changed]}))
            out.append(orjson.dumps({**usual, "readings": [dict(USUAL_READING, meter_id="E0"), changed]}))
    for name, values in ENVELOPE_EDGES.items():
        for value in [*values, _MISSING]:
            doc = {
                k: v
                for k, v in {**usual, "readings": [USUAL_READING], name: value}.items()
                if v is not _MISSING
            }
            out.append(orjson.dumps(doc))
    swap = {**USUAL_READING, "event": "meter_swap", "old_value": 99.0}
    out.append(orjson.dumps({**usual, "readings": [swap]}))
    out.append(orjson.dumps({**usual, "readings": [dict(USUAL_READING, ts="0001-01-01T00:00:00+01:00")]}))
    return out


@pytest.mark.parametrize("raw", edge_messages())
def test_parse_message_gives_what_the_models_give_at_every_edge(raw: bytes) -> None:
    assert outcome(parse_message, raw) == outcome(models_parse, raw)


def test_the_usual_readings_take_the_fast_path_and_are_exactly_the_models() -> None:
    items = [
        {"meter_id": "E1", "energy": "electricity", "kind": "cumulative", "value": 12.5, "uom": "kWh",
         "ts": T0},
        {"meter_id": "G1", "energy": "natural_gas", "kind": "interval", "value": 3, "uom": "m³",
         "ts": "2026-01-05T08:00:00+08:00", "quality": "estimated", "event": None},
    ]  # fmt: skip
    raw = orjson.dumps({"v": 1, "unit_id": "U1", "source": "t", "seq": 1, "readings": items})
    with mock.patch.object(Reading, "model_validate", side_effect=AssertionError("slow path")):
        parsed = parse_message(raw)
    expected = [Reading.model_validate(item) for item in items]
    assert parsed.readings == expected and not parsed.rejections
    for got, want in zip(parsed.readings, expected, strict=True):
        assert type(got) is Reading and repr(got) == repr(want)
        assert got.model_fields_set == want.model_fields_set
        assert (got.__pydantic_extra__, got.__pydantic_private__) == (None, None)
        assert hash(got) == hash(want) and got.model_dump() == want.model_dump()


def test_a_message_with_a_meter_swap_or_a_bad_reading_goes_through_the_models() -> None:
    swap = {**USUAL_READING, "value": 1.0, "event": "meter_swap", "old_value": 99.0}
    bad = {**USUAL_READING, "value": 1.0, "event": "meter_swap"}  # a swap without the old register
    for items in ([swap], [swap, bad]):
        raw = orjson.dumps({"v": 1, "unit_id": "U1", "source": "t", "seq": 1, "readings": items})
        assert outcome(parse_message, raw) == outcome(models_parse, raw)
    both = orjson.dumps({"v": 1, "unit_id": "U1", "source": "t", "seq": 1, "readings": [swap, bad]})
    assert [r.rule for r in parse_message(both).rejections] == ["bad_reading"]


# --- counters -------------------------------------------------------------------------------------

limits_strategy = st.sampled_from(
    [NO_LIMITS, CounterLimits(register_max=1_000.0), CounterLimits(max_per_hour=600.0),
     CounterLimits(register_max=1_000.0, max_per_hour=6_000.0)]
)  # fmt: skip
step_strategy = st.tuples(
    st.sampled_from(["cumulative", "cumulative", "cumulative", "interval", "rate"]),  # kind (may change)
    st.sampled_from([MIN, MIN, MIN, 5 * MIN, 20 * MIN, -MIN, -7 * MIN, 0, 3 * HOUR]),  # time step
    st.one_of(st.floats(min_value=0, max_value=30), st.sampled_from([-5.0, -2_000.0, 0.0, 5_000.0])),
    st.booleans(),  # estimated
)


@FAST
@given(
    first_kind=st.sampled_from(["cumulative", "interval", "rate"]),
    limits=limits_strategy,
    steps=st.lists(step_strategy, min_size=1, max_size=40),
)
def test_plain_update_is_counter_update_for_the_readings_it_takes(
    first_kind: str, limits: CounterLimits, steps: list[tuple[str, int, float, bool]]
) -> None:
    state = MeterState(kind=first_kind, energy="electricity")
    ts, value = T0, 500.0
    for kind, dt, change, estimated in steps:
        ts += dt
        value = value + change if kind == "cumulative" else abs(change)
        full = copy.deepcopy(state)
        try:
            expected: CounterUpdate | str = counter_update(
                full, kind, ts, value, limits=limits, retention_ms=HOUR, estimated=estimated
            )
        except CounterRejected as exc:
            expected = exc.rule
        fast = copy.deepcopy(state)
        plain = plain_update(fast, kind, ts, value, limits, HOUR, estimated)
        if plain is None:
            assert fast == state  # declined: nothing changed
        else:
            start_ms, qty = plain
            assert expected == CounterUpdate(added=[Segment(start_ms, ts, qty, estimated)])
            assert fast == full
        state = full


def test_plain_update_takes_the_usual_readings_of_every_kind() -> None:
    for kind, first, then in (("cumulative", 100.0, 112.5), ("interval", 3.0, 4.0), ("rate", 60.0, 120.0)):
        state = MeterState(kind=kind, energy="electricity")
        counter_update(state, kind, T0, first)
        assert plain_update(state, kind, T0 + MIN, then, NO_LIMITS, HOUR, False) is not None, kind
        assert plain_update(state, kind, T0 + MIN, then, NO_LIMITS, HOUR, False) is None  # a repeat


# --- ledger ---------------------------------------------------------------------------------------

ACCOUNTANT = Accountant()
METERS = [("E1", "electricity", "cumulative", "kWh"), ("E2", "electricity", "cumulative", "MWh"),
          ("G1", "natural_gas", "interval", "m³"), ("P1", "electricity", "rate", "kW"),
          ("S1", "steam", "cumulative", "t")]  # fmt: skip
INFOS = [
    None,
    UnitInfo(unit_id="U1", name="n", region="江苏", grid_region="华东", industry="steel"),
    UnitInfo.model_validate(
        {"unit_id": "U1", "name": "n", "region": "河北", "grid_region": "华北", "industry": "steel",
         "hourly_tce_ceiling": 0.01,
         "meters": [{"meter_id": "E1", "register_max": 2_000.0}, {"meter_id": "S1", "max_per_hour": 300.0},
                    {"meter_id": "P1", "uom": "kW", "max_per_hour": 1_500.0},
                    {"meter_id": "E1", "register_max": 9.0}]}
    ),
]  # fmt: skip


@st.composite
def ledger_messages(draw: st.DrawFn) -> list[list[Reading]]:
    registers = {meter_id: draw(st.floats(min_value=0, max_value=1_900)) for meter_id, *_ in METERS}
    ts = T0 - draw(st.sampled_from([0, 10 * MIN, 2 * HOUR]))
    out: list[list[Reading]] = []
    seen: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(min_value=1, max_value=25))):
        ts += draw(st.sampled_from([MIN, MIN, MIN, 4 * MIN, 15 * MIN, 15 * MIN, 40 * MIN, 3 * HOUR]))
        batch: list[Reading] = []
        for meter_id, energy, kind, uom in METERS:
            if draw(st.integers(min_value=0, max_value=4)) == 0:
                continue
            late = draw(st.sampled_from([0, 0, 0, 0, 0, 0, MIN, 20 * MIN, 2 * HOUR, 3 * HOUR]))
            if seen and draw(st.integers(min_value=0, max_value=9)) == 0:
                doc = dict(draw(st.sampled_from(seen)))  # a resend, maybe with another value
                if draw(st.booleans()):
                    doc["value"] += 1.0
            else:
                if kind == "cumulative":
                    registers[meter_id] += draw(st.sampled_from([0.0, 1.5, 12.25, 80.0, 700.0, -1_500.0]))
                    value = max(registers[meter_id], 0.0)
                else:
                    value = draw(st.sampled_from([0.0, 2.5, 30.0, 900.0, -1.0]))
                doc = {"meter_id": meter_id, "energy": energy, "kind": kind, "value": value, "uom": uom,
                       "ts": ts - late}  # fmt: skip
                if draw(st.integers(min_value=0, max_value=9)) == 0:
                    doc["quality"] = "estimated"
                if kind == "cumulative" and draw(st.integers(min_value=0, max_value=29)) == 0:
                    doc.update(event="meter_swap", old_value=registers[meter_id] + 5.0, value=1.0)
                    registers[meter_id] = 1.0
                if kind == "interval" and draw(st.booleans()):  # the period it was used in
                    doc["start"] = doc["ts"] - draw(
                        st.sampled_from([MIN, 5 * MIN, 15 * MIN, 45 * MIN, 3 * HOUR])
                    )
                seen.append(doc)
            batch.append(Reading.model_validate(doc))
        if batch:
            out.append(batch)
    return out


def apply_all(messages: list[list[Reading]], info: UnitInfo | None) -> tuple[list[LedgerResult], Any]:
    ledger = UnitLedger("U1")
    policy = LedgerPolicy(lateness_ms=2 * HOUR, hourly_tce_ceiling=0.05)
    results = [ledger.apply(ParsedMessage("U1", "t", i, list(rs)), ACCOUNTANT, policy, info)
               for i, rs in enumerate(messages)]  # fmt: skip
    return results, ledger.to_json()


@settings(FAST, max_examples=200)
@given(messages=ledger_messages(), info_index=st.integers(min_value=0, max_value=len(INFOS) - 1))
def test_the_ledger_gives_the_same_with_and_without_plain_update(
    messages: list[list[Reading]], info_index: int
) -> None:
    info = INFOS[info_index]
    fast = apply_all(messages, info)
    with mock.patch.object(ledger_module, "plain_update", return_value=None):
        full = apply_all(messages, info)
    assert fast == full


def test_the_plain_path_is_taken() -> None:
    readings = [[Reading.model_validate({"meter_id": "E1", "energy": "electricity", "kind": "cumulative",
                                         "value": 100.0 + i, "uom": "kWh", "ts": T0 + i * MIN})]
                for i in range(5)]  # fmt: skip
    with mock.patch.object(ledger_module, "counter_update", wraps=ledger_module.counter_update) as full:
        results, _ = apply_all(readings, INFOS[1])
    assert full.call_count == 1  # the baseline; every later reading took plain_update
    assert [p.qty for r in results for p in r.counted] == [1.0, 1.0, 1.0, 1.0]


def registry(*meters: dict[str, Any]) -> UnitInfo:
    return UnitInfo.model_validate(
        {
            "unit_id": "U1",
            "name": "n",
            "region": "江苏",
            "grid_region": "华东",
            "industry": "steel",
            "meters": meters,
        }
    )


def electricity(ts: int, value: float) -> list[Reading]:
    return [Reading.model_validate({"meter_id": "E1", "energy": "electricity", "kind": "cumulative",
                                    "value": value, "uom": "kWh", "ts": ts})]  # fmt: skip


def test_the_first_registry_entry_of_a_meter_sets_its_limits() -> None:
    # the limits are looked up once per message; UnitInfo.meter finds the first entry
    info = registry({"meter_id": "E1", "register_max": 1_000.0}, {"meter_id": "E1", "register_max": 500.0})
    results, _ = apply_all([electricity(T0, 990.0), electricity(T0 + MIN, 10.0)], info)
    assert [e.event for e in results[1].events] == ["rollover"] and results[1].counted[0].qty == 20.0


def test_limits_follow_the_registry_record_of_each_message() -> None:
    # the converted limits are cached by value: a changed record takes effect at once
    small, large = (
        registry({"meter_id": "E1", "register_max": 1_000.0}),
        registry({"meter_id": "E1", "register_max": 2_000.0}),
    )
    ledger = UnitLedger("U1")
    policy = LedgerPolicy()
    ledger.apply(ParsedMessage("U1", "t", 0, electricity(T0, 990.0)), ACCOUNTANT, policy, small)
    rolled = ledger.apply(ParsedMessage("U1", "t", 1, electricity(T0 + MIN, 10.0)), ACCOUNTANT, policy, small)
    ledger.apply(ParsedMessage("U1", "t", 2, electricity(T0 + 2 * MIN, 1_990.0)), ACCOUNTANT, policy, large)
    again = ledger.apply(
        ParsedMessage("U1", "t", 3, electricity(T0 + 3 * MIN, 10.0)), ACCOUNTANT, policy, large
    )
    assert rolled.counted[0].qty == 20.0 and again.counted[0].qty == 20.0
