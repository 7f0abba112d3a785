"""15-minute intervals and local days in Asia/Shanghai."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from energy.intervals import (
    INTERVAL_MS,
    day_start,
    interval_start,
    local_day,
    month_start,
    period_start,
    year_start,
)
from energy.schema import TS_MAX_MS, TS_MIN_MS, parse_ts_ms


def test_a_reading_on_the_boundary_closes_the_previous_interval() -> None:
    at_1015 = parse_ts_ms("2025-03-03T10:15:00+08:00")
    assert interval_start(at_1015) == parse_ts_ms("2025-03-03T10:00:00+08:00")
    assert interval_start(at_1015 + 1) == at_1015


def test_intervals_align_to_the_local_wall_clock() -> None:
    ts = parse_ts_ms("2025-03-03T10:07:31+08:00")
    assert interval_start(ts) == parse_ts_ms("2025-03-03T10:00:00+08:00")
    assert interval_start(ts) % INTERVAL_MS == 0


def test_local_day_starts_at_midnight_in_shanghai_not_utc() -> None:
    assert local_day(parse_ts_ms("2025-03-03T23:59:59+08:00")) == date(2025, 3, 3)
    assert local_day(parse_ts_ms("2025-03-04T00:00:00+08:00")) == date(2025, 3, 4)
    # 2025-03-03T16:30Z is already 00:30 on the 4th in China.
    assert local_day(parse_ts_ms("2025-03-03T16:30:00Z")) == date(2025, 3, 4)


SHANGHAI = ZoneInfo("Asia/Shanghai")


def ms(iso: str) -> int:
    return parse_ts_ms(iso)


def test_new_year_in_china_is_still_the_old_year_in_utc() -> None:
    # 2025-12-31T16:30Z is 2026-01-01 00:30 in China
    ts = ms("2025-12-31T16:30:00Z")
    assert local_day(ts) == date(2026, 1, 1)
    assert day_start(ts) == ms("2026-01-01T00:00:00+08:00") == ms("2025-12-31T16:00:00Z")
    assert month_start(ts) == ms("2026-01-01T00:00:00+08:00")
    assert year_start(ts) == ms("2026-01-01T00:00:00+08:00")
    # one millisecond before local midnight is still 2025
    before = ms("2025-12-31T15:59:59.999Z")
    assert year_start(before) == ms("2025-01-01T00:00:00+08:00")
    assert month_start(before) == ms("2025-12-01T00:00:00+08:00")
    assert day_start(before) == ms("2025-12-31T00:00:00+08:00")


def test_epoch_ms_and_iso_strings_agree() -> None:
    # 1 767 198 600 000 ms = 2025-12-31T16:30:00Z
    assert ms("2025-12-31T16:30:00Z") == 1_767_198_600_000
    ts = 1_767_198_600_000
    assert day_start(ts) == 1_767_196_800_000  # 2025-12-31T16:00:00Z = 2026-01-01 00:00 CST
    assert year_start(ts) == 1_767_196_800_000
    assert parse_ts_ms(ts) == ts


def test_calendar_starts_are_their_own_starts() -> None:
    for iso in ("2026-01-01T00:00:00+08:00", "2024-03-01T00:00:00+08:00"):
        ts = ms(iso)
        assert day_start(ts) == month_start(ts) == ts
    assert year_start(ms("2026-01-01T00:00:00+08:00")) == ms("2026-01-01T00:00:00+08:00")


def test_leap_day_and_month_ends() -> None:
    leap = ms("2024-02-29T23:59:59.999+08:00")
    assert local_day(leap) == date(2024, 2, 29)
    assert day_start(leap) == ms("2024-02-29T00:00:00+08:00")
    assert month_start(leap) == ms("2024-02-01T00:00:00+08:00")
    # the next instant is March
    assert month_start(leap + 1) == ms("2024-03-01T00:00:00+08:00")
    # 2024-02-28T16:00Z is already the 29th in China; 2023 has no 29 February
    assert local_day(ms("2024-02-28T16:00:00Z")) == date(2024, 2, 29)
    assert local_day(ms("2023-02-28T16:00:00Z")) == date(2023, 3, 1)
    assert month_start(ms("2023-02-28T16:00:00Z")) == ms("2023-03-01T00:00:00+08:00")
    # months of 30 and 31 days, read in UTC
    assert month_start(ms("2025-04-30T15:59:59Z")) == ms("2025-04-01T00:00:00+08:00")
    assert month_start(ms("2025-04-30T16:00:00Z")) == ms("2025-05-01T00:00:00+08:00")
    assert month_start(ms("2025-05-31T16:00:00Z")) == ms("2025-06-01T00:00:00+08:00")
    assert year_start(ms("2024-12-31T23:59:59+08:00")) == ms("2024-01-01T00:00:00+08:00")


def test_period_start() -> None:
    ts = ms("2025-07-15T10:15:00+08:00")
    assert period_start(ts, "interval") == ms("2025-07-15T10:00:00+08:00")
    assert period_start(ts, "day") == ms("2025-07-15T00:00:00+08:00")
    assert period_start(ts, "month") == ms("2025-07-01T00:00:00+08:00")
    assert period_start(ts, "year") == ms("2025-01-01T00:00:00+08:00")
    with pytest.raises(ValueError):
        period_start(ts, "week")  # type: ignore[arg-type]


def test_a_reading_at_midnight_closes_the_previous_days_last_interval() -> None:
    midnight = ms("2025-07-16T00:00:00+08:00")
    assert period_start(midnight, "day") == midnight
    assert day_start(interval_start(midnight)) == ms("2025-07-15T00:00:00+08:00")


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=TS_MIN_MS, max_value=TS_MAX_MS - 1))
def test_calendar_matches_the_tz_database(ts: int) -> None:
    # whole seconds, so that datetime arithmetic is exact; the millisecond part cannot move a day
    ts = ts // 1000 * 1000
    local = datetime.fromtimestamp(ts // 1000, UTC).astimezone(SHANGHAI)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    assert local_day(ts) == local.date()
    assert day_start(ts) == int(midnight.timestamp()) * 1000
    assert month_start(ts) == int(midnight.replace(day=1).timestamp()) * 1000
    assert year_start(ts) == int(midnight.replace(month=1, day=1).timestamp()) * 1000
    assert day_start(ts) <= ts < day_start(ts) + 24 * 3600 * 1000
