"""Timestamp cells of legacy exports → epoch ms (UTC).

Formats: ``iso8601`` (``2026-03-01T08:00:00+08:00``, ``2026-03-01 08:00``), ``epoch_ms``, or a
``strptime`` pattern (anything with a ``%``, e.g. ``%Y/%m/%d %H:%M``). A time without an offset
(and an XLSX date cell) is in the file's timezone: an IANA name (``Asia/Shanghai``) or ``±HH:MM``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from energy.schema import TS_MAX_MS, TS_MIN_MS

TsParser = Callable[[object], int]
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def zone(name: str) -> tzinfo:
    """``Asia/Shanghai`` or ``+08:00`` as a tzinfo (ValueError for anything else)."""
    if match := _OFFSET.match(name):
        sign, hours, minutes = match.groups()
        offset = timedelta(hours=int(hours), minutes=int(minutes))
        return timezone(-offset if sign == "-" else offset)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown timezone {name!r} (an IANA name such as Asia/Shanghai, or +08:00)"
        ) from exc


def check_format(ts_format: str) -> str:
    """``ts_format`` if it is one of the known formats or a strptime pattern."""
    if ts_format not in ("iso8601", "epoch_ms") and "%" not in ts_format:
        raise ValueError("ts_format is iso8601, epoch_ms or a strptime pattern such as %Y-%m-%d %H:%M")
    return ts_format


def ts_parser(ts_format: str, tz: tzinfo) -> TsParser:
    """A function turning a cell (str, number or datetime) into epoch ms; ValueError for a bad one."""
    if ts_format == "epoch_ms":
        return _epoch_ms

    def parse(cell: object) -> int:
        if isinstance(cell, datetime):
            moment = cell
        elif isinstance(cell, str) and cell.strip():
            text = cell.strip()
            try:
                moment = (
                    datetime.fromisoformat(text)
                    if ts_format == "iso8601"
                    else datetime.strptime(text, ts_format)
                )
            except ValueError as exc:
                raise ValueError(f"time {text!r} does not match {ts_format}") from exc
        else:
            raise ValueError(f"time {cell!r} is not a {ts_format} text")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
        return _in_range(round(moment.timestamp() * 1000), cell)

    return parse


def _epoch_ms(cell: object) -> int:
    if isinstance(cell, bool):
        raise ValueError(f"time {cell!r} is not epoch milliseconds")
    try:
        ms = int(cell) if isinstance(cell, int) else round(float(str(cell).strip()))
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"time {cell!r} is not epoch milliseconds") from exc
    return _in_range(ms, cell)


def _in_range(ms: int, cell: object) -> int:
    if not TS_MIN_MS <= ms < TS_MAX_MS:
        raise ValueError(f"time {cell!r} is outside 2000-01-01..2100-01-01")
    return ms
