"""Reporting intervals and calendar days in China Standard Time (Asia/Shanghai, UTC+08:00).

China has kept UTC+08:00 without daylight saving since 1991, and readings are accepted only from
2000 on (``energy.schema``), so local time is UTC plus a fixed eight hours. Because the offset is a
whole number of quarter hours, 15-minute intervals aligned to the local wall clock are aligned to
UTC as well.

Intervals are end-inclusive: a reading at 10:15:00 closes the interval 10:00–10:15, because a
register read at 10:15 holds the energy used up to 10:15.
"""

from __future__ import annotations

from datetime import date, timedelta

INTERVAL_MS = 15 * 60 * 1000
HOUR_MS = 60 * 60 * 1000
CST_OFFSET_MS = 8 * HOUR_MS
_DAY_MS = 24 * HOUR_MS
_EPOCH = date(1970, 1, 1)


def interval_start(ts_ms: int, length_ms: int = INTERVAL_MS) -> int:
    """Start (epoch ms) of the interval a reading at ``ts_ms`` belongs to: (start, start + length]."""
    return ((ts_ms - 1) // length_ms) * length_ms


def local_day(ts_ms: int) -> date:
    """The calendar day in Asia/Shanghai on which the instant ``ts_ms`` (epoch ms) falls."""
    return _EPOCH + timedelta(days=(ts_ms + CST_OFFSET_MS) // _DAY_MS)
