"""Operational (data-quality) rules of a unit, in event time (issue 4; reference/domain.md §3.3).

:class:`OperationalMonitor` is a unit's small state: the stream app feeds it every counted energy
piece of the unit's meters (:meth:`OperationalMonitor.observe`) and asks it, after each batch, for
what is due (:meth:`OperationalMonitor.evaluate`, with the unit's newest reading time as "now"). It
answers alert changes (:class:`energy.alert.Alert`, raised / resolved, never a repeat of an open
alert) and one :class:`DayQuality` per closed local day (the ``data_quality`` point).

**Time.** Times are epoch ms (UTC); days, hours and months are those of China Standard Time
(``energy.intervals``). A piece ending at ``ts_ms`` belongs to the 15-minute interval it closes,
``interval_start(ts_ms)``, and to that interval's hour, day and month (a piece at 00:00 closes the
day before). A period is final once ``now_ts_ms - rules.lateness_ms`` is past its end: no piece of it
can be accepted after that (the ledger refuses one older than the unit's newest reading by more than
the lateness window), so late pieces still count and every period is judged exactly once; markers
(``done_*``) make a later piece of a judged period count for nothing here.

**The rules** (thresholds in :class:`OperationalRules`; every alert is ``yellow``):

* ``silent_meter`` (key ``unit|silent_meter|meter_id``): an expected meter without a piece in
  ``silent_intervals`` whole 15-minute intervals up to now; resolved when it reports again.
* ``completeness`` (key ``unit|data_quality|completeness``): per closed day, the share of the
  expected 15-minute intervals of the expected meters (main and sub) in which a piece ended, below
  ``completeness_min_pct``; resolved by a later day at or above it. A closed day on which the unit
  sent nothing at all, after its first data, is reported at 0 % once data comes again: the silent
  rule cannot see a whole unit go quiet (``now`` stands still) nor come back (all meters return in
  the same scan), so this is where an outage shows.
* ``consumption_spike`` (key ``unit|consumption_spike|unit``): a closed clock hour's main-meter tce
  above ``spike_factor`` × the baseline of that hour of day (an exponential moving average over
  previous days) and at least ``spike_min_tce`` above it; resolved by a later hour that is not.
* ``day_month_mismatch`` (key ``unit|day_month_mismatch|energy``): a closed month's main-meter tce of
  an energy deviating from the month figure reported by the unit's ``monthly`` meters by more than
  ``day_month_max_deviation_pct`` (§3.3: ≤ 5 %); resolved by a later consistent month.

**Memory bound.** Whatever the timestamps, the state holds per meter (seen or expected) a handful of
scalars and the interval bitmaps (96 bits) of the days not yet judged; per unit the hour sums and
the month sums per energy not yet judged (at most :data:`MAX_REPORT_MONTHS` months of reports), 24
moving averages with their sample counts, and the open alerts. Nothing older than
:data:`RETAIN_MS` behind the newest piece is kept (a piece that old is ignored; the ledger would have
refused it), so with ``evaluate`` called after each batch a unit of 10 meters stays about 2 kB of
JSON (``tests/unit/test_operational.py`` measures it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from energy.alert import Alert, AlertState
from energy.intervals import CST_OFFSET_MS, HOUR_MS, INTERVAL_MS, interval_start, local_day, month_start
from energy.messages import Lang, _header, _num
from energy.periods import DAY_MS, day_index, local_midnight_ms, month_index, next_month

Role = Literal["main", "sub", "monthly"]
ROLES: tuple[str, ...] = ("main", "sub", "monthly")

SILENT_METER = "silent_meter"
COMPLETENESS = "completeness"
CONSUMPTION_SPIKE = "consumption_spike"
DAY_MONTH_MISMATCH = "day_month_mismatch"
#: The middle part of the completeness alert's key (``unit|data_quality|completeness``).
DATA_QUALITY = "data_quality"

#: 15-minute intervals in a local day.
INTERVALS_PER_DAY = DAY_MS // INTERVAL_MS
#: How far behind the newest piece (ms) data is kept: longer than any lateness window allowed
#: (:data:`MAX_LATENESS_MS`) plus a month report's tolerance, so it only bounds a monitor whose
#: ``evaluate`` is not called.
RETAIN_MS = 8 * DAY_MS
#: The largest ``OperationalRules.lateness_ms`` (3 days) and ``month_report_tolerance_ms`` (2 days).
MAX_LATENESS_MS = 3 * DAY_MS
MAX_MONTH_TOLERANCE_MS = 2 * DAY_MS
#: At most this many closed days are reported by one ``evaluate`` (after the unit was silent for
#: longer, the older days — which can hold no data, see :data:`RETAIN_MS` — are skipped).
MAX_CATCHUP_DAYS = 31
#: Month reports are kept for at most this many months not yet judged (the newest ones).
MAX_REPORT_MONTHS = 3
_FORMAT = 1


@dataclass(frozen=True)
class OperationalRules:
    """Thresholds of the operational rules.

    ``lateness_ms``: how long (ms, event time) after a period's end late pieces may still arrive —
    the stream's lateness window; a period is judged only after it. ``silent_intervals``: whole
    15-minute intervals without a piece that make a meter silent. ``completeness_min_pct``: the
    lowest acceptable daily completeness (%). ``spike_baseline_days``: the moving average's span in
    days (alpha = 1 / days) and the number of days of an hour of day needed before it is judged;
    ``spike_factor``: how many times the baseline is a spike; ``spike_min_tce``: the least excess
    over the baseline (tce) that is a spike. ``day_month_max_deviation_pct``: the largest acceptable
    deviation (%) between a month's summed data and its monthly report. ``month_report_tolerance_ms``:
    how far (ms) a monthly report may be stamped from 00:00 on the 1st (§3.3: ±1 day); a month is
    judged that much later.
    """

    lateness_ms: int = 2 * HOUR_MS
    silent_intervals: int = 4
    completeness_min_pct: float = 90.0
    spike_baseline_days: int = 7
    spike_factor: float = 2.0
    spike_min_tce: float = 0.1
    day_month_max_deviation_pct: float = 5.0
    month_report_tolerance_ms: int = DAY_MS

    def __post_init__(self) -> None:
        checks = (
            (0 <= self.lateness_ms <= MAX_LATENESS_MS, "lateness_ms must be within 0 .. 3 days"),
            (self.silent_intervals >= 1, "silent_intervals must be at least 1"),
            (0 <= self.completeness_min_pct <= 100, "completeness_min_pct must be within 0 .. 100"),
            (self.spike_baseline_days >= 1, "spike_baseline_days must be at least 1"),
            (math.isfinite(self.spike_factor) and self.spike_factor >= 1, "spike_factor must be ≥ 1"),
            (math.isfinite(self.spike_min_tce) and self.spike_min_tce >= 0, "spike_min_tce must be ≥ 0"),
            (
                math.isfinite(self.day_month_max_deviation_pct) and self.day_month_max_deviation_pct >= 0,
                "day_month_max_deviation_pct must be ≥ 0",
            ),
            (
                0 <= self.month_report_tolerance_ms <= MAX_MONTH_TOLERANCE_MS,
                "month_report_tolerance_ms must be within 0 .. 2 days",
            ),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclass(frozen=True)
class DayQuality:
    """Data completeness of a unit on one closed local day: ``day_start_ms`` is 00:00 local (epoch
    ms); ``expected`` the 15-minute intervals its expected meters owed, ``received`` those in which a
    piece of the meter ended; ``completeness_pct`` = 100 × received / expected (%)."""

    unit_id: str
    day_start_ms: int
    completeness_pct: float
    expected: int
    received: int


@dataclass
class OperationalResult:
    """What one :meth:`OperationalMonitor.evaluate` found: alert changes, in order, and the days closed."""

    alerts: list[Alert] = field(default_factory=list)
    quality: list[DayQuality] = field(default_factory=list)


@dataclass(slots=True)
class MeterState:
    """A meter as the rules see it. ``role`` None: expected but never seen; ``last_ts``: end of its
    newest piece (main/sub); ``expected_from``: start (epoch ms) of the first interval it owes;
    ``days``: day_index → bitmap of the intervals of that (not yet judged) day in which it had a
    piece; ``silent``: its silent_meter alert is open."""

    role: str | None = None
    energy: str | None = None
    last_ts: int | None = None
    expected_from: int | None = None
    silent: bool = False
    days: dict[int, int] = field(default_factory=dict)


def _floor(ts_ms: int, length_ms: int) -> int:
    """The latest multiple of ``length_ms`` (epoch ms) at or before ``ts_ms``."""
    return ts_ms - ts_ms % length_ms


def _report_month(ts_ms: int) -> int:
    """``month_index`` of the month a monthly report stamped ``ts_ms`` is for: the month ending at the
    month boundary (00:00 local on a 1st) nearest to ``ts_ms``."""
    start = month_start(ts_ms)
    following = local_midnight_ms(next_month(local_day(ts_ms)))
    boundary = start if ts_ms - start <= following - ts_ms else following
    return month_index(local_day(boundary - 1))


def _month_date(index: int) -> date:
    """The 1st of the month ``index`` (``year × 12 + month − 1``)."""
    return date(index // 12, index % 12 + 1, 1)


def _pick(zh: str, en: str, lang: Lang) -> str:
    return zh if lang == "zh" else en if lang == "en" else f"{zh} / {en}"


def _headed(state: AlertState, zh: str, en: str, lang: Lang) -> str:
    """The texts with the header of ``energy.messages`` for a resolution, 【预警】/[Warning] when raised
    (these rules have no barometer level)."""
    if state == "resolved":
        return _pick(_header("yellow", state, "zh") + zh, _header("yellow", state, "en") + en, lang)
    return _pick("【预警】" + zh, "[Warning] " + en, lang)


def _alert(
    unit_id: str,
    rule: str,
    indicator: str,
    state: AlertState,
    figures: tuple[float, float, str],
    message: str,
    ts_ms: int,
    *,
    key_rule: str | None = None,
) -> Alert:
    """A yellow alert keyed ``unit_id|key_rule|indicator`` (``key_rule`` defaults to ``rule``);
    ``figures`` is ``(value, threshold, uom)``."""
    value, threshold, uom = figures
    return Alert(
        key=f"{unit_id}|{key_rule or rule}|{indicator}",
        unit_id=unit_id,
        rule=rule,
        severity="yellow",
        state=state,
        value=round(value, 6),
        threshold=round(threshold, 6),
        uom=uom,
        message=message,
        ts_ms=max(0, ts_ms),
    )


def _meter_noun(energy: str | None) -> str:
    return "电表" if energy == "electricity" else "计量表"


def silent_text(
    unit_name: str,
    meter_id: str,
    energy: str | None,
    state: AlertState,
    minutes: float,
    *,
    expected: bool = True,
    lang: Lang = "zh",
) -> str:
    """Text of a ``silent_meter`` alert: a meter without data for ``minutes`` (min); resolved: it
    reports again (``expected`` False: it is no longer among the meters expected)."""
    noun = _meter_noun(energy)
    if state != "resolved":
        zh = f"{unit_name} {noun} {meter_id} 已 {_num(minutes)} 分钟无数据"
        en = f"{unit_name}: meter {meter_id} silent for {_num(minutes)} min"
    elif expected:
        zh = f"{unit_name} {noun} {meter_id} 恢复上报数据"
        en = f"{unit_name}: meter {meter_id} reporting again"
    else:
        zh = f"{unit_name} {noun} {meter_id} 已不在应报表计之列"
        en = f"{unit_name}: meter {meter_id} no longer expected to report"
    return _headed(state, zh, en, lang)


def completeness_text(
    unit_name: str, day: date, state: AlertState, pct: float, min_pct: float, *, lang: Lang = "zh"
) -> str:
    """Text of a ``completeness`` alert: the day's completeness ``pct`` against ``min_pct`` (%)."""
    verdict_zh = f"低于 {_num(min_pct, 2)}%" if state != "resolved" else f"已达到 {_num(min_pct, 2)}%"
    verdict_en = f"below {_num(min_pct, 2)}%" if state != "resolved" else f"at or above {_num(min_pct, 2)}%"
    zh = f"{unit_name} {day.isoformat()} 数据完整率 {_num(pct, 2)}%，{verdict_zh}"
    en = f"{unit_name}: data completeness {_num(pct, 2)}% on {day.isoformat()}, {verdict_en}"
    return _headed(state, zh, en, lang)


def spike_text(
    unit_name: str,
    hour_start_ms: int,
    state: AlertState,
    hour_tce: float,
    baseline_tce: float,
    factor: float,
    *,
    lang: Lang = "zh",
) -> str:
    """Text of a ``consumption_spike`` alert: ``hour_tce`` (tce) used in the clock hour starting at
    ``hour_start_ms`` against the baseline of that hour of day (tce) times ``factor``."""
    hour = (hour_start_ms + CST_OFFSET_MS) // HOUR_MS % 24
    when = f"{local_day(hour_start_ms).isoformat()} {hour:02d}:00–{hour + 1:02d}:00"
    v, b, f = _num(hour_tce, 3), _num(baseline_tce, 3), _num(factor, 2)
    if state != "resolved":
        zh = f"{unit_name} {when} 能耗 {v} tce，超过同时段基线 {b} tce 的 {f} 倍"
        en = f"{unit_name}: {v} tce used {when}, over {f} × the baseline of {b} tce for that hour"
    else:
        zh = f"{unit_name} {when} 能耗 {v} tce，回落至同时段基线 {b} tce 的 {f} 倍以内"
        en = f"{unit_name}: {v} tce used {when}, back within {f} × the baseline of {b} tce for that hour"
    return _headed(state, zh, en, lang)


def mismatch_text(
    unit_name: str,
    month: date,
    energy: str,
    state: AlertState,
    daily_tce: float,
    monthly_tce: float,
    deviation_pct: float,
    max_pct: float,
    *,
    lang: Lang = "zh",
) -> str:
    """Text of a ``day_month_mismatch`` alert: the month's summed data ``daily_tce`` against the
    monthly report ``monthly_tce`` (tce), ``deviation_pct`` against ``max_pct`` (%)."""
    d, m, dev, mx = _num(daily_tce, 3), _num(monthly_tce, 3), _num(deviation_pct, 2), _num(max_pct, 2)
    zh_lead = (
        f"{unit_name} {month.year} 年 {month.month} 月 {energy} 日数据合计 {d} tce，"
        f"与月报 {m} tce 偏差 {dev}%"
    )
    en_lead = (
        f"{unit_name}: {energy} in {month.year}-{month.month:02d}, daily data {d} tce "
        f"against the monthly report of {m} tce, deviation {dev}%"
    )
    if state != "resolved":
        return _headed(state, f"{zh_lead}，超过 {mx}%", f"{en_lead}, over {mx}%", lang)
    return _headed(state, f"{zh_lead}，在 {mx}% 以内", f"{en_lead}, within {mx}%", lang)


@dataclass(slots=True)
class OperationalMonitor:
    """A unit's operational-rule state (see the module docstring); plain data for the table store
    through :meth:`to_json` / :meth:`from_json`. Change it only through :meth:`observe` and
    :meth:`evaluate`.

    ``meters``: each meter seen or expected; ``first_start``: start (epoch ms) of the unit's first
    interval with a main/sub piece; ``newest_ts``: end (epoch ms) of its newest main/sub piece;
    ``started``: the expected meters were registered once; ``done_day`` / ``done_hour`` /
    ``done_month``: the newest day (``day_index``), hour (start, epoch ms) and month (``month_index``)
    judged; ``hours``: hour start → main-meter tce of the hours not yet judged; ``month_main`` /
    ``month_report``: ``month_index`` → energy → main-meter tce / reported tce of the months not yet
    judged; ``baseline``: the moving average of tce per local hour of day (index 0 = 00:00–01:00),
    ``baseline_n``: the days in it (capped at ``spike_baseline_days``); ``open_*``: the open alerts.
    """

    meters: dict[str, MeterState] = field(default_factory=dict)
    first_start: int | None = None
    newest_ts: int | None = None
    started: bool = False
    done_day: int | None = None
    done_hour: int | None = None
    done_month: int | None = None
    hours: dict[int, float] = field(default_factory=dict)
    month_main: dict[int, dict[str, float]] = field(default_factory=dict)
    month_report: dict[int, dict[str, float]] = field(default_factory=dict)
    baseline: list[float] = field(default_factory=lambda: [0.0] * 24)
    baseline_n: list[int] = field(default_factory=lambda: [0] * 24)
    open_completeness: bool = False
    open_spike: bool = False
    open_mismatch: set[str] = field(default_factory=set)
    pruned_day: int | None = field(default=None, compare=False)  # day_index of newest_ts at the last prune
    #: the calendar of the last piece's time (ts, interval start, day_index, day bit, hour, month_index
    #: or -1 before it is needed): the pieces of a scan share it
    calendar: tuple[int, int, int, int, int, int] | None = field(default=None, compare=False, repr=False)

    # --- input -------------------------------------------------------------------------------

    def observe(self, meter_id: str, energy: str, role: str, ts_ms: int, tce: float) -> None:
        """One accepted, counted energy piece of a meter for the period ending at ``ts_ms`` (epoch ms):
        ``tce`` (tonnes of standard coal) of ``energy``. ``role``: ``main`` (counts in the unit total),
        ``sub`` (inside a main meter) or ``monthly`` (a whole-month report stamped at the end of its
        month, 00:00 local on the 1st, ± ``month_report_tolerance_ms``; counted in no total).

        Feed pieces as ``UnitPeriods.add`` is fed: each counted piece once (not the ledger's repeats:
        the sums here are not idempotent), late ones too, and a withdrawal with a negative ``tce``
        (it corrects the sums; only pieces with ``tce`` ≥ 0 count as data received). A piece more than
        :data:`RETAIN_MS` older than the newest, or of a period already judged, counts for nothing.
        Raises ValueError for another role or a non-finite ``tce``."""
        if role not in ROLES:
            raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if not math.isfinite(tce):
            raise ValueError(f"not a finite number: {tce!r}")
        newest = self.newest_ts
        if newest is not None and ts_ms < newest - RETAIN_MS:
            return
        meter = self.meters.get(meter_id)
        if meter is None:
            meter = self.meters[meter_id] = MeterState()
        meter.role = role
        meter.energy = energy
        if role == "monthly":
            month = _report_month(ts_ms)
            if self.done_month is None or month > self.done_month:
                sums = self.month_report.setdefault(month, {})
                sums[energy] = sums.get(energy, 0.0) + tce
                while len(self.month_report) > MAX_REPORT_MONTHS:
                    del self.month_report[min(self.month_report)]
            return
        # the pieces of a scan end at the same time: the calendar of its interval is kept
        calendar = self.calendar
        if calendar is None or calendar[0] != ts_ms:
            start = interval_start(ts_ms)
            day = day_index(start)
            slot = (start + CST_OFFSET_MS - day * DAY_MS) // INTERVAL_MS
            calendar = self.calendar = (ts_ms, start, day, 1 << slot, _floor(start, HOUR_MS), -1)
        _, start, day, bit, hour, month = calendar
        if tce >= 0:
            if meter.last_ts is None or ts_ms > meter.last_ts:
                meter.last_ts = ts_ms
            if meter.expected_from is None or start < meter.expected_from:
                meter.expected_from = start
            if self.first_start is None or start < self.first_start:
                self.first_start = start
            if self.done_day is None or day > self.done_day:
                days = meter.days
                days[day] = days.get(day, 0) | bit
        if role == "main":
            if self.done_hour is None or hour > self.done_hour:
                hours = self.hours
                hours[hour] = hours.get(hour, 0.0) + tce
            if month < 0:
                month = month_index(local_day(start))
                self.calendar = (*calendar[:5], month)
            if self.done_month is None or month > self.done_month:
                main = self.month_main.get(month)
                if main is None:
                    main = self.month_main[month] = {}
                main[energy] = main.get(energy, 0.0) + tce
        if tce >= 0 and (newest is None or ts_ms > newest):
            self.newest_ts = ts_ms
            if day_index(ts_ms) != self.pruned_day:
                self._prune()

    def _prune(self) -> None:
        """Forget what ended more than :data:`RETAIN_MS` before the newest piece (only ever left when
        ``evaluate`` is not called)."""
        assert self.newest_ts is not None
        self.pruned_day = day_index(self.newest_ts)
        cutoff = self.newest_ts - RETAIN_MS
        oldest_day = day_index(cutoff)  # days before it ended before the cutoff
        for meter in self.meters.values():
            for day in [d for d in meter.days if d < oldest_day]:
                del meter.days[day]
        for hour in [h for h in self.hours if h + HOUR_MS < cutoff]:
            del self.hours[hour]
        oldest_month = month_index(local_day(cutoff))
        for table in (self.month_main, self.month_report):
            for month in [m for m in table if m < oldest_month]:
                del table[month]

    # --- rules -------------------------------------------------------------------------------

    def evaluate(
        self,
        unit_id: str,
        unit_name: str,
        now_ts_ms: int,
        rules: OperationalRules,
        meters: Sequence[str] = (),
        *,
        lang: Lang = "zh",
    ) -> OperationalResult:
        """Judge everything due with the unit's data up to ``now_ts_ms`` (epoch ms: the unit's newest
        reading time, event time, never a wall clock): the silent meters now, and each hour, day and
        month that has closed ``rules.lateness_ms`` (months: plus ``month_report_tolerance_ms``)
        before now and was not judged yet. ``meters``: the ids of the meters the registry expects to
        report every interval (main and sub; leave monthly ones out: one not seen yet would count as
        silent); empty: the meters seen so far, except monthly ones. Messages in ``lang``.

        Before the unit's first main/sub piece nothing is judged. Expected meters owe data from the
        unit's first interval with data (a meter first listed later: from the 15-minute boundary at
        or before the ``now_ts_ms`` that first lists it; a meter first seen later, without a list:
        from its first piece), so a unit's first day and a new meter's first day owe fewer than 96
        intervals."""
        result = OperationalResult()
        closed = now_ts_ms - rules.lateness_ms
        if self.first_start is None:  # no data to judge: only let go of month reports due
            self._months(unit_id, unit_name, closed - rules.month_report_tolerance_ms, rules, lang, result)
            return result
        expected = self._expected(meters, now_ts_ms)
        self._silent(unit_id, unit_name, now_ts_ms, rules, expected, lang, result)
        self._days(unit_id, unit_name, closed, rules, expected, lang, result)
        self._spikes(unit_id, unit_name, closed, rules, lang, result)
        self._months(unit_id, unit_name, closed - rules.month_report_tolerance_ms, rules, lang, result)
        return result

    def _expected(self, listed: Sequence[str], now_ts_ms: int) -> list[str]:
        """The meters expected to report every interval, registering those new to the list."""
        assert self.first_start is not None
        if listed:
            ids = sorted(set(listed))
        else:
            ids = sorted(m for m, meter in self.meters.items() if meter.role != "monthly")
        for meter_id in ids:
            meter = self.meters.get(meter_id)
            if meter is None:
                meter = self.meters[meter_id] = MeterState()
            if not self.started:
                meter.expected_from = self.first_start
            elif meter.expected_from is None:
                meter.expected_from = _floor(now_ts_ms, INTERVAL_MS)
        self.started = True
        return [m for m in ids if self.meters[m].role != "monthly"]

    def _silent(
        self,
        unit_id: str,
        unit_name: str,
        now_ts_ms: int,
        rules: OperationalRules,
        expected: list[str],
        lang: Lang,
        result: OperationalResult,
    ) -> None:
        boundary = _floor(now_ts_ms, INTERVAL_MS)  # end of the newest whole interval
        threshold = rules.silent_intervals * INTERVAL_MS // 60_000
        for meter_id in expected:
            meter = self.meters[meter_id]
            since = meter.expected_from
            if meter.last_ts is not None:
                since = interval_start(meter.last_ts) + INTERVAL_MS
            assert since is not None
            missed = max(0, (boundary - since) // INTERVAL_MS)
            minutes = missed * INTERVAL_MS // 60_000
            silent = missed >= rules.silent_intervals
            if silent == meter.silent:
                continue
            meter.silent = silent
            state: AlertState = "raised" if silent else "resolved"
            ts = since + rules.silent_intervals * INTERVAL_MS if silent else (meter.last_ts or now_ts_ms)
            text = silent_text(unit_name, meter_id, meter.energy, state, minutes, lang=lang)
            result.alerts.append(
                _alert(unit_id, SILENT_METER, meter_id, state, (minutes, threshold, "min"), text, ts)
            )
        listed = set(expected)
        for meter_id in sorted(m for m, meter in self.meters.items() if meter.silent and m not in listed):
            meter = self.meters[meter_id]
            meter.silent = False
            text = silent_text(unit_name, meter_id, meter.energy, "resolved", 0, expected=False, lang=lang)
            figures = (0.0, float(threshold), "min")
            result.alerts.append(
                _alert(unit_id, SILENT_METER, meter_id, "resolved", figures, text, now_ts_ms)
            )

    def _days(
        self,
        unit_id: str,
        unit_name: str,
        closed: int,
        rules: OperationalRules,
        expected: list[str],
        lang: Lang,
        result: OperationalResult,
    ) -> None:
        assert self.first_start is not None
        last = day_index(closed - 1) - 1  # the newest day that ended before `closed`
        first = day_index(self.first_start) if self.done_day is None else self.done_day + 1
        first = max(first, last - MAX_CATCHUP_DAYS + 1)
        for day in range(first, last + 1):
            start = day * DAY_MS - CST_OFFSET_MS
            owed = got = 0
            for meter_id in expected:
                meter = self.meters[meter_id]
                assert meter.expected_from is not None
                skip = max(0, (meter.expected_from - start) // INTERVAL_MS)
                if skip >= INTERVALS_PER_DAY:
                    continue
                owed += INTERVALS_PER_DAY - skip
                got += (meter.days.get(day, 0) >> skip).bit_count()
            if owed == 0:
                continue
            pct = 100.0 * got / owed
            result.quality.append(DayQuality(unit_id, start, pct, owed, got))
            below = pct < rules.completeness_min_pct
            if below == self.open_completeness:
                continue
            self.open_completeness = below
            state: AlertState = "raised" if below else "resolved"
            floor_pct = rules.completeness_min_pct
            text = completeness_text(unit_name, local_day(start), state, pct, floor_pct, lang=lang)
            figures = (pct, floor_pct, "%")
            end = start + DAY_MS
            result.alerts.append(
                _alert(unit_id, COMPLETENESS, COMPLETENESS, state, figures, text, end, key_rule=DATA_QUALITY)
            )
        if self.done_day is None or last > self.done_day:
            self.done_day = last
            for meter in self.meters.values():
                for d in [d for d in meter.days if d <= last]:
                    del meter.days[d]

    def _spikes(
        self,
        unit_id: str,
        unit_name: str,
        closed: int,
        rules: OperationalRules,
        lang: Lang,
        result: OperationalResult,
    ) -> None:
        last = _floor(closed - 1 - HOUR_MS, HOUR_MS)  # the newest hour that ended before `closed`
        days = rules.spike_baseline_days
        for hour in sorted(h for h in self.hours if h <= last):
            tce = self.hours.pop(hour)
            of_day = (hour + CST_OFFSET_MS) // HOUR_MS % 24
            n, baseline = self.baseline_n[of_day], self.baseline[of_day]
            sample = tce
            if n >= days:
                bound = max(rules.spike_factor * baseline, baseline + rules.spike_min_tce)
                spike = tce > rules.spike_factor * baseline and tce - baseline >= rules.spike_min_tce
                sample = min(tce, bound)  # a spike moves the baseline only as far as the spike line
                if spike != self.open_spike:
                    self.open_spike = spike
                    state: AlertState = "raised" if spike else "resolved"
                    text = spike_text(unit_name, hour, state, tce, baseline, rules.spike_factor, lang=lang)
                    figures = (tce, rules.spike_factor * baseline, "tce")
                    result.alerts.append(
                        _alert(unit_id, CONSUMPTION_SPIKE, "unit", state, figures, text, hour + HOUR_MS)
                    )
            self.baseline[of_day] = sample if n == 0 else baseline + (sample - baseline) / days
            self.baseline_n[of_day] = min(n + 1, days)
        if self.done_hour is None or last > self.done_hour:
            self.done_hour = last

    def _months(
        self,
        unit_id: str,
        unit_name: str,
        closed: int,
        rules: OperationalRules,
        lang: Lang,
        result: OperationalResult,
    ) -> None:
        last = month_index(local_day(closed - 1)) - 1  # the newest month that ended before `closed`
        limit = rules.day_month_max_deviation_pct
        for month in sorted(m for m in set(self.month_main) | set(self.month_report) if m <= last):
            main = self.month_main.pop(month, {})
            reports = self.month_report.pop(month, {})
            first_day = _month_date(month)
            if self.first_start is None or self.first_start > local_midnight_ms(first_day):
                continue  # the unit's data does not cover the whole month
            for energy in sorted(reports):
                reported = reports[energy]
                if reported <= 0:
                    continue
                counted = main.get(energy, 0.0)
                deviation = 100.0 * abs(counted - reported) / reported
                over = deviation > limit
                if over == (energy in self.open_mismatch):
                    continue
                if over:
                    self.open_mismatch.add(energy)
                else:
                    self.open_mismatch.discard(energy)
                state: AlertState = "raised" if over else "resolved"
                text = mismatch_text(
                    unit_name, first_day, energy, state, counted, reported, deviation, limit, lang=lang
                )
                end = local_midnight_ms(next_month(first_day))
                result.alerts.append(
                    _alert(unit_id, DAY_MONTH_MISMATCH, energy, state, (deviation, limit, "%"), text, end)
                )
        if self.done_month is None or last > self.done_month:
            self.done_month = last

    # --- table store --------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able data (no integer wider than 64 bits: day bitmaps are hex strings)."""
        return {
            "v": _FORMAT,
            "first": self.first_start,
            "newest": self.newest_ts,
            "started": self.started,
            "done": [self.done_day, self.done_hour, self.done_month],
            "meters": {
                m: [
                    x.role,
                    x.energy,
                    x.last_ts,
                    x.expected_from,
                    x.silent,
                    {str(d): format(bits, "x") for d, bits in sorted(x.days.items())},
                ]
                for m, x in sorted(self.meters.items())
            },
            "hours": {str(h): v for h, v in sorted(self.hours.items())},
            "month_main": {str(m): dict(v) for m, v in sorted(self.month_main.items())},
            "month_report": {str(m): dict(v) for m, v in sorted(self.month_report.items())},
            "ema": list(self.baseline),
            "ema_n": list(self.baseline_n),
            "open": [self.open_completeness, self.open_spike, sorted(self.open_mismatch)],
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> OperationalMonitor:
        """Inverse of :meth:`to_json` (raises ValueError on another format)."""
        if doc.get("v") != _FORMAT:
            raise ValueError(f"operational monitor format {doc.get('v')!r} is not {_FORMAT}")

        def opt(x: Any) -> int | None:
            return None if x is None else int(x)

        monitor = cls()
        monitor.first_start, monitor.newest_ts = opt(doc["first"]), opt(doc["newest"])
        monitor.started = bool(doc["started"])
        monitor.done_day, monitor.done_hour, monitor.done_month = (opt(x) for x in doc["done"])
        for meter_id, (role, energy, last_ts, expected_from, silent, days) in doc["meters"].items():
            monitor.meters[str(meter_id)] = MeterState(
                role=None if role is None else str(role),
                energy=None if energy is None else str(energy),
                last_ts=opt(last_ts),
                expected_from=opt(expected_from),
                silent=bool(silent),
                days={int(d): int(bits, 16) for d, bits in days.items()},
            )
        monitor.hours = {int(h): float(v) for h, v in doc["hours"].items()}
        for name, target in (("month_main", monitor.month_main), ("month_report", monitor.month_report)):
            for m, sums in doc[name].items():
                target[int(m)] = {str(e): float(v) for e, v in sums.items()}
        monitor.baseline = [float(x) for x in doc["ema"]]
        monitor.baseline_n = [int(x) for x in doc["ema_n"]]
        if len(monitor.baseline) != 24 or len(monitor.baseline_n) != 24:
            raise ValueError("operational monitor: 24 baselines expected")
        completeness, spike, mismatch = doc["open"]
        monitor.open_completeness, monitor.open_spike = bool(completeness), bool(spike)
        monitor.open_mismatch = {str(e) for e in mismatch}
        if monitor.newest_ts is not None:
            monitor.pruned_day = day_index(monitor.newest_ts)
        return monitor
