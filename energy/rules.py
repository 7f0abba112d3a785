"""Alert rules: pure functions from a unit's recent figures to an alert change (or none)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from energy.alert import Alert
from energy.intervals import HOUR_MS, INTERVAL_MS

HOURLY_CEILING = "hourly_ceiling"
#: An open `hourly_ceiling` alert resolves only this far (percent) under the ceiling: a unit working
#: right at its ceiling would otherwise raise and resolve it with every interval.
RESOLVE_MARGIN_PCT = 5.0


def last_hour_tce(interval_tce: Mapping[int, Sequence[float]], newest_interval_start: int) -> float:
    """tce used in the hour ending with the interval that starts at ``newest_interval_start``.

    ``interval_tce`` maps interval start (epoch ms) to ``[tce, tCO2, ...]``; the hour is that
    interval and the three before it.
    """
    first = newest_interval_start - HOUR_MS + INTERVAL_MS
    return sum([v[0] for start, v in interval_tce.items() if first <= start <= newest_interval_start])


def hourly_ceiling(
    unit_id: str,
    used_tce: float,
    ceiling_tce: float,
    open_severity: str | None,
    ts_ms: int,
    resolve_margin_pct: float = RESOLVE_MARGIN_PCT,
) -> Alert | None:
    """The ``hourly_ceiling`` rule: raise a red alert when a unit used more than ``ceiling_tce`` in
    the last hour (``used_tce``, tce), resolve it when it is back ``resolve_margin_pct`` percent under
    the ceiling (hysteresis).

    ``open_severity`` is the severity of the unit's open alert for this rule (None when none is
    open); returns the change to publish, or None when nothing changed.
    """
    if open_severity is None:
        over = used_tce > ceiling_tce
    else:
        over = used_tce > ceiling_tce * (1.0 - resolve_margin_pct / 100.0)
    if over == (open_severity is not None):
        return None
    state = "raised" if over else "resolved"
    if over:
        message = f"{unit_id} 过去1小时能耗 {used_tce:.3f} tce，超过上限 {ceiling_tce:g} tce/h"
    else:
        message = f"{unit_id} 过去1小时能耗 {used_tce:.3f} tce，已回落至上限 {ceiling_tce:g} tce/h 以内"
    return Alert(
        key=f"{unit_id}|{HOURLY_CEILING}",
        unit_id=unit_id,
        rule=HOURLY_CEILING,
        severity="red" if over else "green",
        state=state,
        value=round(used_tce, 6),
        threshold=ceiling_tce,
        uom="tce/h",
        message=message,
        ts_ms=ts_ms,
    )
