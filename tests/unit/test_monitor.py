"""The unit monitor and what the ledger hands it: counted / withdrawn pieces, CT/PT multipliers and
sub-meters; booking into periods, output replacement, grading with levels and hysteresis, and the
archive + journal storage with its restore cases."""

from __future__ import annotations

import copy
from collections.abc import Iterable

import orjson
import pytest

from energy.intervals import INTERVAL_MS
from energy.ledger import EnergyPoint, UnitLedger
from energy.messages import DUAL_CONTROL
from energy.monitor import UnitHistory, UnitMonitor, UnitStatus
from energy.output import OutputItem, output_message, parse_output
from energy.registry import MeterInfo, ProductInfo, UnitInfo, WarningThresholds, YearTargets
from tests.unit.test_ledger import KGCE_PER_KWH, MIN, T0, apply, reading
from tests.unit.test_quota import t

HOUR = 60 * MIN
#: 4.48 tce an hour all year is 39,244.8 tce (4.48 × 24 × 365): 112 % of a 35,040 tce cap.
RATE_112 = 4.48
CAP = 35_040.0
PROJECTED_TCE = RATE_112 * 24 * 365
#: Two levels only (red at 100 % projected, else green), 2 points of hysteresis, 60 minutes' hold.
TWO_LEVELS = WarningThresholds(yellow_projected_pct=100.0)


def unit(cap: float = CAP, thresholds: WarningThresholds | None = None, **extra: object) -> UnitInfo:
    return UnitInfo.model_validate(
        {
            "unit_id": "U1",
            "name": "甲水泥厂",
            "region": "江苏",
            "grid_region": "华东",
            "industry": "cement",
            "targets": [YearTargets(year=2026, energy_cap_tce=cap)],
            "thresholds": thresholds or WarningThresholds(),
        }
        | extra
    )


def point(ts: int, tce: float, meter: str = "E1", energy: str = "electricity") -> EnergyPoint:
    return EnergyPoint("U1", meter, energy, ts, 0.0, tce, 2 * tce)


def history(monitor: UnitMonitor) -> UnitHistory:
    """The monitor's history with every piece booked so far added (pieces wait until ``flush``)."""
    monitor.flush()
    return monitor.history


def book_steady(monitor: UnitMonitor, info: UnitInfo, start: int, end: int, per_interval: float) -> None:
    """Book ``per_interval`` tce for every 15 minutes ending in (start, end], without grading."""
    pieces = [point(ts, per_interval) for ts in range(start + INTERVAL_MS, end + 1, INTERVAL_MS)]
    monitor.book(pieces, [], info)


def feed(monitor: UnitMonitor, info: UnitInfo, start: int, end: int, per_interval: float) -> list[UnitStatus]:
    """Book 15-minute pieces ending in (start, end] and grade after each, as the worker does (the
    newest data time is the piece's own)."""
    statuses = []
    for ts in range(start + INTERVAL_MS, end + 1, INTERVAL_MS):
        monitor.book([point(ts, per_interval)], [], info)
        status = monitor.evaluate(ts, info)
        assert status is not None
        statuses.append(status)
    return statuses


def alerts(statuses: Iterable[UnitStatus]) -> list[tuple[int, str, str]]:
    """The level alerts of ``statuses`` (the operational rules' are not graded here)."""
    return [(s.at_ts_ms, a.severity, a.state) for s in statuses for a in s.alerts if a.rule == DUAL_CONTROL]


# --- what the ledger gives the monitor --------------------------------------------------------------


def test_a_ct_multiplier_scales_a_register_delta() -> None:
    info = unit(meters=[MeterInfo(meter_id="E1", multiplier=40.0)])
    ledger = UnitLedger("U1")
    apply(ledger, reading(T0, 1000.0), info=info)  # baseline: 40,000 kWh through the CT
    result = apply(ledger, reading(T0 + 5 * MIN, 1010.0), info=info)
    # 10 kWh on the dial × 40 = 400 kWh; × 0.1229 kgce/kWh / 1000 = 0.04916 tce
    assert [p.qty for p in result.counted] == [400.0]
    assert result.counted[0].tce == pytest.approx(0.04916, rel=1e-12)
    assert ledger.intervals[T0][0] == pytest.approx(0.04916, rel=1e-12)


def test_a_sub_meter_writes_points_and_counts_but_stays_out_of_the_unit_totals() -> None:
    info = unit(meters=[MeterInfo(meter_id="E1"), MeterInfo(meter_id="S1", role="sub")])
    ledger = UnitLedger("U1")
    result = apply(
        ledger,
        reading(T0 + 5 * MIN, 100.0, kind="interval"),
        reading(T0 + 5 * MIN, 40.0, meter="S1", kind="interval"),
        info=info,
    )
    assert [(p.meter_id, p.qty) for p in ledger.open_points()] == [("E1", 100.0), ("S1", 40.0)]
    assert [(p.meter_id, p.qty) for p in result.counted] == [("E1", 100.0), ("S1", 40.0)]
    assert ledger.intervals[T0][0] == pytest.approx(100 * KGCE_PER_KWH / 1000, rel=1e-12)  # 0.01229, no 40
    assert [iv.tce for iv in result.intervals] == pytest.approx([0.01229], rel=1e-12)


def test_repeats_are_written_again_but_neither_counted_nor_withdrawn() -> None:
    ledger = UnitLedger("U1")
    apply(ledger, reading(T0, 1000.0))
    msg = (reading(T0 + 30 * MIN, 1060.0), reading(T0 + 10 * MIN, 5.0, meter="E2", kind="interval"))
    first = apply(ledger, *msg)
    again = apply(ledger, *msg)
    assert len(first.counted) == 3 and first.withdrawn == []  # 30 + 30 kWh over two intervals, and 5
    assert again.repeats == 2 and again.counted == [] and again.withdrawn == []
    assert again.energy == first.energy


def test_a_late_reading_withdraws_the_pieces_it_splits_and_counts_the_same_total_again() -> None:
    ledger = UnitLedger("U1")
    apply(ledger, reading(T0, 1000.0))
    original = apply(ledger, reading(T0 + 30 * MIN, 1060.0)).counted  # 30 + 30 kWh
    before = sum(tce for tce, _ in ledger.intervals.values())
    late = apply(ledger, reading(T0 + 15 * MIN, 1045.0))  # really 45 then 15
    assert late.withdrawn == original
    assert [(p.ts_ms, p.qty) for p in late.withdrawn] == [(T0 + 15 * MIN, 30.0), (T0 + 30 * MIN, 30.0)]
    assert [(p.ts_ms, p.qty) for p in late.counted] == [(T0 + 15 * MIN, 45.0), (T0 + 30 * MIN, 15.0)]
    assert sum(p.qty for p in late.counted) == sum(p.qty for p in late.withdrawn) == 60.0
    assert sum(p.tce for p in late.counted) == pytest.approx(sum(p.tce for p in original), rel=1e-12)
    assert sum(tce for tce, _ in ledger.intervals.values()) == pytest.approx(before, rel=1e-12)
    # booked into a monitor, the late reading moves 15 kWh between intervals and no total changes
    monitor = UnitMonitor("U1")
    monitor.book(original, [], None)
    monitor.book(late.counted, late.withdrawn, None)
    periods = history(monitor).periods
    assert periods.totals("day", T0 + 30 * MIN).tce == pytest.approx(60 * KGCE_PER_KWH / 1000, abs=1e-6)
    assert periods.totals("interval", T0 + 15 * MIN).tce == pytest.approx(0.0055305, abs=1e-6)  # 45 kWh


# --- booking ----------------------------------------------------------------------------------------


def test_booking_routes_sub_excluded_and_product_meters() -> None:
    info = unit(
        meters=[
            MeterInfo(meter_id="E1"),
            MeterInfo(meter_id="S1", role="sub"),
            MeterInfo(meter_id="G1", excluded="feedstock"),
        ],
        products=[ProductInfo(product_id="clinker", name="熟料", uom="t", meters=("S1", "G1"))],
    )
    monitor = UnitMonitor("U1")
    ts = t("2026-03-01T10:15")
    monitor.book(
        [point(ts, 10.0), point(ts, 4.0, "S1"), point(ts, 3.0, "G1", "natural_gas"), point(ts, 1.0, "X9")],
        [point(ts, 0.5, "S1")],
        info,
    )
    day = history(monitor).periods.totals("day", ts)
    assert day.tce == 11.0 and day.by_energy == {"electricity": 11.0}  # E1 and the unregistered X9
    assert day.excluded_tce == 3.0 and day.excluded_by_kind == {"feedstock": 3.0}
    assert day.product_tce == {"clinker": 4.0 - 0.5 + 3.0}  # S1 and G1, less S1's withdrawal
    assert day.co2_t == 22.0 and day.product_co2_t == {"clinker": 13.0}
    assert history(monitor).periods.to_json() == monitor.journal.periods.to_json()  # (flushed first)


def test_an_output_item_seen_again_replaces_itself() -> None:
    monitor = UnitMonitor("U1")
    ts = t("2026-03-01T00:00")

    def send(seq: int, quantity: float, value: float) -> None:
        item = {"ts": ts, "product_id": "clinker", "quantity": quantity, "value_10k_yuan": value}
        monitor.apply_output(parse_output(orjson.loads(output_message("U1", "erp", seq, [item]))).items)

    send(1, 5200.0, 1480.5)
    send(1, 5200.0, 1480.5)  # a replay
    day = history(monitor).periods.totals("day", ts)
    assert day.output == {"clinker": 5200.0} and day.output_value_10k_yuan == 1480.5
    archive = orjson.loads(orjson.dumps(monitor.fold()))
    send(2, 5150.0, 1470.0)  # a correction: replaces, and the journal holds only the difference
    monitor.apply_output([OutputItem.model_validate({"ts": ts, "value_10k_yuan": 20.0})])  # another key
    day = history(monitor).periods.totals("day", ts)
    assert day.output == {"clinker": 5150.0} and day.output_value_10k_yuan == 1490.0
    assert monitor.journal.periods.totals("day", ts).output == {"clinker": -50.0}
    monitor, warning = UnitMonitor.restore("U1", stored(monitor), archive)
    assert warning is None
    assert history(monitor).periods.totals("day", ts) == day
    send(2, 5150.0, 1470.0)  # replayed after a restart: the restored monitor knows the item
    assert history(monitor).periods.totals("day", ts) == day


def test_an_output_item_older_than_the_memory_is_refused_not_counted_again_after_a_restart() -> None:
    # (the restored monitor had forgotten the item, and the replay was added a second time)
    monitor = UnitMonitor("U1")
    old = t("2025-01-31T00:00")
    monitor.apply_output([OutputItem.model_validate({"ts": old, "value_10k_yuan": 100.0})])
    later = t("2026-03-01T00:00")
    for k in range(64):  # 65 items in all; the newest on 3 May 2026, 457 days after the old one
        monitor.apply_output(
            [OutputItem.model_validate({"ts": later + k * 24 * HOUR, "value_10k_yuan": 1.0})]
        )
    archive = orjson.loads(orjson.dumps(monitor.fold()))
    monitor, _ = UnitMonitor.restore("U1", stored(monitor), archive)
    [refused] = monitor.apply_output([OutputItem.model_validate({"ts": old, "value_10k_yuan": 100.0})])
    assert refused.rule == "too_late" and refused.payload["ts"] == old
    assert history(monitor).periods.totals("year", old).output_value_10k_yuan == 100.0
    assert history(monitor).periods.totals("month", old).output_value_10k_yuan == 100.0


# --- grading ----------------------------------------------------------------------------------------


def test_a_unit_heading_for_112_percent_of_its_cap_is_raised_red_in_chinese() -> None:
    info = unit()
    monitor = UnitMonitor("U1")
    book_steady(monitor, info, t("2026-01-01T00:00"), t("2026-03-01T00:00"), RATE_112 / 4)
    monitor.book([point(t("2026-03-01T00:10"), 0.0)], [], info)  # the newest reading, nothing used
    status = monitor.evaluate(t("2026-03-01T00:10"), info)
    assert status is not None and status.at_ts_ms == t("2026-03-01T00:10")  # the newest data's time
    # 59 days (31 + 28) at 107.52 tce/day = 6,343.68 tce; schedule 59/365; projection 39,244.8 tce
    assert status.fields["ytd_tce"] == pytest.approx(6343.68, rel=1e-12)
    # the schedule at 00:10 on 1 March: 59 days and 10 minutes of 365 days
    assert status.fields["schedule_pct"] == pytest.approx((59 + 10 / 1440) / 365 * 100, rel=1e-12)
    assert status.fields["used_pct"] == pytest.approx(6343.68 / CAP * 100, rel=1e-12)  # 18.10 %
    assert status.fields["projected_tce"] == pytest.approx(6343.68 / ((59 + 10 / 1440) / 365), rel=1e-12)
    assert status.fields["projected_pct"] == pytest.approx(112.0, abs=0.02)
    assert status.level == "red" and status.levels == {"energy_total": "red"}
    assert status.fields["level"] == "red" and status.fields["energy_total_level"] == "red"
    [alert] = [a for a in status.alerts if a.rule == DUAL_CONTROL]  # (operational alerts aside)
    assert (alert.key, alert.severity, alert.state) == ("U1|dual_control|energy_total", "red", "raised")
    assert alert.value == pytest.approx(status.fields["projected_pct"], abs=1e-6) and alert.threshold == 100.0
    assert "一级预警" in alert.message and "甲水泥厂" in alert.message and "112%" in alert.message
    assert monitor.level() == "red"
    assert monitor.evaluate(t("2026-03-01T00:14"), info) is None  # same interval: graded already


def test_a_unit_on_track_stays_green_and_raises_nothing() -> None:
    info = unit()
    monitor = UnitMonitor("U1")
    # 3.2 tce/h: 28,032 tce a year, 80 % of the cap
    book_steady(monitor, info, t("2026-01-01T00:00"), t("2026-03-01T00:00"), 0.8)
    statuses = feed(monitor, info, t("2026-03-01T00:00"), t("2026-03-03T00:00"), 0.8)
    assert len(statuses) == 2 * 96
    assert alerts(statuses) == []
    assert {s.level for s in statuses} == {"green"}
    assert statuses[-1].fields["projected_pct"] == pytest.approx(80.0, rel=1e-3)
    assert monitor.level() == "green"


def test_a_unit_on_track_stays_green_from_the_first_interval_of_the_year() -> None:
    # (graded at interval_start(newest) with a year to date that already held the newest interval, this
    # unit was projected at 160 % at 00:15 on 1 January and raised red: the year to date and the
    # schedule must be taken at the same time, the newest data's)
    info = unit()
    monitor = UnitMonitor("U1")
    statuses = feed(monitor, info, t("2026-01-01T00:00"), t("2026-01-01T06:00"), 0.8)
    assert statuses[0].at_ts_ms == t("2026-01-01T00:15")
    assert [s.fields["projected_pct"] for s in statuses] == pytest.approx([80.0] * len(statuses), rel=1e-9)
    assert alerts(statuses) == []


def test_a_red_level_resolves_only_when_clear_by_the_hysteresis_for_the_hold() -> None:
    # the projection stays 39,244.8 tce; the cap is revised: 112 %, then 99.5 %, then 97.5 %
    red, just_under, clear = (unit(PROJECTED_TCE / pct * 100, TWO_LEVELS) for pct in (112.0, 99.5, 97.5))
    monitor = UnitMonitor("U1")
    book_steady(monitor, red, t("2026-01-01T00:00"), t("2026-03-01T00:00"), RATE_112 / 4)
    start = t("2026-03-01T00:00")
    first = feed(monitor, red, start, start + HOUR, RATE_112 / 4)
    assert alerts(first) == [(start + INTERVAL_MS, "red", "raised")]
    # 99.5 %: under the 100 % line, but only 0.5 of the 2 points of hysteresis clear, for 4 hours
    under = feed(monitor, just_under, start + HOUR, start + 5 * HOUR, RATE_112 / 4)
    assert [s.fields["projected_pct"] for s in (under[0], under[-1])] == pytest.approx([99.5, 99.5], abs=0.05)
    assert alerts(under) == [] and {s.level for s in under} == {"red"}
    # 97.5 %: 2.5 points clear; resolved 60 minutes after it first was
    cleared = feed(monitor, clear, start + 5 * HOUR, start + 7 * HOUR, RATE_112 / 4)
    assert [s.level for s in cleared[:5]] == ["red"] * 4 + ["green"]
    assert alerts(cleared) == [(cleared[0].at_ts_ms + HOUR, "green", "resolved")]
    assert "预警解除" in cleared[4].alerts[0].message
    assert monitor.level() == "green"


# --- storage ----------------------------------------------------------------------------------------


def stored(monitor: UnitMonitor) -> dict[str, object]:
    """The record as the table gives it back (JSON round trip)."""
    return orjson.loads(orjson.dumps(monitor.to_json()))  # type: ignore[no-any-return]


def same_state(restored: UnitMonitor, live: UnitMonitor, info: UnitInfo, newest: int) -> None:
    assert history(restored).to_json() == history(live).to_json()
    assert [t.to_json() for t in restored.trackers.values()] == [t.to_json() for t in live.trackers.values()]
    status = restored.evaluate(newest, info)
    assert status is not None and status == copy.deepcopy(live).evaluate(newest, info)


BATCHES = [
    (t("2026-01-01T00:00"), t("2026-03-01T00:00")),
    (t("2026-03-01T00:00"), t("2026-03-01T02:00")),
    (t("2026-03-01T02:00"), t("2026-03-01T03:00")),
]


def batch(monitor: UnitMonitor, info: UnitInfo, k: int) -> None:
    start, end = BATCHES[k]
    book_steady(monitor, info, start, end, RATE_112 / 4)
    monitor.apply_output([OutputItem.model_validate({"ts": end, "value_10k_yuan": 100.0 + k})])
    monitor.evaluate(end, info)


def test_restore_for_each_fit_of_archive_and_record() -> None:
    info = unit(thresholds=TWO_LEVELS)
    live, reference = UnitMonitor("U1"), UnitMonitor("U1")  # reference: never folded, batches 0 and 1
    batch(live, info, 0)
    archive1 = orjson.loads(orjson.dumps(live.fold()))
    batch(live, info, 1)
    record1 = stored(live)
    archive2 = orjson.loads(orjson.dumps(live.fold()))
    batch(live, info, 2)
    record2 = stored(live)
    for k in (0, 1):
        batch(reference, info, k)
    newest = BATCHES[2][1] + HOUR

    restored, warning = UnitMonitor.restore("U1", record2, archive2)  # archive and record fit
    assert warning is None and restored.fold_seq == 2
    same_state(restored, live, info, newest)

    restored, warning = UnitMonitor.restore("U1", record2, archive1)  # fold 2's archive write lost
    assert warning is None and restored.fold_seq == 2
    same_state(restored, live, info, newest)
    assert restored.fold()["seq"] == 3  # the next fold writes the whole history again

    # the record written after fold 2 lost: the archive has the journal; the batch is done again
    restored, warning = UnitMonitor.restore("U1", record1, archive2)
    assert warning is None and restored.fold_seq == 2 and restored.journal_buckets() == 0
    same_state(restored, reference, info, newest - HOUR)
    batch(restored, info, 2)
    assert history(restored).to_json() == history(live).to_json()

    _, warning = UnitMonitor.restore("U1", record2, {**archive1, "seq": 0})  # two folds apart
    assert warning is not None and "0" in warning and "2" in warning


def test_folding_changes_no_grade() -> None:
    info = unit(thresholds=TWO_LEVELS)
    plain, folded = UnitMonitor("U1"), UnitMonitor("U1")
    book_steady(plain, info, BATCHES[0][0], BATCHES[0][1], RATE_112 / 4)
    book_steady(folded, info, BATCHES[0][0], BATCHES[0][1], RATE_112 / 4)
    archive: dict[str, object] | None = None
    ts = BATCHES[0][1]
    # red, then the cap is revised so that it resolves after the hold: trackers cross restores mid-hold
    for step in range(24):
        current = unit(PROJECTED_TCE / (112.0 if step < 4 else 97.0) * 100, TWO_LEVELS)
        if step % 3 == 0:
            archive = orjson.loads(orjson.dumps(folded.fold()))
        if step % 2 == 0:
            folded, warning = UnitMonitor.restore("U1", stored(folded), archive)
            assert warning is None
        # every 5th step a late reading splits the last piece: 1/4 and 3/4 of it, 5 minutes apart
        split = [point(ts - 5 * MIN, RATE_112 / 16), point(ts, 3 * RATE_112 / 16)]
        withdrawn = [point(ts, RATE_112 / 4)] if step % 5 == 4 else []
        for m in (plain, folded):
            m.book([point(ts + INTERVAL_MS, RATE_112 / 4), *(split if withdrawn else [])], withdrawn, current)
        ts += INTERVAL_MS
        assert folded.evaluate(ts, current) == plain.evaluate(ts, current), step
    assert history(folded).to_json() == history(plain).to_json()
    assert plain.level() == "green"  # the resolve did happen inside the run


def test_an_output_item_far_ahead_of_the_energy_data_is_refused() -> None:
    info = unit()
    monitor = UnitMonitor("U1")
    book_steady(monitor, info, t("2026-03-01T00:00"), t("2026-03-02T00:00"), 0.5)
    month_end = OutputItem.model_validate({"ts": t("2026-04-01T00:00"), "value_10k_yuan": 10.0})
    typo = OutputItem.model_validate({"ts": t("2036-04-01T00:00"), "value_10k_yuan": 10.0})
    [refused] = monitor.apply_output([month_end, typo])
    assert refused.rule == "implausible_time" and refused.payload["ts"] == t("2036-04-01T00:00")
    assert history(monitor).periods.totals("month", t("2026-03-31T12:00")).output_value_10k_yuan == 10.0
    assert history(monitor).periods.newest_ts_ms() == t("2026-03-31T23:45")


def test_unit_status_carries_the_day_month_quarter_and_rolling_totals() -> None:
    info = unit()
    monitor = UnitMonitor("U1")
    statuses = feed(monitor, info, t("2026-03-01T00:00"), t("2026-03-03T00:00"), 0.8)
    last = statuses[-1].fields  # at 00:00 on 3 March: the data of 1 and 2 March, 96 × 0.8 tce a day
    assert last["day_tce"] == pytest.approx(76.8, rel=1e-9)  # 2 March, the day that 00:00 closes
    assert last["rolling_24h_tce"] == pytest.approx(76.8, rel=1e-9)
    assert [last[k] for k in ("month_tce", "quarter_tce", "rolling_30d_tce")] == pytest.approx([153.6] * 3)
    assert last["day_co2_t"] == pytest.approx(2 * 76.8, rel=1e-9)  # the test pieces carry 2 t CO₂ per tce


def test_unit_status_carries_each_products_value_and_its_benchmark_baseline_and_limit() -> None:
    clinker = ProductInfo(
        product_id="clinker",
        name="熟料",
        uom="t",
        value_uom="kgce/t",
        benchmark=100.0,
        baseline=110.0,
        limit=120.0,
    )
    glass = ProductInfo(product_id="glass", name="平板玻璃", uom="重量箱", value_uom="kWh/重量箱", limit=13.0)
    info = unit(products=[clinker, glass])
    monitor = UnitMonitor("U1")
    start, end = t("2026-03-01T00:00"), t("2026-03-02T00:00")
    book_steady(monitor, info, start, end, 1.0)  # 96 tce
    monitor.apply_output([OutputItem.model_validate({"ts": end, "product_id": "clinker", "quantity": 800.0})])
    status = monitor.evaluate(end, info)
    assert status is not None
    products = {
        k: v for k, v in status.fields.items() if k.startswith("product_") and not k.endswith("_level")
    }
    assert products == {
        "product_clinker_value": pytest.approx(96 * 1000 / 800, rel=1e-9),  # kgce/t, like its standards
        "product_clinker_benchmark": 100.0,
        "product_clinker_baseline": 110.0,
        "product_clinker_limit": 120.0,
        "product_glass_limit": 13.0,  # not computable from tce (kWh per 重量箱): the standard alone
    }


def test_the_days_rejection_counts_are_stored_with_the_record_and_restored() -> None:
    monitor = UnitMonitor("U1")
    monitor.rejections.advance(t("2026-03-02T10:00"))
    for rule in ("too_late", "bad_reading"):
        monitor.rejections.count(rule)
    restored, warning = UnitMonitor.restore("U1", stored(monitor), None)
    assert warning is None and restored.rejections.to_json() == [t("2026-03-02T00:00"), 1, 2]
    assert restored.rejections.take_changed() == []  # written by the batch that counted them
    old_record = {k: v for k, v in stored(monitor).items() if k != "rejections"}  # from before the counts
    assert UnitMonitor.restore("U1", old_record, None)[0].rejections.to_json() == [None, 0, 0]
