"""The simulated fleet: determinism, shape of the fleet, schema validity, registers, load shapes, sizes."""

from __future__ import annotations

import itertools
import threading
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

import orjson
import pytest

import collectors.simulator as simulator
from collectors.publisher import Publisher
from collectors.simulator import (
    CST,
    DAY_MS,
    EPOCH_MS,
    HEAVY_UNIT_IDS,
    HOUR_MS,
    MINUTE_MS,
    Fleet,
    SimUnit,
    history_times,
    run_simulator,
)
from energy.registry import GRID_REGIONS, UnitInfo
from energy.schema import parse_message
from energy.topics import READINGS, REGISTRY
from energymon.settings import Settings, SimulatorSettings

# Rough GB/T 2589 coefficients, tce per unit of the meter's uom (fresh water not counted).
TCE = {
    "electricity": 0.1229e-3,
    "raw_coal": 0.7143,
    "natural_gas": 1.2143e-3,
    "steam": 0.1286,  # per tonne (low-pressure steam, domain.md §1.2 [S])
    "heat": 0.03412,
    "diesel": 1.4571,
    "fresh_water": 0.0,
}
#: Monday 2026-03-02 00:00 Asia/Shanghai.
MONDAY = int(datetime(2026, 3, 2, tzinfo=CST).timestamp() * 1000)
CEILING = 25.0


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return Fleet.generate()


def local(day: int, hour: int, minute: int = 0) -> int:
    """Epoch ms of MONDAY + ``day`` days at ``hour:minute`` local time."""
    return MONDAY + day * 24 * HOUR_MS + hour * HOUR_MS + minute * MINUTE_MS


def tce_between(fleet: Fleet, unit: SimUnit, start_ms: int, end_ms: int) -> float:
    """The unit's tce in (start_ms, end_ms] from two scans, as the stream app would compute it."""
    first = fleet.scan(unit, start_ms, seq=0, previous_t_ms=None)["readings"]
    second = fleet.scan(unit, end_ms, seq=1, previous_t_ms=start_ms)["readings"]
    total = 0.0
    for a, b in zip(first, second, strict=True):
        qty = b["value"] - a["value"] if b["kind"] == "cumulative" else b["value"]
        total += qty * TCE[b["energy"]]
    return total


def hourly_tce(fleet: Fleet, unit: SimUnit, start_ms: int, hours: int) -> list[float]:
    """tce of each clock hour from ``start_ms``, from hourly scans."""
    scans = [
        fleet.scan(unit, start_ms + h * HOUR_MS, seq=h, previous_t_ms=start_ms + (h - 1) * HOUR_MS)
        for h in range(hours + 1)
    ]
    out = []
    for a, b in itertools.pairwise(scans):
        total = 0.0
        for ra, rb in zip(a["readings"], b["readings"], strict=True):
            qty = rb["value"] - ra["value"] if rb["kind"] == "cumulative" else rb["value"]
            total += qty * TCE[rb["energy"]]
        out.append(total)
    return out


def test_epoch_is_a_monday_midnight_in_china() -> None:
    assert datetime.fromtimestamp(EPOCH_MS / 1000, CST).strftime("%A %H:%M") == "Monday 00:00"
    assert (MONDAY - EPOCH_MS) % (7 * 24 * HOUR_MS) == 0


def test_same_seed_same_fleet_and_bytes() -> None:
    a, b = Fleet.generate(seed=7), Fleet.generate(seed=7)
    assert a.registry_records() == b.registry_records()
    for ua, ub in zip(a.units, b.units, strict=True):
        assert ua == ub
        for t in (local(0, 3), local(2, 10, 17), local(6, 23, 59)):
            assert orjson.dumps(a.scan(ua, t, 5, t - 60_000)) == orjson.dumps(b.scan(ub, t, 5, t - 60_000))


def test_scan_does_not_depend_on_history(fleet: Fleet) -> None:
    other = Fleet.generate()
    unit = fleet.units[0]
    t = local(3, 14, 30)
    for m in range(0, 600, 7):  # warm one fleet's caches with other times first
        fleet.scan(unit, local(1, 0) + m * MINUTE_MS, seq=m, previous_t_ms=None)
    assert fleet.scan(unit, t, 9, t - 60_000) == other.scan(other.units[0], t, 9, t - 60_000)


def test_different_seeds_differ() -> None:
    a, b = Fleet.generate(seed=1), Fleet.generate(seed=2)
    t = local(2, 10)
    assert [a.scan(u, t, 0, None) for u in a.units] != [b.scan(u, t, 0, None) for u in b.units]
    assert [u.annual_tce for u in a.units] != [u.annual_tce for u in b.units]


def test_larger_fleet_contains_the_default_one(fleet: Fleet) -> None:
    bigger = Fleet.generate(units=40)
    assert bigger.units[:20] == fleet.units


def test_fleet_composition(fleet: Fleet) -> None:
    assert len(fleet.units) >= 20
    assert Counter(u.info.industry for u in fleet.units) == {
        "steel": 5, "cement": 5, "chemicals": 5, "data_centre": 5,
    }  # fmt: skip
    assert len({u.info.region for u in fleet.units}) >= 5
    assert len({u.unit_id for u in fleet.units}) == len(fleet.units)
    meter_ids = [m.meter_id for u in fleet.units for m in u.meters]
    assert len(set(meter_ids)) == len(meter_ids)
    for u in fleet.units:
        assert u.info.grid_region in GRID_REGIONS
        assert len(u.meters) >= 5
        assert len({m.energy for m in u.meters}) >= 3
        assert 10_000 <= u.annual_tce <= 300_000
    energies = {m.energy for u in fleet.units for m in u.meters}
    assert {"electricity", "natural_gas", "raw_coal", "diesel", "fresh_water"} <= energies
    assert energies & {"steam", "heat"}


def test_data_centres_are_mostly_electricity(fleet: Fleet) -> None:
    for u in fleet.units:
        if u.info.industry != "data_centre":
            continue
        elec = sum(m.annual_qty * m.tce_per_uom for m in u.meters if m.energy == "electricity")
        assert elec / u.annual_tce > 0.95


def test_energy_codes_kinds_and_uoms(fleet: Fleet) -> None:
    expected = {
        "electricity": ("cumulative", "kWh"),
        "natural_gas": ("cumulative", "m³"),
        "raw_coal": ("interval", "t"),
        "steam": ("cumulative", "t"),
        "heat": ("cumulative", "GJ"),
        "diesel": ("interval", "t"),
        "fresh_water": ("cumulative", "t"),
    }
    for u in fleet.units:
        for m in u.meters:
            assert (m.kind, m.uom) == expected[m.energy], m
            if m.kind == "cumulative":
                assert m.start > 0


def test_registry_records_round_trip(fleet: Fleet) -> None:
    records = fleet.registry_records()
    assert [r.unit_id for r in records] == [u.unit_id for u in fleet.units]
    for r in records:
        assert UnitInfo.from_json(r.to_json()) == r
        assert r.hourly_tce_ceiling is None


def test_every_scan_validates(fleet: Fleet) -> None:
    count = 0
    for u in fleet.units:
        prev = None
        for step in range(0, 7 * 24 * 60, 97):  # a week, irregular steps
            t = MONDAY + step * MINUTE_MS + 1234
            msg = fleet.scan(u, t, seq=step, previous_t_ms=prev)
            parsed = parse_message(orjson.dumps(msg))
            assert parsed.rejections == []
            assert len(parsed.readings) == len(u.meters)
            assert all(r.ts_ms == t for r in parsed.readings)
            assert msg["source"] == "sim" and msg["unit_id"] == u.unit_id
            prev = t
            count += 1
    assert count > 2000


@pytest.mark.parametrize("unit_id", ["sim-steel-001", "sim-chemicals-002", "sim-data_centre-001"])
def test_registers_never_go_back_over_a_week(fleet: Fleet, unit_id: str) -> None:
    unit = fleet.unit(unit_id)
    last: dict[str, float] = {}
    interval_total: dict[str, float] = defaultdict(float)
    prev = None
    for minute in range(7 * 24 * 60 + 1):
        t = MONDAY + minute * MINUTE_MS
        for r in fleet.scan(unit, t, seq=minute, previous_t_ms=prev)["readings"]:
            if r["kind"] == "cumulative":
                assert r["value"] >= last.get(r["meter_id"], 0.0), (r, t)
                last[r["meter_id"]] = r["value"]
            else:
                assert r["value"] >= 0.0
                if prev is not None:
                    interval_total[r["meter_id"]] += r["value"]
        prev = t
    # a week of interval quantities adds up to the week's consumption
    for m in unit.meters:
        if m.kind == "interval":
            exact = fleet.quantity(m, MONDAY, MONDAY + 7 * 24 * HOUR_MS)
            assert interval_total[m.meter_id] == pytest.approx(exact, abs=1e-3)
    first = {r["meter_id"]: r["value"] for r in fleet.scan(unit, MONDAY, 0, None)["readings"]}
    for meter_id, value in last.items():
        assert value > first[meter_id]


def test_registers_survive_a_restart(fleet: Fleet) -> None:
    """A register's value is a function of time: a new fleet object continues where the old one was."""
    unit = fleet.units[1]
    t = local(4, 9, 41)
    before = fleet.scan(unit, t, 1, None)
    after = Fleet.generate().scan(Fleet.generate().units[1], t + MINUTE_MS, 2, None)
    for a, b in zip(before["readings"], after["readings"], strict=True):
        if a["kind"] == "cumulative":
            assert b["value"] > a["value"]


def test_interval_readings_cover_the_gap_since_the_previous_scan(fleet: Fleet) -> None:
    unit = fleet.unit("sim-cement-002")
    coal = next(m for m in unit.meters if m.energy == "raw_coal")
    t0, t1 = local(1, 10), local(1, 10, 15)
    msg = fleet.scan(unit, t1, seq=1, previous_t_ms=t0)
    reading = next(r for r in msg["readings"] if r["meter_id"] == coal.meter_id)
    assert reading["value"] == pytest.approx(fleet.quantity(coal, t0, t1), abs=2e-4)
    # no previous scan: the last minute
    first = fleet.scan(unit, t1, seq=0, previous_t_ms=None)
    reading = next(r for r in first["readings"] if r["meter_id"] == coal.meter_id)
    assert reading["value"] == pytest.approx(fleet.quantity(coal, t1 - MINUTE_MS, t1), abs=2e-4)


def test_scan_rejects_bad_times(fleet: Fleet) -> None:
    with pytest.raises(ValueError):
        fleet.scan(fleet.units[0], EPOCH_MS - 1, 0, None)
    with pytest.raises(ValueError):
        fleet.scan(fleet.units[0], local(0, 10), 0, previous_t_ms=local(0, 10))


def test_daily_shape_steel(fleet: Fleet) -> None:
    for unit_id in ("sim-steel-002", "sim-steel-003"):
        unit = fleet.unit(unit_id)
        day = tce_between(fleet, unit, local(2, 10), local(2, 11))
        night = tce_between(fleet, unit, local(2, 3), local(2, 4))
        assert day > 1.3 * night


def test_data_centres_are_flat(fleet: Fleet) -> None:
    unit = fleet.unit("sim-data_centre-003")
    day = tce_between(fleet, unit, local(2, 14), local(2, 15))
    night = tce_between(fleet, unit, local(2, 3), local(2, 4))
    sunday = tce_between(fleet, unit, local(6, 14), local(6, 15))
    assert day == pytest.approx(night, rel=0.12)
    assert day == pytest.approx(sunday, rel=0.12)


@pytest.mark.parametrize("industry", ["cement", "chemicals"])
def test_weekly_shape(fleet: Fleet, industry: str) -> None:
    for unit in fleet.units:
        if unit.info.industry != industry:
            continue
        wednesday = tce_between(fleet, unit, local(2, 0), local(3, 0))
        sunday = tce_between(fleet, unit, local(6, 0), local(7, 0))
        assert sunday < 0.92 * wednesday, unit.unit_id


def test_annual_size_matches(fleet: Fleet) -> None:
    for unit in fleet.units[:4]:
        week = tce_between(fleet, unit, MONDAY, MONDAY + 7 * 24 * HOUR_MS)
        assert week * 365 / 7 == pytest.approx(unit.annual_tce, rel=0.01)


def test_heavy_units_exceed_the_ceiling_in_the_day_shift_only_they(fleet: Fleet) -> None:
    heavy = {u.unit_id for u in fleet.units if u.heavy}
    assert heavy == set(HEAVY_UNIT_IDS)
    for unit in fleet.units:
        week = hourly_tce(fleet, unit, MONDAY, 7 * 24)
        if unit.heavy:
            for day in range(5):  # weekday day shift 09:00–19:00: over the ceiling with a margin
                assert min(week[day * 24 + 9 : day * 24 + 19]) > CEILING + 1.0, unit.unit_id
            for day in range(7):  # nights below it: an alert that fires must also resolve
                assert max(week[day * 24 : day * 24 + 5]) < CEILING - 2.0, unit.unit_id
        else:
            assert max(week) < CEILING - 5.0, unit.unit_id


def test_heavy_units_also_heavy_for_other_seeds() -> None:
    for seed in (1, 99):
        fleet = Fleet.generate(seed=seed)
        for unit in fleet.units:
            peak = max(hourly_tce(fleet, unit, local(2, 0), 24))
            assert (peak > CEILING) == unit.heavy, (seed, unit.unit_id, peak)


def test_every_simulated_reading_is_accepted_by_the_accountant(fleet: Fleet) -> None:
    """The kernel converts every simulated reading (energy, uom) to tce and CO₂ without a rejection."""
    from energy.accounting import Accountant
    from energy.intervals import local_day

    accountant = Accountant()
    for u in fleet.units:
        t = MONDAY + 10 * HOUR_MS
        msg = parse_message(orjson.dumps(fleet.scan(u, t, 1, t - MINUTE_MS)))
        for r in msg.readings:
            qty = accountant.quantity(r.energy, r.value, r.uom)
            tce, _co2 = accountant.tce_co2(r.energy, qty, local_day(r.ts_ms), u.info.grid_region)
            assert tce >= 0.0


# -- run_simulator with a fake publisher (no broker) -------------------------------------------------


class FakePublisher(Publisher):
    """Records what run_simulator sends, in order; no broker."""

    def __init__(self) -> None:  # no producer: send, flush and close are replaced
        self.messages: list[dict[str, Any]] = []
        self.registry: list[str | None] = []
        self.flushes = 0

    def send(self, topic: str, key: str | None, value: bytes) -> None:
        if topic == REGISTRY:
            self.registry.append(key)
        else:
            assert topic == READINGS
            self.messages.append(orjson.loads(value))

    def flush(self, timeout_s: float = 30.0) -> None:
        self.flushes += 1

    def close(self, timeout_s: float = 5.0) -> None:
        pass


def cst(*args: int) -> int:
    return int(datetime(*args, tzinfo=CST).timestamp() * 1000)


def simulate(
    monkeypatch: pytest.MonkeyPatch, now_ms: int, units: int = 4, **sim: Any
) -> list[dict[str, Any]]:
    """The messages run_simulator sends at ``now_ms`` (a frozen clock) up to its first live round."""
    monkeypatch.setattr(simulator, "_now_ms", lambda: now_ms)
    settings = Settings(_env_file=None, simulator=SimulatorSettings(units=units, **sim))
    pub = FakePublisher()
    stop = threading.Event()

    def on_sent(messages: int, readings: int) -> None:
        if pub.messages[-1]["seq"] >= now_ms:  # the first live round
            stop.set()

    run_simulator(settings, stop, publisher=pub, on_sent=on_sent)
    assert len(pub.registry) == units
    return pub.messages


def test_history_times() -> None:
    # the day before the backfill starts, back to 1 January
    times = history_times(cst(2026, 3, 2, 10, 17), cst(2026, 3, 2, 9, 18))
    assert times[0] == cst(2026, 1, 1) and times[-1] == cst(2026, 3, 2)
    assert len(times) == 31 + 28 + 2 and all(b - a == DAY_MS for a, b in itertools.pairwise(times))
    # a backfill starting at midnight: the daily scans stop the day before
    assert history_times(cst(2026, 3, 2, 1), cst(2026, 3, 2))[-1] == cst(2026, 3, 1)
    assert history_times(cst(2026, 3, 2, 1), cst(2026, 3, 2) + 1)[-1] == cst(2026, 3, 2)
    # the year is China's: 2026-12-31 17:00 UTC is already 2027-01-01 01:00 in China
    assert history_times(cst(2027, 1, 1, 1), cst(2027, 1, 1, 0, 30)) == [cst(2027, 1, 1)]
    # a backfill reaching into last year: no daily history
    assert history_times(cst(2027, 1, 1, 0, 30), cst(2026, 12, 31, 23, 31)) == []
    # nothing before the simulator epoch
    assert history_times(cst(2020, 3, 1), cst(2020, 1, 7, 5))[0] == EPOCH_MS


def test_history_year_sends_the_year_to_date_exactly(monkeypatch: pytest.MonkeyPatch, fleet: Fleet) -> None:
    now = cst(2026, 3, 2, 10, 17, 23) + 456
    messages = simulate(monkeypatch, now, units=4, backfill_s=1800)
    jan1, midnight, end_min = cst(2026, 1, 1), cst(2026, 3, 2), cst(2026, 3, 2, 10, 17)
    days = history_times(now, end_min - 29 * MINUTE_MS)
    assert len(days) == 61 and days[-1] == midnight
    expected_times = days + [end_min - k * MINUTE_MS for k in range(29, -1, -1)] + [now]
    per_unit: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for msg in messages:
        per_unit[msg["unit_id"]].append(msg)
    assert len(per_unit) == 4 and len(messages) == 4 * len(expected_times)
    for unit_id, docs in per_unit.items():
        unit = fleet.unit(unit_id)
        assert [d["seq"] for d in docs] == expected_times  # oldest first; seq is the scan time
        assert all(r["ts"] == d["seq"] for d in docs for r in d["readings"])
        prev: int | None = None
        for d in docs:  # each scan as a fresh fleet makes it, interval quantities since the previous
            assert d == fleet.scan(unit, d["seq"], d["seq"], prev)
            prev = d["seq"]
        last: dict[str, float] = {}
        sent: dict[str, float] = defaultdict(float)
        for d in docs:
            for r in d["readings"]:
                if r["kind"] == "cumulative":  # never backwards, in particular not between phases
                    assert r["value"] >= last.get(r["meter_id"], 0.0), (r, d["seq"])
                    last[r["meter_id"]] = r["value"]
                elif d["seq"] > jan1:  # the 1 January 00:00 scan's quantity ends at midnight
                    sent[r["meter_id"]] += r["value"]
        first = {r["meter_id"]: r["value"] for r in docs[0]["readings"]}
        for m in unit.meters:
            exact = fleet.quantity(m, jan1, now)
            total = last[m.meter_id] - first[m.meter_id] if m.kind == "cumulative" else sent[m.meter_id]
            assert total == pytest.approx(exact, rel=1e-9, abs=2e-3), m.meter_id
            assert exact > 0.1 * m.annual_qty  # two months of a year: a real year to date
        # the first minute scan's interval quantities run from the last daily scan
        boundary = docs[len(days)]
        assert boundary["seq"] == end_min - 29 * MINUTE_MS
        for m, r in zip(unit.meters, boundary["readings"], strict=True):
            if m.kind == "interval":
                assert r["value"] == pytest.approx(fleet.quantity(m, midnight, boundary["seq"]), abs=2e-4)


def test_history_none_is_the_minute_backfill_only(monkeypatch: pytest.MonkeyPatch, fleet: Fleet) -> None:
    now = cst(2026, 3, 2, 10, 17, 23) + 456
    messages = simulate(monkeypatch, now, units=2, backfill_s=600, history="none")
    end_min = cst(2026, 3, 2, 10, 17)
    expected_times = [end_min - k * MINUTE_MS for k in range(9, -1, -1)] + [now]
    assert [m["seq"] for m in messages] == [t for t in expected_times for _ in range(2)]
    for unit in fleet.units[:2]:
        prev = None  # the first backfill scan reports the last minute, as it always did
        for t in expected_times:
            assert fleet.scan(unit, t, t, prev) in messages
            prev = t


def test_history_without_minute_backfill(monkeypatch: pytest.MonkeyPatch, fleet: Fleet) -> None:
    now = cst(2026, 1, 3, 8, 0, 5)
    messages = simulate(monkeypatch, now, units=1, backfill_s=0)
    times = [cst(2026, 1, 1), cst(2026, 1, 2), cst(2026, 1, 3), now]
    assert [m["seq"] for m in messages] == times
    unit = fleet.units[0]
    assert messages[-1] == fleet.scan(unit, now, now, cst(2026, 1, 3))  # live picks up at midnight


def test_history_stops_promptly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulator, "_now_ms", lambda: cst(2026, 11, 24, 12))
    pub = FakePublisher()
    stop = threading.Event()
    rounds: list[int] = []

    def on_sent(messages: int, readings: int) -> None:
        rounds.append(messages)
        if len(rounds) == 3:
            stop.set()

    run_simulator(Settings(_env_file=None, simulator=SimulatorSettings(units=2)), stop, pub, on_sent)
    assert len(rounds) == 3 and [m["seq"] for m in pub.messages][::2] == [
        cst(2026, 1, 1), cst(2026, 1, 2), cst(2026, 1, 3)
    ]  # fmt: skip
    assert pub.flushes >= 2  # registry, and before returning
