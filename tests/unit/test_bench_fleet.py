"""The benchmark's generated fleet: shape, determinism, registers, alert units and spikes, which
message causes a `unit_status` point, the peers' accounting and interval points against the kernel's
ledger, and when a backlog run has ended."""

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
    Message,
    StatusIndex,
    alert_unit_count,
    interval_aligned,
    minute_ms,
)
from bench.observe import EndCheck, energy_at, energy_totals
from bench.peers.accounting import (
    IntervalPoints,
    PeerAccounting,
    PeerPoint,
    UnitTags,
    interval_totals,
    line,
)
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
        tce[msg.unit_id] += sum(p.tce for p in result.counted)
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


Key = tuple[str, str, int]
Figures = tuple[float, float, float]


def kernel_points(fleet: BenchFleet, messages: list[Message]) -> dict[Key, Figures]:
    """The `energy` points the worker ends with: (unit, meter, interval start) → (qty, tce, tCO₂),
    from each message's ``result.energy`` (the intervals it closed) and the ledgers' open points."""
    accountant, policy = Accountant(), LedgerPolicy()
    infos = {u.unit_id: u.info for u in fleet.units}
    ledgers = {u: UnitLedger(u) for u in infos}
    points: dict[Key, Figures] = {}
    for msg in messages:
        result = ledgers[msg.unit_id].apply(parse_message(msg.value), accountant, policy, infos[msg.unit_id])
        assert not any(p.estimated for p in result.energy)
        points.update({(p.unit_id, p.meter_id, p.start_ms): (p.qty, p.tce, p.co2_t) for p in result.energy})
    for ledger in ledgers.values():
        points.update(
            {(p.unit_id, p.meter_id, p.start_ms): (p.qty, p.tce, p.co2_t) for p in ledger.open_points()}
        )
    return points


def peer_job(fleet: BenchFleet) -> PeerAccounting:
    return PeerAccounting({u.unit_id: UnitTags.of(u.info) for u in fleet.units})


def figures_of(points: list[PeerPoint]) -> dict[Key, Figures]:
    return {(p.unit_id, p.meter_id, p.ts_ms): (p.qty, p.tce, p.co2_t) for p in points}


def assert_same_points(theirs: dict[Key, Figures], ours: dict[Key, Figures]) -> None:
    assert theirs.keys() == ours.keys()
    for key, figures in ours.items():
        assert theirs[key] == pytest.approx(figures, rel=1e-9, abs=1e-12), key


@pytest.mark.parametrize("per_message", [10, 14, 33])  # part of a scan, one scan, several scans
def test_the_peers_write_the_points_the_kernel_writes(per_message: int) -> None:
    """The peers end with the kernel's `energy` points for this data: per (unit, meter, interval
    start) the same qty, tce and tCO₂ as ``UnitLedger`` (whose points the worker writes), whether
    written when closed (Quix) or overwritten with each reading's running sum (naive)."""
    fleet = small(units=4, meters=14, per_message=per_message)
    messages = fleet.messages(2 * INTERVAL_MINUTES + 3)
    ours = kernel_points(fleet, messages)
    closing, running = peer_job(fleet), peer_job(fleet)
    closing_intervals, running_intervals = IntervalPoints(), IntervalPoints()
    closed: dict[Key, Figures] = {}
    written: dict[Key, Figures] = {}
    for msg in messages:
        doc = orjson.loads(msg.value)
        for piece in closing.apply(doc):
            closing_intervals.add(piece)
        for key in (new := figures_of(closing_intervals.closed_by(doc))):
            assert key not in closed  # each interval point is written once
        closed.update(new)
        written.update(figures_of([running_intervals.add(piece).point() for piece in running.apply(doc)]))
        running_intervals.closed_by(doc)
    assert_same_points(written, ours)
    assert {key[2] for key in ours} == {minute_ms(m) for m in (-INTERVAL_MINUTES, 0, 15, 30)}
    closed_before = {key: f for key, f in ours.items() if key[2] < minute_ms(2 * INTERVAL_MINUTES)}
    assert_same_points(closed, closed_before)  # Quix writes no open interval
    assert_same_points({**closed, **figures_of(closing_intervals.open_points())}, ours)


def test_interval_points_sum_a_meters_pieces_per_interval_and_close_when_the_data_moves_on() -> None:
    def piece(meter: str, minute: int, qty: float) -> PeerPoint:
        return PeerPoint(
            "U", meter, "electricity", "江苏", "steel", minute_ms(minute), qty, qty / 10, qty / 100
        )

    def message(minute: int) -> dict[str, object]:
        return {"unit_id": "U", "readings": [{"ts": minute_ms(minute)}]}

    intervals = IntervalPoints()
    assert intervals.add(piece("A", 1, 1.0)).point().ts_ms == minute_ms(0)
    assert intervals.closed_by(message(1)) == []
    intervals.add(piece("B", 14, 2.0))
    running = intervals.add(piece("A", 15, 3.0)).point()  # 00:15 closes 00:00–00:15: same interval
    assert (running.ts_ms, running.qty, running.tce) == (minute_ms(0), 4.0, pytest.approx(0.4))
    assert intervals.closed_by(message(15)) == []
    intervals.add(piece("A", 16, 5.0))
    closed = intervals.closed_by(message(16))  # the unit's data moved on: 00:00–00:15 is closed
    assert [(p.meter_id, p.ts_ms, p.qty) for p in closed] == [
        ("A", minute_ms(0), 4.0),
        ("B", minute_ms(0), 2.0),
    ]
    assert intervals.closed_by(message(17)) == []  # given out once, then forgotten
    assert [(p.meter_id, p.ts_ms, p.qty) for p in intervals.open_points()] == [("A", minute_ms(15), 5.0)]
    assert intervals.closed_by({"warmup": True}) == []


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


@pytest.mark.parametrize("per_message", [9, 20])  # one scan per message, several scans per message
def test_the_end_of_a_backlog_is_its_last_closed_intervals_points_and_their_tce(per_message: int) -> None:
    """A backlog of minutes 0 … N + 1 ends with the points of (N − 15, N]: one per meter, their Σtce
    what the kernel writes for that interval, worked out from the messages of minute N − 15 on."""
    fleet = small(units=3, meters=9, per_message=per_message)
    last = 2 * INTERVAL_MINUTES
    backlog = fleet.messages(last + 2)
    end = EndCheck.of_backlog(peer_job(fleet), backlog, last)
    assert end.start_ms == minute_ms(INTERVAL_MINUTES)
    kernel = [f for (_u, _m, start), f in kernel_points(fleet, backlog).items() if start == end.start_ms]
    assert end.points == len(kernel) == fleet.meter_count
    assert end.tce == pytest.approx(sum(tce for _qty, tce, _co2 in kernel), rel=1e-12)
    everything = interval_totals(peer_job(fleet), [orjson.loads(m.value) for m in backlog], end.start_ms)
    assert everything == (end.points, pytest.approx(end.tce, rel=1e-12))  # nothing before N − 15 counts


def test_the_end_needs_the_whole_interval_not_just_a_point_per_meter() -> None:
    """The naive peer's running sums give every meter a point at the interval start with its first
    reading in it: the count alone would end the run too early."""
    fleet = small(units=2, meters=6, per_message=6)
    last = INTERVAL_MINUTES
    backlog = fleet.messages(last + 2)
    end = EndCheck.of_backlog(peer_job(fleet), backlog, last)
    job, intervals = peer_job(fleet), IntervalPoints()
    written: dict[Key, float] = {}
    for msg in backlog:
        if msg.ts_ms == minute_ms(last):  # all but the interval's last minute
            break
        doc = orjson.loads(msg.value)
        running = [intervals.add(piece).point() for piece in job.apply(doc)]
        written.update({(p.unit_id, p.meter_id, p.ts_ms): p.tce for p in running})
        intervals.closed_by(doc)
    at_end = [tce for (_u, _m, ts), tce in written.items() if ts == end.start_ms]
    assert len(at_end) == end.points
    assert not end.reached(len(at_end), sum(at_end))
    assert end.reached(end.points, end.tce * (1 - 1e-12)) and end.reached(end.points + 1, end.tce)
    assert not end.reached(end.points - 1, end.tce)


def test_the_energy_queries_count_and_sum_tce_at_or_up_to_a_time() -> None:
    asked: list[str] = []

    def query(q: str) -> list[dict[str, object]]:
        asked.append(q)
        return [{"values": [[0, 12, 3.5]]}] if "=" in q else []

    assert energy_at(query, 1_000) == (12, 3.5)
    assert energy_totals(query, 2_000) == (12, 3.5)  # `<=` holds `=`
    assert asked == [
        'SELECT count("tce"), sum("tce") FROM "energy" WHERE time = 1000ms',
        'SELECT count("tce"), sum("tce") FROM "energy" WHERE time <= 2000ms',
    ]
    assert energy_at(lambda _q: [], 1_000) == (0, 0.0)
