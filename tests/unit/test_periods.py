"""A unit's running totals by period: bucket boundaries in China time, rolling windows, the same
period last year, exactness under withdrawal, retention and the table-store form."""

import random
from datetime import date, datetime, timedelta

import orjson
import pytest

from energy.periods import (
    KEEP_DAYS,
    KEEP_HOURS,
    KEEP_INTERVALS,
    KEEP_MONTHS,
    KEEP_YEARS,
    PERIODS,
    Period,
    UnitPeriods,
    product_ids_for_meter,
)
from energy.registry import MeterInfo, ProductInfo, UnitInfo


def t(text: str) -> int:
    """Epoch ms of a local (UTC+08:00) time written without its offset."""
    return int(datetime.fromisoformat(text + "+08:00").timestamp() * 1000)


def daily_history(periods: UnitPeriods, first: date, last: date, tce: float = 1.0) -> None:
    """One piece of ``tce`` per day, ending at 00:15 of that day (so the data covers each day from 00:00)."""
    day = first
    while day <= last:
        periods.add(t(f"{day.isoformat()}T00:15"), "electricity", tce, tce * 2)
        day += timedelta(days=1)


def test_a_piece_at_midnight_counts_on_the_day_it_closes() -> None:
    p = UnitPeriods()
    p.add(t("2026-03-02T00:00"), "electricity", 1.0, 0.5)  # closes 23:45–24:00 on 1 March
    p.add(t("2026-03-02T00:15"), "electricity", 2.0, 1.0)  # closes 00:00–00:15 on 2 March
    assert p.totals("day", t("2026-03-01T12:00")).tce == 1.0
    # asked at 00:00, the day just closed is 1 March; from 00:00:00.001 on it is 2 March
    assert p.totals("day", t("2026-03-02T00:00")).tce == 1.0
    assert p.totals("day", t("2026-03-02T00:00") + 1).tce == 2.0
    assert p.totals("interval", t("2026-03-02T00:15")).tce == 2.0
    assert p.totals("interval", t("2026-03-02T00:07")).tce == 2.0  # the interval 00:00–00:15 contains it


def test_month_quarter_and_year_at_their_boundaries() -> None:
    p = UnitPeriods()
    p.add(t("2026-01-01T00:15"), "raw_coal", 10.0, 25.0)
    p.add(t("2026-03-31T23:00"), "raw_coal", 5.0, 12.5)
    p.add(t("2026-04-01T00:00"), "raw_coal", 1.0, 2.5)  # closes 31 March → Q1
    p.add(t("2026-04-01T00:15"), "raw_coal", 2.0, 5.0)  # Q2
    at_q1_end = t("2026-04-01T00:00")
    assert p.totals("month", at_q1_end).tce == 5.0 + 1.0
    assert p.totals("quarter", at_q1_end).tce == 10.0 + 5.0 + 1.0
    assert p.totals("year", at_q1_end).tce == 10.0 + 5.0 + 1.0 + 2.0
    assert p.totals("quarter", t("2026-04-01T00:15")).tce == 2.0
    assert p.totals("year", at_q1_end).co2_t == 25.0 + 12.5 + 2.5 + 5.0


def test_excluded_energy_is_kept_apart_from_the_dual_control_total() -> None:
    p = UnitPeriods()
    at = t("2026-05-01T10:00")
    p.add(at, "natural_gas", 30.0, 60.0)
    p.add(at, "natural_gas", 12.0, 20.0, excluded="feedstock")
    p.add(at, "electricity", 8.0, 0.0, excluded="renewable")
    p.add(at, "electricity", 5.0, 4.0)
    day = p.totals("day", at)
    assert day.tce == 30.0 + 5.0
    assert day.co2_t == 60.0 + 4.0
    assert day.by_energy == {"natural_gas": 30.0, "electricity": 5.0}
    assert day.excluded_tce == 12.0 + 8.0
    assert day.excluded_co2_t == 20.0
    assert day.excluded_by_energy == {"natural_gas": 12.0, "electricity": 8.0}
    assert day.excluded_by_kind == {"feedstock": 12.0, "renewable": 8.0}


def test_add_then_withdraw_leaves_every_total_exactly_as_it_was() -> None:
    p = UnitPeriods()
    p.add(t("2026-05-01T10:00"), "electricity", 0.1, 0.3)
    p.add(t("2026-05-01T10:15"), "natural_gas", 0.2, 0.7)
    before = orjson.dumps(p.to_json())
    at = t("2026-05-01T10:15")
    periods: tuple[Period, ...] = ("interval", "day", "rolling_24h", "year")
    totals_before = {period: p.totals(period, at) for period in periods}
    awkward = [0.2, 1e-7, 12345.678901, 1 / 3, 2.675, 0.1 + 0.2]
    for x in awkward:
        p.add(t("2026-05-01T10:15"), "electricity", x, x * 0.581)
    for x in reversed(awkward):
        p.add(t("2026-05-01T10:15"), "electricity", -x, -x * 0.581)
    assert orjson.dumps(p.to_json()) == before
    for period, totals in totals_before.items():
        assert p.totals(period, at) == totals  # equal, not approximately equal
    # 0.1 + 0.2 == 0.30000000000000004 in floats; the millionths give exactly 0.3
    assert p.totals("day", at).tce == 0.3


def test_totals_do_not_depend_on_the_order_pieces_arrive_in() -> None:
    rng = random.Random(7)
    pieces = [(t("2026-05-01T00:15") + rng.randrange(96) * 900_000, rng.uniform(-5, 50)) for _ in range(500)]
    a, b = UnitPeriods(), UnitPeriods()
    for ts, x in pieces:
        a.add(ts, "electricity", x, x / 2)
    rng.shuffle(pieces)
    for ts, x in pieces:
        b.add(ts, "electricity", x, x / 2)
    at = t("2026-05-02T00:00")
    assert a.totals("day", at) == b.totals("day", at)
    assert a.totals("rolling_24h", at) == b.totals("rolling_24h", at)


def test_rolling_24_hours_across_midnight() -> None:
    p = UnitPeriods()
    p.add(t("2026-03-01T01:00"), "electricity", 7.0, 0.0)  # hour 00:00–01:00 on 1 March
    p.add(t("2026-03-01T02:00"), "electricity", 5.0, 0.0)  # hour 01:00–02:00
    p.add(t("2026-03-01T22:00"), "electricity", 2.0, 0.0)
    p.add(t("2026-03-02T01:00"), "electricity", 3.0, 0.0)  # hour 00:00–01:00 on 2 March
    at = t("2026-03-02T01:00")
    # the current hour (00:00–01:00 on 2 March) and the 23 before: from 01:00 on 1 March on
    assert p.totals("rolling_24h", at).tce == 5.0 + 2.0 + 3.0
    assert p.totals("day", at).tce == 3.0
    assert p.totals("day", t("2026-03-01T12:00")).tce == 7.0 + 5.0 + 2.0


def test_rolling_30_days_across_a_month_end() -> None:
    p = UnitPeriods()
    p.add(t("2026-02-08T12:00"), "raw_coal", 100.0, 0.0)  # 30 days back from 10 March is 9 February
    p.add(t("2026-02-09T00:15"), "raw_coal", 10.0, 0.0)
    p.add(t("2026-02-28T12:00"), "raw_coal", 20.0, 0.0)
    p.add(t("2026-03-10T11:00"), "raw_coal", 30.0, 0.0)
    at = t("2026-03-10T12:00")
    # 10 March − 29 days: 9 days back to 1 March, then 28 February … 9 February (2026 is not a leap year)
    assert p.totals("rolling_30d", at).tce == 10.0 + 20.0 + 30.0
    assert p.totals("month", at).tce == 30.0
    assert p.totals("month", t("2026-02-15T00:00")).tce == 100.0 + 10.0 + 20.0


def test_rolling_30_days_in_a_leap_year() -> None:
    p = UnitPeriods()
    p.add(t("2024-02-09T12:00"), "raw_coal", 100.0, 0.0)
    p.add(t("2024-02-10T12:00"), "raw_coal", 10.0, 0.0)  # 10 March − 29 days = 10 February in 2024
    p.add(t("2024-02-29T12:00"), "raw_coal", 20.0, 0.0)
    p.add(t("2024-03-10T11:00"), "raw_coal", 30.0, 0.0)
    assert p.totals("rolling_30d", t("2024-03-10T12:00")).tce == 10.0 + 20.0 + 30.0


def test_same_period_last_year_counts_last_years_day_in_the_share_elapsed() -> None:
    p = UnitPeriods()
    daily_history(p, date(2025, 1, 1), date(2026, 3, 14), tce=1.0)  # 1 tce every day
    at = t("2026-03-14T12:00")  # noon: half of 14 March elapsed
    year = p.same_period_last_year("year", at)
    assert year is not None
    # 1 January – 13 March 2025 = 31 + 28 + 13 = 72 days, plus half of 14 March
    assert year.tce == pytest.approx(72.5)
    assert year.co2_t == pytest.approx(145.0)
    month = p.same_period_last_year("month", at)
    quarter = p.same_period_last_year("quarter", at)
    day = p.same_period_last_year("day", at)
    rolling = p.same_period_last_year("rolling_30d", at)
    assert month is not None and quarter is not None and day is not None and rolling is not None
    assert month.tce == pytest.approx(13.5)
    assert quarter.tce == pytest.approx(72.5)
    assert day.tce == pytest.approx(0.5)
    assert rolling.tce == pytest.approx(29.5)  # 13 February … 13 March 2025, and half of 14 March
    assert p.same_period_last_year("interval", at) is None
    assert p.same_period_last_year("rolling_24h", at) is None


def test_same_period_last_year_is_none_without_history_covering_it() -> None:
    p = UnitPeriods()
    daily_history(p, date(2025, 1, 2), date(2026, 3, 14))  # data begins on 2 January 2025
    at = t("2026-03-14T12:00")
    assert p.same_period_last_year("year", at) is None  # needs 1 January 2025
    assert p.same_period_last_year("month", at) is not None
    assert UnitPeriods().same_period_last_year("day", at) is None


def test_same_period_last_year_around_29_february() -> None:
    p = UnitPeriods()
    daily_history(p, date(2023, 1, 1), date(2024, 2, 29), tce=1.0)
    leap_day = t("2024-02-29T12:00")
    day = p.same_period_last_year("day", leap_day)
    month = p.same_period_last_year("month", leap_day)
    assert day is not None and month is not None
    assert day.tce == 1.0  # all of 28 February 2023: last year's February is over
    assert month.tce == 28.0
    # 2023-02-28 is more than KEEP_DAYS before 1 March 2025: that history is gone by then
    daily_history(p, date(2024, 3, 1), date(2025, 3, 1), tce=1.0)
    assert p.same_period_last_year("day", leap_day) is None
    year = p.same_period_last_year("year", t("2025-03-01T12:00"))
    assert year is not None
    assert year.tce == pytest.approx(31 + 29 + 0.5)  # 2024 had 29 February


def test_monthly_shares_of_a_whole_year() -> None:
    p = UnitPeriods()
    daily_history(p, date(2025, 1, 1), date(2026, 1, 1), tce=1.0)
    shares = p.monthly_shares(2025)
    assert shares is not None
    assert shares[0] == pytest.approx(31 / 365) and shares[1] == pytest.approx(28 / 365)
    assert sum(shares) == pytest.approx(1.0)
    assert p.monthly_shares(2026) is None  # not over yet
    assert p.monthly_shares(2024) is None  # no data
    whole = p.year_totals(2025)
    assert whole is not None and whole.tce == 365.0
    assert p.year_totals(2026) is None


def test_output_quantity_and_value_per_period() -> None:
    p = UnitPeriods()
    p.add_output(t("2026-03-01T00:00"), "clinker", 1000.0, 350.0)  # closes February
    p.add_output(t("2026-03-02T00:00"), "clinker", 40.0, 14.0)
    p.add_output(t("2026-03-02T00:00"), "cement", 55.5, 20.0)
    p.add_output(t("2026-03-02T00:00"), None, 0.0, 3.0)  # output value without a product
    march = p.totals("month", t("2026-03-02T00:00"))
    assert march.output == {"clinker": 40.0, "cement": 55.5}
    assert march.output_value_10k_yuan == 14.0 + 20.0 + 3.0
    year = p.totals("year", t("2026-03-02T00:00"))
    assert year.output == {"clinker": 1040.0, "cement": 55.5}
    assert year.output_value_10k_yuan == 350.0 + 14.0 + 20.0 + 3.0


def test_product_energy_is_attributed_by_meter() -> None:
    info = UnitInfo(
        unit_id="U1",
        name="某某水泥",
        region="江苏",
        grid_region="华东",
        industry="cement",
        meters=(MeterInfo(meter_id="kiln"), MeterInfo(meter_id="mill", role="sub")),
        products=(
            ProductInfo(product_id="clinker", name="熟料", uom="t", meters=("kiln",)),
            ProductInfo(product_id="cement", name="水泥", uom="t", meters=("kiln", "mill")),
        ),
    )
    assert product_ids_for_meter(info, "kiln") == ("clinker", "cement")
    assert product_ids_for_meter(info, "mill") == ("cement",)
    assert product_ids_for_meter(info, "office") == ()
    p = UnitPeriods()
    p.add_product_energy(t("2026-03-01T10:00"), "clinker", 9.0, 20.0)
    totals = p.totals("day", t("2026-03-01T10:00"))
    assert totals.product_tce == {"clinker": 9.0} and totals.product_co2_t == {"clinker": 20.0}
    assert totals.tce == 0.0  # counts in no unit total


def test_history_is_bounded_and_survives_the_table_store() -> None:
    p = UnitPeriods()
    start = datetime.fromisoformat("2022-01-01T00:15+08:00")
    for k in range(4 * 365 * 4):  # every 6 h for four years
        ts = int((start + timedelta(hours=6 * k)).timestamp() * 1000)
        p.add(ts, "electricity", 1.5, 3.0)
        if k % 8 == 0:
            p.add_output(ts, "steel", 2.0, 1.0)
    doc = p.to_json()
    assert len(doc["i"]) <= KEEP_INTERVALS and len(doc["h"]) <= KEEP_HOURS
    assert len(doc["d"]) <= KEEP_DAYS and len(doc["m"]) <= KEEP_MONTHS and len(doc["y"]) <= KEEP_YEARS
    assert len(orjson.dumps(doc)) < 60_000
    back = UnitPeriods.from_json(orjson.loads(orjson.dumps(doc)))
    assert back.to_json() == doc
    at = int((start + timedelta(hours=6 * (4 * 365 * 4 - 1))).timestamp() * 1000)
    for period in PERIODS:
        assert back.totals(period, at) == p.totals(period, at)
    assert back.same_period_last_year("year", at) == p.same_period_last_year("year", at)
    with pytest.raises(ValueError):
        UnitPeriods.from_json({**doc, "v": 99})


def test_a_late_withdrawal_older_than_a_horizon_leaves_no_negative_bucket() -> None:
    p = UnitPeriods()
    p.add(t("2026-03-01T08:00"), "electricity", 4.0, 1.0)
    p.add(t("2026-03-01T11:00"), "electricity", 1.0, 0.5)  # 3 h later: 08:00's interval is dropped
    p.add(t("2026-03-01T08:00"), "electricity", -4.0, -1.0)  # withdrawn afterwards
    assert p.totals("interval", t("2026-03-01T08:00")).tce == 0.0
    assert p.totals("day", t("2026-03-01T11:00")).tce == 1.0
    assert all(v >= 0 for bucket in p.to_json()["i"].values() for v in bucket)


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(ValueError):
        UnitPeriods().add(t("2026-03-01T08:00"), "electricity", float("nan"), 0.0)
    with pytest.raises(ValueError):
        UnitPeriods().totals("week", t("2026-03-01T08:00"))  # type: ignore[arg-type]


def test_totals_beyond_64_bits_stay_exact() -> None:
    """Buckets are 64-bit integers while they fit; a total that outgrows them (10¹⁴ t) is kept exactly."""
    periods = UnitPeriods()
    at = t("2026-03-02T10:15")
    periods.add(at, "electricity", 9.0e12, 1.0)
    periods.add(at, "electricity", 9.0e12, 1.0)  # 1.8 × 10¹⁹ millionths: past 2⁶³
    periods.add(at, "electricity", -1.8e13, -2.0)
    periods.add(at, "electricity", 0.25, 0.5)
    assert periods.totals("year", at).tce == 0.25 and periods.totals("day", at).co2_t == 0.5
    again = UnitPeriods.from_json(orjson.loads(orjson.dumps(periods.to_json())))
    assert again.totals("year", at) == periods.totals("year", at)
