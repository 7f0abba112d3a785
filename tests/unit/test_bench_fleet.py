"""The benchmark's generated fleet: shape, determinism, registers, alert units and spikes, which
message causes a `unit_status` point, and the peers' accounting against the kernel's ledger."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from bench.fleet import (
    ALERT_CEILING,
    INTERVAL_MINUTES,
    ORDINARY_CEILING,
    AlertForecast,
    BenchFleet,
    StatusIndex,
    alert_unit_count,
    interval_aligned,
    minute_ms,
)
from bench.peers.accounting import PeerAccounting, UnitTags, line
from energy.accounting import Accountant
from energy.ledger import LedgerPolicy, UnitLedger
from energy.rules import HOURLY_CEILING
from energy.schema import parse_message


def small(units: int = 6, meters: int = 9, per_message: int = 9) -> BenchFleet:
    return BenchFleet.generate(units, meters, per_message, seed=7)


def test_every_unit_reads_every_meter_once_a_minute_in_messages_of_k_readings() -> None:
    fleet = small(units=4, meters=10, per_message=4)
    messages = fleet.messages(3)
    assert sum(m.readings for m in messages) == 4 * 10 * 3
    by_unit = Counter(m.unit_id for m in messages)
    assert set(by_unit) == {u.unit_id for u in fleet.units}
    for unit in fleet.units:
        sizes = [m.readings for m in messages if m.unit_id == unit.unit_id]
        assert sizes == [4] * 7 + [2]  # 30 readings: 7 full messages, the rest at the end of the range
    doc = orjson.loads(messages[0].value)
    assert doc["v"] == 1 and doc["source"] == "bench" and len(doc["readings"]) == 4
    assert {r["ts"] for r in doc["readings"]} == {minute_ms(0)}
    assert all(len(parse_message(m.value).readings) == m.readings for m in messages)  # the schema takes them


def test_a_message_may_carry_several_scans() -> None:
    fleet = small(units=2, meters=5, per_message=15)
    messages = fleet.messages(6)
    assert [m.readings for m in messages] == [15, 15, 15, 15]
    assert messages[0].ts_ms == minute_ms(2) and messages[-1].ts_ms == minute_ms(5)


def test_the_fleet_and_its_messages_are_a_function_of_the_arguments() -> None:
    one, two = small(), small()
    assert [m.value for m in one.messages(3)] == [m.value for m in two.messages(3)]
    assert one.registry() == two.registry()
    assert [m.value for m in one.messages(2)] != [
        m.value for m in BenchFleet.generate(6, 9, 9, seed=8).messages(2)
    ]


def test_registers_continue_across_ranges_and_never_go_back() -> None:
    fleet = small(units=2, meters=7, per_message=7)
    messages = fleet.messages(2) + fleet.messages(3)
    assert [m.index for m in messages] == list(range(len(messages)))
    last: dict[str, float] = {}
    for msg in messages:
        for r in orjson.loads(msg.value)["readings"]:
            if r["kind"] == "cumulative":
                assert r["value"] >= last.get(r["meter_id"], 0.0)
                last[r["meter_id"]] = r["value"]
    assert fleet.next_minute == 5


def test_alert_units_have_a_lower_ceiling_than_the_others() -> None:
    fleet = BenchFleet.generate(40, 7, 7, seed=3)
    alert = [u for u in fleet.units if u.alert]
    assert len(alert) == alert_unit_count(40) == 2
    for unit in fleet.units:
        factor = ALERT_CEILING if unit.alert else ORDINARY_CEILING
        assert unit.info.hourly_tce_ceiling == pytest.approx(unit.hourly_tce * factor, rel=1e-6)
        assert [m.meter_id for m in unit.info.meters] == [m.meter_id for m in unit.meters]
    assert alert_unit_count(1) == 1 and alert_unit_count(10_000) == 200


def test_the_hourly_use_is_what_the_kernel_counts_in_an_hour() -> None:
    fleet = small(units=3, meters=8, per_message=8)
    accountant, policy = Accountant(), LedgerPolicy()
    ledgers = {u.unit_id: UnitLedger(u.unit_id) for u in fleet.units}
    infos = {u.unit_id: u.info for u in fleet.units}
    tce: Counter[str] = Counter()
    for msg in fleet.messages(61):
        result = ledgers[msg.unit_id].apply(parse_message(msg.value), accountant, policy, infos[msg.unit_id])
        tce[msg.unit_id] += sum(p.tce for p in result.energy)
    for unit in fleet.units:  # interval meters count their first minute too: within the ±10 % texture
        assert tce[unit.unit_id] == pytest.approx(unit.hourly_tce, rel=0.1)


def test_a_spike_raises_one_hourly_ceiling_alert_at_the_message_the_kernel_says() -> None:
    fleet = BenchFleet.generate(40, 6, 6, seed=5)
    alert_units = fleet.alert_units()
    infos = {u.unit_id: u.info for u in fleet.units if u.alert}
    forecast = AlertForecast(Accountant(), LedgerPolicy(), infos)
    forecast.feed(fleet.messages(INTERVAL_MINUTES * 2))
    assert forecast.expected == {}  # normal use stays under 1.5 × the hourly use
    spikes = fleet.schedule_spikes(alert_units, fleet.next_minute, fleet.next_minute + 3)
    messages = fleet.messages(5)
    forecast.feed(messages)
    raised = {key: index for key, index in forecast.expected.items() if key[1] == "raised"}
    assert {key[0] for key in raised} == {f"{u}|{HOURLY_CEILING}" for u in alert_units}
    by_index = {m.index: m for m in messages}
    for (key, _state, _ts), index in raised.items():
        unit_id = key.split("|")[0]
        assert by_index[index].unit_id == unit_id
        assert by_index[index].ts_ms == minute_ms(spikes[unit_id])


def test_spikes_must_lie_ahead_of_the_generator() -> None:
    fleet = small()
    fleet.messages(3)
    with pytest.raises(ValueError):
        fleet.schedule_spikes(fleet.alert_units(), 1, 4)


def test_a_status_point_is_expected_when_a_unit_enters_a_new_interval() -> None:
    fleet = small(units=2, meters=5, per_message=5)
    index = StatusIndex()
    messages = fleet.messages(INTERVAL_MINUTES + 2)
    index.add(messages)
    unit = fleet.units[0].unit_id
    mine = [m for m in messages if m.unit_id == unit]
    # minute 0 (first data), minute 1 (the interval after 00:00), minute 16 (after 00:15)
    assert sorted(t for u, t in index.expected if u == unit) == [minute_ms(0), minute_ms(1), minute_ms(16)]
    assert index.cause(unit, minute_ms(16)) == mine[16].index
    assert index.cause(unit, minute_ms(16) - 1) == mine[16].index  # the first message reaching it
    assert index.cause(unit, minute_ms(99)) is None
    assert index.cause("nobody", minute_ms(1)) is None


def test_interval_aligned_rounds_up_to_whole_quarter_hours() -> None:
    assert [interval_aligned(m) for m in (1, 15, 16, 30, 31)] == [15, 15, 30, 30, 45]


def test_the_peers_write_the_points_the_kernel_writes() -> None:
    """The peers' accounting is the kernel's for this data: the same `energy` points (unit, meter,
    time) with the same qty, tce and tCO₂ as ``UnitLedger`` (whose points the worker writes)."""
    fleet = small(units=4, meters=14, per_message=10)
    accountant, policy = Accountant(), LedgerPolicy()
    infos = {u.unit_id: u.info for u in fleet.units}
    peer = PeerAccounting({u: UnitTags(i.region, i.grid_region, i.industry) for u, i in infos.items()})
    ledgers = {u: UnitLedger(u) for u in infos}
    ours: dict[tuple[str, str, int], tuple[float, float, float]] = {}
    theirs: dict[tuple[str, str, int], tuple[float, float, float]] = {}
    for msg in fleet.messages(INTERVAL_MINUTES + 3):
        result = ledgers[msg.unit_id].apply(parse_message(msg.value), accountant, policy, infos[msg.unit_id])
        ours.update({(p.unit_id, p.meter_id, p.ts_ms): (p.qty, p.tce, p.co2_t) for p in result.energy})
        points = peer.apply(orjson.loads(msg.value))
        theirs.update({(p.unit_id, p.meter_id, p.ts_ms): (p.qty, p.tce, p.co2_t) for p in points})
    assert ours.keys() == theirs.keys()
    for key, figures in ours.items():
        assert theirs[key] == pytest.approx(figures, rel=1e-9, abs=1e-12)


def test_a_peer_line_is_line_protocol_with_the_workers_tags() -> None:
    fleet = small(units=1, meters=3, per_message=3)
    info = fleet.units[0].info
    peer = PeerAccounting({info.unit_id: UnitTags(info.region, info.grid_region, info.industry)})
    peer.apply(orjson.loads(fleet.messages(1)[0].value))
    (point, *_) = peer.apply(orjson.loads(fleet.messages(1)[0].value))
    text = line(point)
    head, fields, ts = text.split(" ")
    assert head.split(",")[0] == "energy"
    assert {kv.split("=")[0] for kv in head.split(",")[1:]} == {
        "energy",
        "industry",
        "meter_id",
        "region",
        "unit_id",
    }
    assert {kv.split("=")[0] for kv in fields.split(",")} == {"qty", "tce", "co2_t", "estimated"}
    assert int(ts) == point.ts_ms == minute_ms(1)


def test_a_peer_ignores_what_is_not_a_readings_message() -> None:
    assert PeerAccounting({}).apply({"warmup": True}) == []


def test_skipping_to_the_next_interval_sends_nothing_and_keeps_the_registers_counting() -> None:
    fleet = small(units=1, meters=7, per_message=7)
    before = {r["meter_id"]: r for r in orjson.loads(fleet.messages(4)[-1].value)["readings"]}
    assert fleet.skip_to_interval() == INTERVAL_MINUTES + 1 - 4
    (msg,) = fleet.messages(1)
    assert msg.ts_ms == minute_ms(INTERVAL_MINUTES + 1)
    meters = {m.meter_id: m for m in fleet.units[0].meters}
    for r in orjson.loads(msg.value)["readings"]:
        if r["kind"] == "cumulative":  # minutes 4 … 16: 13 minutes of use, ±10 % texture a minute
            rise = r["value"] - before[r["meter_id"]]["value"]
            assert rise == pytest.approx(13 * meters[r["meter_id"]].per_minute, rel=0.05)
    assert fleet.skip_to_interval() == INTERVAL_MINUTES - 1
    assert fleet.skip_to_interval() == 0  # already at an interval's first minute
