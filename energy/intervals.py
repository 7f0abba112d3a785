"""Reporting intervals and calendar periods (day, month, year) in China Standard Time
(Asia/Shanghai, UTC+08:00).

China has kept UTC+08:00 without daylight saving since 1991, and readings are accepted only from
2000 on (``energy.schema``), so local time is UTC plus a fixed eight hours. Because the offset is a
whole number of quarter hours, 15-minute intervals aligned to the local wall clock are aligned to
UTC as well.

Intervals are end-inclusive: a reading at 10:15:00 closes the interval 10:00–10:15, because a
register read at 10:15 holds the energy used up to 10:15.

Calendar periods are half-open local periods: a day runs from 00:00 local (16:00 UTC the day before)
up to the next 00:00, a month from 00:00 on the 1st, a year from 00:00 on 1 January.
:func:`day_start`, :func:`month_start` and :func:`year_start` give the start (epoch ms) of the period
containing an instant; they are plain arithmetic on the fixed offset, with no clock and no tz database.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from typing import Literal

INTERVAL_MS = 15 * 60 * 1000
HOUR_MS = 60 * 60 * 1000
CST_OFFSET_MS = 8 * HOUR_MS
DAY_MS = 24 * HOUR_MS
_EPOCH = date(1970, 1, 1)

#: The periods :func:`period_start` knows: the 15-minute interval and the local day, month and year.
Period = Literal["interval", "day", "month", "year"]


def interval_start(ts_ms: int, length_ms: int = INTERVAL_MS) -> int:
    """Start (epoch ms) of the interval a reading at ``ts_ms`` belongs to: (start, start + length]."""
    return ((ts_ms - 1) // length_ms) * length_ms


def local_day(ts_ms: int) -> date:
    """The calendar day in Asia/Shanghai on which the instant ``ts_ms`` (epoch ms) falls."""
    return _day((ts_ms + CST_OFFSET_MS) // DAY_MS)


@lru_cache(maxsize=1024)
def _day(days_since_epoch: int) -> date:
    """The date ``days_since_epoch`` days after 1970-01-01; cached, as the ledger asks for the same
    few days for every reading and building a date costs more than the rest of the arithmetic."""
    return _EPOCH + timedelta(days=days_since_epoch)


def _start_ms(day: date) -> int:
    """Epoch ms of 00:00 Asia/Shanghai on the local calendar day ``day``."""
    return (day - _EPOCH).days * DAY_MS - CST_OFFSET_MS


def day_start(ts_ms: int) -> int:
    """Start (epoch ms) of the local day containing the instant ``ts_ms``: 00:00 Asia/Shanghai."""
    return ((ts_ms + CST_OFFSET_MS) // DAY_MS) * DAY_MS - CST_OFFSET_MS


def month_start(ts_ms: int) -> int:
    """Start (epoch ms) of the local month containing ``ts_ms``: 00:00 Asia/Shanghai on the 1st."""
    return _start_ms(local_day(ts_ms).replace(day=1))


def year_start(ts_ms: int) -> int:
    """Start (epoch ms) of the local year containing ``ts_ms``: 00:00 Asia/Shanghai on 1 January."""
    return _start_ms(local_day(ts_ms).replace(month=1, day=1))


def period_start(ts_ms: int, period: Period) -> int:
    """Start (epoch ms) of the ``period`` containing ``ts_ms``. ``interval`` is the end-inclusive
    15-minute interval of :func:`interval_start` (a reading at 10:15 belongs to 10:00); ``day``,
    ``month`` and ``year`` are the local calendar periods, which start at their first instant.
    Note the difference at a boundary: a reading at 00:00 closes the previous day's last interval,
    but the instant 00:00 is in the new day. To put an interval's energy in its day, take the day of
    its start: ``day_start(interval_start(ts_ms))``. Raises ``ValueError`` for another period name."""
    if period == "interval":
        return interval_start(ts_ms)
    if period == "day":
        return day_start(ts_ms)
    if period == "month":
        return month_start(ts_ms)
    if period == "year":
        return year_start(ts_ms)
    raise ValueError(f"period {period!r} is not one of interval, day, month, year")
