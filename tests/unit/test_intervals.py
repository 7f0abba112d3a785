"""15-minute intervals and local days in Asia/Shanghai."""

from datetime import date

from energy.intervals import INTERVAL_MS, interval_start, local_day
from energy.schema import parse_ts_ms


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
