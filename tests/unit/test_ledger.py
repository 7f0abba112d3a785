"""The unit ledger: points, interval totals, gaps, late corrections, events and rejections."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from energy.accounting import Accountant
from energy.counters import Segment
from energy.intervals import INTERVAL_MS
from energy.ledger import FINE_SPAN_MS, LedgerPolicy, UnitLedger, split_segment
from energy.registry import MeterInfo, UnitInfo
from energy.schema import ParsedMessage, Reading

T0 = 1_740_967_200_000  # 2025-03-03 10:00 China time, an interval boundary
MIN = 60_000
KGCE_PER_KWH = 0.1229
ACCOUNTANT = Accountant()
POLICY = LedgerPolicy(lateness_ms=120 * MIN, hourly_tce_ceiling=1e9)


def reading(ts: int, value: float, meter: str = "E1", kind: str = "cumulative", **extra: Any) -> Reading:
    return Reading.model_validate(
        {"meter_id": meter, "energy": "electricity", "kind": kind, "value": value, "uom": "kWh", "ts": ts}
        | extra
    )


def apply(ledger: UnitLedger, *readings: Reading, info: UnitInfo | None = None):  # type: ignore[no-untyped-def]
    return ledger.apply(ParsedMessage("U1", "t", 0, readings=list(readings)), ACCOUNTANT, POLICY, info)


def test_split_segment_is_proportional_to_time_and_exact_in_sum() -> None:
    pieces = split_segment(Segment(T0 + 10 * MIN, T0 + 40 * MIN, 30.0))
    assert pieces == [(T0 + 15 * MIN, 5.0), (T0 + 30 * MIN, 15.0), (T0 + 40 * MIN, 10.0)]
    assert split_segment(Segment(T0, T0 + 15 * MIN, 7.0)) == [(T0 + 15 * MIN, 7.0)]
    assert split_segment(Segment(None, T0 + 3 * MIN, 2.0)) == [(T0 + 3 * MIN, 2.0)]


def test_a_meter_that_reads_every_six_hours_is_in_every_interval_total_it_spans() -> None:
    """Its segments reach back past the lateness window: the unit's interval totals (``unit_energy``)
    must still hold its pieces beside those of a meter reading every 15 minutes (they lost the pieces
    older than the window, and the overview's consumers panels undercounted)."""
    ledger = UnitLedger("U1")
    written: dict[int, float] = {}  # the unit_energy points as InfluxDB keeps them: last write wins
    counted = 0.0
    for step in range(0, 24 * 4 + 1):  # one day of 15-minute steps
        t = T0 + step * 15 * MIN
        readings = [reading(t, 1000.0 + 10 * step, meter="E1")]
        if step % 24 == 0:  # every 6 h
            readings.append(reading(t, 5000.0 + 60 * step, meter="E2"))
        result = apply(ledger, *readings)
        counted += sum(p.tce for p in result.counted) - sum(p.tce for p in result.withdrawn)
        written.update({iv.start_ms: iv.tce for iv in result.intervals})
    assert sum(written.values()) == pytest.approx(counted, rel=1e-12)
    assert counted == pytest.approx((10 + 60) * 96 * KGCE_PER_KWH / 1000, rel=1e-12)


def test_a_meter_silent_for_a_year_gives_hundreds_of_pieces_with_the_whole_quantity() -> None:
    year = 365 * 24 * 60 * MIN
    pieces = split_segment(Segment(T0 - year, T0 + 7 * MIN, 365_000.0))
    assert len(pieces) < 600  # one a day, then one per interval over the last two days
    assert sum(q for _, q in pieces) == pytest.approx(365_000.0, rel=1e-12)
    ends = [end for end, _ in pieces]
    assert ends == sorted(set(ends)) and ends[-1] == T0 + 7 * MIN
    fine = [end for end in ends if end > T0 - FINE_SPAN_MS]
    assert all(b - a == 15 * MIN for a, b in itertools.pairwise(fine[:-1]))
    assert [q for _, q in pieces[1:3]] == pytest.approx([q for _, q in pieces[2:4]], rel=1e-9)  # whole days


def points(ledger: UnitLedger, *results: Any) -> list[tuple[int, float, bool]]:
    """The `energy` points the results wrote, then those of the open interval (what a worker that
    has caught up writes): (interval start, qty, estimated)."""
    written = [p for result in results for p in result.energy] + ledger.open_points()
    return [(p.start_ms, p.qty, p.estimated) for p in written]


def test_a_gap_over_several_intervals_is_split_across_them_and_marked_estimated() -> None:
    ledger = UnitLedger("U1")
    apply(ledger, reading(T0, 1000.0))
    result = apply(ledger, reading(T0 + 45 * MIN, 1090.0))  # 90 kWh over three intervals
    # one point per interval, at its start: the two the reading closed, then the open one
    assert [(p.start_ms, p.qty, p.estimated) for p in result.energy] == [
        (T0, 30.0, True),
        (T0 + 15 * MIN, 30.0, True),
    ]
    assert points(ledger) == [(T0 + 30 * MIN, 30.0, True)]
    assert [iv.start_ms for iv in result.intervals] == [T0, T0 + 15 * MIN, T0 + 30 * MIN]
    for iv in result.intervals:
        assert iv.tce == pytest.approx(30 * KGCE_PER_KWH / 1000, rel=1e-12)


def test_a_late_reading_corrects_the_interval_it_belongs_to_and_keeps_the_total() -> None:
    ledger = UnitLedger("U1")
    apply(ledger, reading(T0, 1000.0))
    apply(ledger, reading(T0 + 30 * MIN, 1060.0))  # 60 kWh, split 30/30 over two intervals
    assert ledger.intervals[T0][0] == pytest.approx(30 * KGCE_PER_KWH / 1000, rel=1e-12)
    late = apply(ledger, reading(T0 + 15 * MIN, 1045.0))  # really 45 then 15
    assert ledger.intervals[T0][0] == pytest.approx(45 * KGCE_PER_KWH / 1000, rel=1e-9)
    assert ledger.intervals[T0 + 15 * MIN][0] == pytest.approx(15 * KGCE_PER_KWH / 1000, rel=1e-9)
    # The closed interval rewritten, now exact; the open one exact too.
    assert [(p.start_ms, p.qty, p.estimated) for p in late.energy] == [(T0, 45.0, False)]
    assert points(ledger) == [(T0 + 15 * MIN, 15.0, False)]


def test_readings_behind_the_lateness_window_are_rejected() -> None:
    ledger = UnitLedger("U1")
    apply(ledger, reading(T0 + 200 * MIN, 1000.0))
    result = apply(ledger, reading(T0, 10.0, meter="E2"))
    assert [r.rule for r in result.rejections] == ["too_late"]


def test_meter_events_and_registry_limits() -> None:
    info = UnitInfo(
        unit_id="U1",
        name="n",
        region="江苏",
        grid_region="华东",
        industry="steel",
        meters=(MeterInfo(meter_id="E1", uom="MWh", register_max=100.0, max_per_hour=6.0),),
    )
    ledger = UnitLedger("U1")
    apply(ledger, reading(T0, 99_990.0), info=info)  # the limits are in MWh: 100,000 kWh register
    rolled = apply(ledger, reading(T0 + MIN, 20.0), info=info)
    assert [e.event for e in rolled.events] == ["rollover"] and rolled.counted[0].qty == 30.0
    jump = apply(ledger, reading(T0 + 2 * MIN, 5_000.0), info=info)  # 4,980 kWh in a minute > 6 MWh/h
    assert [r.rule for r in jump.rejections] == ["implausible_rate"]
    swap = apply(ledger, reading(T0 + 3 * MIN, 1.0, event="meter_swap", old_value=95.0), info=info)
    assert [e.event for e in swap.events] == ["meter_swap"] and swap.counted[0].qty == 75.0
    assert points(ledger) == [(T0, 105.0, False)]  # the interval's point holds both


def test_replaying_a_message_rewrites_the_same_points_and_counts_nothing() -> None:
    ledger = UnitLedger("U1")
    msgs = [(reading(T0 + i * 5 * MIN, 1000.0 + i * 7),) for i in range(10)]
    first = [apply(ledger, *m) for m in msgs]
    final = {p.start_ms: p for r in first for p in r.energy} | {p.start_ms: p for p in ledger.open_points()}
    totals = {k: list(v) for k, v in ledger.intervals.items()}
    again = [apply(ledger, *m) for m in msgs]
    assert ledger.intervals == totals
    rewritten = [p for r in again for p in r.energy]
    assert rewritten and all(p == final[p.start_ms] for p in rewritten)  # closed ones, unchanged
    assert ledger.open_points() == [final[T0 + 30 * MIN]]
    assert sum(r.repeats for r in again) == 10 and not any(r.counted for r in again)


def test_interval_points_stay_on_interval_starts() -> None:
    ledger = UnitLedger("U1")
    apply(ledger, reading(T0 + 7 * MIN, 3.0, kind="interval"))
    assert list(ledger.intervals) == [T0] and T0 % INTERVAL_MS == 0


def test_a_reading_at_midnight_is_accounted_on_the_day_it_closes() -> None:
    # Fresh water changed edition at 2021-04-01 00:00 China time (0.2571 → 0.0857 kgce/t). The
    # quarter hour ending at that midnight was used on 31 March, under the old edition.
    midnight = 1_617_206_400_000  # 2021-04-01T00:00:00+08:00
    ledger = UnitLedger("U1")
    water = {"meter_id": "W1", "energy": "fresh_water", "kind": "interval", "uom": "t", "value": 100.0}
    result = ledger.apply(
        ParsedMessage(
            "U1",
            "t",
            0,
            readings=[
                Reading.model_validate(water | {"ts": midnight}),
                Reading.model_validate(water | {"ts": midnight + 15 * MIN}),
            ],
        ),
        ACCOUNTANT,
        POLICY,
    )
    written = result.energy + ledger.open_points()
    assert [p.start_ms for p in written] == [midnight - 15 * MIN, midnight]
    assert [p.tce for p in written] == pytest.approx([100 * 0.2571 / 1000, 100 * 0.0857 / 1000])


def test_an_interval_reading_with_its_start_is_spread_over_its_period() -> None:
    ledger = UnitLedger("U1")
    day = {
        "meter_id": "C1",
        "energy": "raw_coal",
        "kind": "interval",
        "uom": "t",
        "value": 96.0,
        "ts": T0 + 24 * 60 * MIN,
        "start": T0,
    }
    result = ledger.apply(
        ParsedMessage("U1", "t", 0, readings=[Reading.model_validate(day)]),
        ACCOUNTANT,
        LedgerPolicy(lateness_ms=48 * 60 * MIN, hourly_tce_ceiling=25.0),
    )
    written = result.energy + ledger.open_points()
    assert len(result.energy) == 95 and len(written) == 96  # the last interval is still open
    assert all(p.qty == pytest.approx(1.0) and p.estimated for p in written)
    assert sum(p.qty for p in written) == pytest.approx(96.0, rel=1e-12)
    # a day's coal spread out: 4 t an hour, 2.86 tce/h, no hourly-ceiling alert
    assert not result.alerts


def test_start_is_only_for_interval_readings_before_ts() -> None:
    from pydantic import ValidationError

    for bad in ({"kind": "cumulative", "start": T0}, {"kind": "interval", "start": T0 + MIN}):
        with pytest.raises(ValidationError):
            Reading.model_validate(
                {"meter_id": "C1", "energy": "raw_coal", "value": 1.0, "uom": "t", "ts": T0 + MIN} | bad
            )


def test_a_steady_load_over_the_hourly_ceiling_raises_once_and_does_not_flap() -> None:
    """A unit using 30 tce/h steadily, read every minute, against a 25 tce/h ceiling: one raise, no
    resolve at each interval start (the new interval starts nearly empty: grading the running hour
    alone resolved the alert every 15 minutes and raised it again as the interval filled). When the
    load drops to 10 tce/h the alert resolves once."""
    policy = LedgerPolicy(lateness_ms=120 * MIN, hourly_tce_ceiling=25.0)
    kwh_per_min = 30.0 / 60 * 1000 / KGCE_PER_KWH  # 30 tce/h of electricity
    ledger, value, states = UnitLedger("U1"), 0.0, []
    for minute in range(4 * 60):
        if minute == 150:
            kwh_per_min /= 3  # 10 tce/h
        value += kwh_per_min if minute else 0.0
        msg = ParsedMessage("U1", "t", 0, readings=[reading(T0 + minute * MIN, value)])
        states += [a.state for a in ledger.apply(msg, ACCOUNTANT, policy).alerts]
    assert states == ["raised", "resolved"]


def test_a_meter_keeps_only_the_intervals_a_late_reading_can_still_change() -> None:
    ledger = UnitLedger("U1")
    for minute in range(4 * 60 + 1):  # four hours, a reading a minute; the lateness window is 2 h
        apply(ledger, reading(T0 + minute * MIN, 1000.0 + minute))
    kept = ledger.sums["E1"].starts_from(0)
    oldest = ledger.meters["E1"].series.oldest_ts()
    assert oldest is not None and kept[0] <= oldest < kept[0] + INTERVAL_MS + 32 * MIN
    assert len(kept) <= 12  # 2 h of intervals, plus those before the next prune of the series
    late = apply(ledger, reading(T0 + 4 * 60 * MIN - 110 * MIN + 30_000, 1000.0 + 130.5))
    # minute 130½: its closed interval (2:00, 2:15] is written again, still 15 kWh
    assert [(p.start_ms, p.qty) for p in late.energy] == [(T0 + 2 * 60 * MIN, pytest.approx(15.0))]
    again = UnitLedger.from_json(ledger.to_json())
    assert again.sums == ledger.sums and again.open_points() == ledger.open_points()
