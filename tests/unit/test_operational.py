"""Operational (data-quality) rules: silent meters, daily completeness, consumption spikes, day vs
month consistency — their lifecycle, lateness, exactly-once judging, JSON round-trip and memory."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from energy.alert import Alert
from energy.intervals import HOUR_MS, INTERVAL_MS
from energy.messages import Lang
from energy.operational import (
    DayQuality,
    OperationalMonitor,
    OperationalResult,
    OperationalRules,
)
from energy.periods import DAY_MS

RULES = OperationalRules()  # lateness 2 h, 4 silent intervals, 90 %, 7 days × 2.0 / 0.1 tce, 5 %
UNIT, NAME = "U1", "某某钢铁"
Q = INTERVAL_MS


def t(text: str) -> int:
    """Epoch ms of a local (UTC+08:00) time written without its offset."""
    return int(datetime.fromisoformat(text + "+08:00").timestamp() * 1000)


class Run:
    """A monitor fed interval by interval, evaluated after each interval (now = that time)."""

    def __init__(self, rules: OperationalRules = RULES, listed: tuple[str, ...] = ()) -> None:
        self.monitor = OperationalMonitor()
        self.rules = rules
        self.listed = listed
        self.alerts: list[Alert] = []
        self.quality: list[DayQuality] = []

    def evaluate(self, now: int, lang: Lang = "zh") -> OperationalResult:
        out = self.monitor.evaluate(UNIT, NAME, now, self.rules, self.listed, lang=lang)
        self.alerts += out.alerts
        self.quality += out.quality
        return out

    def feed(
        self,
        start: int,
        end: int,
        meters: Iterable[str] = ("E1",),
        tce: Callable[[str, int], float | None] = lambda m, ts: 0.25,
        energy: str = "electricity",
        role: str = "main",
    ) -> None:
        """Pieces at start, start + 15 min, … end (inclusive) for each meter; ``tce`` None: no piece."""
        meters = tuple(meters)
        for ts in range(start, end + 1, Q):
            for m in meters:
                x = tce(m, ts)
                if x is not None:
                    self.monitor.observe(m, energy, role, ts, x)
            self.evaluate(ts)

    def of(self, rule: str) -> list[Alert]:
        return [a for a in self.alerts if a.rule == rule]


# --- rules ---------------------------------------------------------------------------------------


def test_rules_defaults_and_validation() -> None:
    assert OperationalRules(2 * HOUR_MS, 4, 90.0, 7, 2.0, 0.1, 5.0, DAY_MS) == RULES
    for bad in (
        {"lateness_ms": -1},
        {"lateness_ms": 4 * DAY_MS},
        {"silent_intervals": 0},
        {"completeness_min_pct": 101},
        {"spike_baseline_days": 0},
        {"spike_factor": 0.5},
        {"spike_min_tce": float("nan")},
        {"day_month_max_deviation_pct": -1},
        {"month_report_tolerance_ms": 3 * DAY_MS},
    ):
        with pytest.raises(ValueError):
            OperationalRules(**bad)


def test_observe_refuses_unknown_role_and_non_finite_tce() -> None:
    m = OperationalMonitor()
    with pytest.raises(ValueError, match="role"):
        m.observe("E1", "electricity", "virtual", t("2026-03-05T00:15"), 1.0)
    with pytest.raises(ValueError, match="finite"):
        m.observe("E1", "electricity", "main", t("2026-03-05T00:15"), float("inf"))


def test_nothing_before_any_data() -> None:
    out = OperationalMonitor().evaluate(UNIT, NAME, t("2026-03-05T12:00"), RULES, ("E1", "E2"))
    assert out.alerts == [] and out.quality == []


# --- silent_meter --------------------------------------------------------------------------------


def test_silent_meter_after_four_whole_intervals_then_resolved_when_it_reports_again() -> None:
    run = Run()
    # E1 and E2 from 00:15; E2's last piece at 10:00, then nothing until 11:30.
    run.feed(t("2026-03-05T00:15"), t("2026-03-05T10:00"), ("E1", "E2"))
    run.feed(t("2026-03-05T10:15"), t("2026-03-05T10:45"), ("E1",))
    assert run.of("silent_meter") == []  # 10:00–10:45: three whole intervals
    run.feed(t("2026-03-05T11:00"), t("2026-03-05T11:15"), ("E1",))
    for _ in range(3):
        run.evaluate(t("2026-03-05T11:15"))  # asked again: no repeat of the open alert
    [raised] = run.of("silent_meter")
    assert raised.state == "raised" and raised.severity == "yellow"
    assert raised.key == "U1|silent_meter|E2" and raised.unit_id == UNIT
    assert (raised.value, raised.threshold, raised.uom) == (60.0, 60.0, "min")
    assert raised.ts_ms == t("2026-03-05T11:00")  # 10:00 + 4 intervals
    assert raised.message == "【预警】某某钢铁 电表 E2 已 60 分钟无数据"
    run.feed(t("2026-03-05T11:30"), t("2026-03-05T12:00"), ("E1", "E2"))
    resolved = run.of("silent_meter")[1:]
    assert [(a.state, a.key, a.ts_ms) for a in resolved] == [
        ("resolved", "U1|silent_meter|E2", t("2026-03-05T11:30"))
    ]
    assert resolved[0].message == "【预警解除】某某钢铁 电表 E2 恢复上报数据"


def test_silent_value_is_the_whole_silent_minutes_when_now_jumps() -> None:
    run = Run()
    run.feed(t("2026-03-05T00:15"), t("2026-03-05T01:00"), ("E1", "E2"))
    run.feed(t("2026-03-05T03:40"), t("2026-03-05T03:40"), ("E1",))  # E2 last at 01:00; now 03:40
    [a] = run.of("silent_meter")
    assert a.key == "U1|silent_meter|E2" and a.value == 150.0  # 01:00 → 03:30: ten whole intervals
    assert a.ts_ms == t("2026-03-05T02:00")


def test_expected_meter_never_seen_is_silent_from_the_units_first_data() -> None:
    run = Run(listed=("E1", "E3"))
    run.feed(t("2026-03-05T08:15"), t("2026-03-05T08:45"), ("E1",))
    assert run.of("silent_meter") == []  # 08:00–08:45: three intervals without E3
    run.feed(t("2026-03-05T09:00"), t("2026-03-05T09:00"), ("E1",))
    [a] = run.of("silent_meter")
    assert (a.key, a.value, a.ts_ms) == ("U1|silent_meter|E3", 60.0, t("2026-03-05T09:00"))
    assert a.message == "【预警】某某钢铁 计量表 E3 已 60 分钟无数据"  # energy unknown: not "电表"


def test_meter_added_to_the_list_later_owes_data_from_then_and_delisted_meter_is_resolved() -> None:
    run = Run(listed=("E1",))
    run.feed(t("2026-03-05T00:15"), t("2026-03-05T10:00"), ("E1",))
    run.listed = ("E1", "E4")
    # First listed at 10:15: E4 owes the intervals from 10:15 on (10:00–10:15 is over).
    run.feed(t("2026-03-05T10:15"), t("2026-03-05T11:00"), ("E1",))
    assert run.of("silent_meter") == []
    run.feed(t("2026-03-05T11:15"), t("2026-03-05T11:15"), ("E1",))
    [a] = run.of("silent_meter")
    assert (a.key, a.value, a.ts_ms) == ("U1|silent_meter|E4", 60.0, t("2026-03-05T11:15"))
    run.listed = ("E1",)
    run.evaluate(t("2026-03-05T11:15"), lang="en")
    last = run.of("silent_meter")[-1]
    assert last.state == "resolved" and last.key == "U1|silent_meter|E4"
    assert last.message == "[Warning cleared] 某某钢铁: meter E4 no longer expected to report"


def test_monthly_meters_are_never_silent_nor_owe_intervals() -> None:
    run = Run()
    run.monitor.observe("M1", "raw_coal", "monthly", t("2026-03-01T00:00"), 100.0)
    run.feed(t("2026-03-05T00:15"), t("2026-03-06T03:00"), ("E1",))
    assert run.of("silent_meter") == []
    assert [(q.expected, q.received) for q in run.quality] == [(96, 96)]


# --- completeness --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("missing", "pct", "alerted"),
    [(10, 86 / 96 * 100, True), (9, 87 / 96 * 100, False)],  # 89.583 % < 90 %; 90.625 % ≥ 90 %
)
def test_completeness_of_a_day(missing: int, pct: float, alerted: bool) -> None:
    run = Run()
    gap = {t("2026-03-05T10:00") + k * Q for k in range(missing)}  # 10:00 … : silent for a while
    run.feed(t("2026-03-05T00:15"), t("2026-03-06T02:00"), tce=lambda m, ts: None if ts in gap else 0.25)
    assert run.quality == []  # the day closed at 00:00, but late pieces may come until 02:00
    run.feed(t("2026-03-06T02:15"), t("2026-03-06T02:15"))
    [q] = run.quality
    assert (q.unit_id, q.day_start_ms, q.expected, q.received) == (
        UNIT,
        t("2026-03-05T00:00"),
        96,
        96 - missing,
    )
    assert q.completeness_pct == pytest.approx(pct)
    found = run.of("completeness")
    if not alerted:
        assert found == []
        return
    [a] = found
    assert (a.key, a.state, a.severity, a.uom) == ("U1|data_quality|completeness", "raised", "yellow", "%")
    assert a.value == pytest.approx(89.583333) and a.threshold == 90.0
    assert a.ts_ms == t("2026-03-06T00:00")
    assert a.message == "【预警】某某钢铁 2026-03-05 数据完整率 89.58%，低于 90%"


def test_late_pieces_within_the_lateness_window_count() -> None:
    run = Run()
    late = {t("2026-03-05T23:45"), t("2026-03-06T00:00")}
    run.feed(t("2026-03-05T00:15"), t("2026-03-06T01:45"), tce=lambda m, ts: None if ts in late else 0.25)
    for ts in sorted(late):  # they arrive at 01:45, inside the 2 h window
        run.monitor.observe("E1", "electricity", "main", ts, 0.25)
    run.feed(t("2026-03-06T02:00"), t("2026-03-06T03:00"))
    [q] = run.quality
    assert (q.expected, q.received, q.completeness_pct) == (96, 96, 100.0)
    # A piece of a day already judged counts for nothing and judges nothing again.
    run.monitor.observe("E1", "electricity", "main", t("2026-03-05T12:00"), 0.25)
    run.feed(t("2026-03-06T03:15"), t("2026-03-06T03:15"))
    assert len(run.quality) == 1


def test_zero_lateness_judges_a_day_at_the_first_data_after_midnight() -> None:
    run = Run(OperationalRules(lateness_ms=0))
    run.feed(t("2026-03-05T00:15"), t("2026-03-06T00:00"))
    assert run.quality == []  # the 00:00 piece of another meter could still come
    run.feed(t("2026-03-06T00:15"), t("2026-03-06T00:15"))
    assert [q.day_start_ms for q in run.quality] == [t("2026-03-05T00:00")]


def test_completeness_raised_then_resolved_by_a_later_day() -> None:
    run = Run()
    gap = {t("2026-03-05T10:00") + k * Q for k in range(20)}
    run.feed(t("2026-03-05T00:15"), t("2026-03-07T03:00"), tce=lambda m, ts: None if ts in gap else 0.25)
    assert [round(q.completeness_pct, 3) for q in run.quality] == [79.167, 100.0]
    assert [(a.state, a.ts_ms) for a in run.of("completeness")] == [
        ("raised", t("2026-03-06T00:00")),
        ("resolved", t("2026-03-07T00:00")),
    ]
    assert run.of("completeness")[1].message == "【预警解除】某某钢铁 2026-03-06 数据完整率 100%，已达到 90%"


def test_completeness_sums_over_expected_meters_and_first_day_owes_from_the_first_data() -> None:
    run = Run(listed=("E1", "E2", "S1"))
    # The unit starts at 12:00 (first piece 12:15): 48 intervals owed per meter on day one.
    # E1 reports all, E2 half of them, S1 (a sub-meter) never.
    run.feed(
        t("2026-03-05T12:15"), t("2026-03-06T02:15"), ("E1", "E2"),
        tce=lambda m, ts: None if m == "E2" and ts % (2 * Q) else 0.25,
    )  # fmt: skip
    [q] = run.quality
    assert (q.expected, q.received) == (3 * 48, 48 + 24)
    assert q.completeness_pct == 50.0


def test_a_day_without_any_data_between_data_is_reported_as_zero() -> None:
    # Chosen: once the unit reports again, a day it sent nothing on is 0 % (the silent rule cannot
    # see a whole unit go quiet: now_ts_ms does not move while nothing comes).
    run = Run(listed=("E1", "E2"))
    run.feed(t("2026-03-05T00:15"), t("2026-03-06T00:00"), ("E1", "E2"))
    run.feed(t("2026-03-07T00:15"), t("2026-03-08T03:00"), ("E1", "E2"))
    assert [(q.day_start_ms, q.expected, q.received) for q in run.quality] == [
        (t("2026-03-05T00:00"), 192, 192),
        (t("2026-03-06T00:00"), 192, 0),
        (t("2026-03-07T00:00"), 192, 192),
    ]
    assert [a.state for a in run.of("completeness")] == ["raised", "resolved"]
    assert run.of("silent_meter") == []  # the meters came back together


def test_each_closed_period_is_judged_once_however_often_evaluate_is_called() -> None:
    run = Run()
    run.feed(
        t("2026-03-05T00:15"), t("2026-03-08T03:00"),
        tce=lambda m, ts: None if t("2026-03-06T05:00") <= ts < t("2026-03-06T09:00") else 0.25,
    )  # fmt: skip
    for now in range(t("2026-03-08T00:00"), t("2026-03-08T03:00") + 1, 60_000):
        for _ in range(3):
            run.evaluate(now)
    assert [q.day_start_ms for q in run.quality] == [t(f"2026-03-0{d}T00:00") for d in (5, 6, 7)]
    keys = [(a.key, a.state) for a in run.alerts]
    assert keys == [
        ("U1|silent_meter|E1", "raised"),
        ("U1|silent_meter|E1", "resolved"),
        ("U1|data_quality|completeness", "raised"),
        ("U1|data_quality|completeness", "resolved"),
    ]


# --- consumption_spike ---------------------------------------------------------------------------


def _hourly(x: float) -> Callable[[str, int], float]:
    """Pieces of x/4 tce every 15 minutes: x tce per hour."""
    return lambda m, ts: x / 4


def test_spike_against_the_baseline_of_that_hour_then_resolved() -> None:
    run = Run()
    spike_hour = (t("2026-03-08T14:00"), t("2026-03-08T15:00"))
    run.feed(
        t("2026-03-01T00:15"), t("2026-03-08T18:15"),
        tce=lambda m, ts: 0.6 if spike_hour[0] < ts <= spike_hour[1] else 0.25,
    )  # fmt: skip
    # Seven days of 1 tce/h before 8 March: baseline 1 tce; 14:00–15:00 used 2.4 > 2 × 1 and ≥ 1 + 0.1.
    raised, resolved = run.of("consumption_spike")
    assert (raised.key, raised.state, raised.severity) == ("U1|consumption_spike|unit", "raised", "yellow")
    assert raised.value == pytest.approx(2.4) and (raised.threshold, raised.uom) == (2.0, "tce")
    assert raised.ts_ms == t("2026-03-08T15:00")
    text = "【预警】某某钢铁 2026-03-08 14:00–15:00 能耗 2.4 tce，超过同时段基线 1 tce 的 2 倍"
    assert raised.message == text
    assert (resolved.state, resolved.ts_ms, resolved.value) == ("resolved", t("2026-03-08T16:00"), 1.0)
    # The spike moved the baseline only to the spike line: 1 + (2 − 1) / 7.
    assert run.monitor.baseline[14] == pytest.approx(1 + 1 / 7)
    assert run.monitor.baseline[15] == pytest.approx(1.0)


def test_no_spike_judged_before_the_baseline_has_its_days() -> None:
    run = Run()
    # The 7th day of hour 14 is 7 March: judged against 6 days — not yet.
    run.feed(
        t("2026-03-01T00:15"), t("2026-03-07T18:00"),
        tce=lambda m, ts: 2.5 if t("2026-03-07T14:00") < ts <= t("2026-03-07T15:00") else 0.25,
    )  # fmt: skip
    assert run.of("consumption_spike") == []
    assert run.monitor.baseline_n[14] == 7


def test_small_excess_is_not_a_spike() -> None:
    run = Run()
    run.feed(
        t("2026-03-01T00:15"), t("2026-03-08T18:00"),
        tce=lambda m, ts: 0.0125 if t("2026-03-08T14:00") < ts <= t("2026-03-08T15:00") else 0.0025,
    )  # fmt: skip
    assert run.of("consumption_spike") == []  # 0.05 tce is 5 × 0.01 but only 0.04 tce above it


@pytest.mark.parametrize(("role", "spikes"), [("sub", False), ("main", True)])
def test_only_main_meters_count_in_the_hour(role: str, spikes: bool) -> None:
    run = Run()
    run.feed(t("2026-03-01T00:15"), t("2026-03-08T13:00"))
    for ts in range(t("2026-03-08T13:15"), t("2026-03-08T18:00") + 1, Q):
        run.monitor.observe("E1", "electricity", "main", ts, 0.25)
        run.monitor.observe("S1", "electricity", role, ts, 1.0)  # 4 tce/h more if it counted
        run.evaluate(ts)
    assert bool(run.of("consumption_spike")) is spikes
    assert run.monitor.baseline[14] == pytest.approx(1.0 if role == "sub" else 1 + 1 / 7)


def test_an_hour_without_data_neither_moves_the_baseline_nor_is_judged() -> None:
    run = Run()
    quiet = (t("2026-03-02T14:00"), t("2026-03-02T15:00"))
    run.feed(
        t("2026-03-01T00:15"), t("2026-03-02T23:00"),
        tce=lambda m, ts: None if quiet[0] < ts <= quiet[1] else 0.25,
    )  # fmt: skip
    assert run.monitor.baseline_n[14] == 1 and run.monitor.baseline_n[13] == 2
    assert run.monitor.baseline[14] == 1.0


def test_a_withdrawal_corrects_the_sums_and_is_not_a_reading() -> None:
    run = Run()
    run.feed(t("2026-03-05T00:15"), t("2026-03-05T10:30"), ("E1", "E2"))
    assert run.monitor.hours[t("2026-03-05T10:00")] == pytest.approx(4 * 0.25)
    run.monitor.observe("E2", "electricity", "main", t("2026-03-05T10:30"), -0.25)  # taken back
    assert run.monitor.hours[t("2026-03-05T10:00")] == pytest.approx(3 * 0.25)
    assert run.monitor.month_main[2026 * 12 + 2]["electricity"] == pytest.approx((2 * 42 - 1) * 0.25)
    # A negative piece says nothing about the meter reporting: it neither ends a silence nor fills
    # an interval.
    run.monitor.observe("E3", "electricity", "main", t("2026-03-05T10:45"), -0.1)
    assert run.monitor.meters["E3"].last_ts is None and run.monitor.meters["E3"].days == {}


# --- day_month_mismatch --------------------------------------------------------------------------


def _daily(run: Run, first: str, last: str, per_day: float, energy: str = "electricity") -> None:
    """One main-meter piece of ``per_day`` tce at 12:00 on each day first … last, evaluated."""
    for ts in range(t(first + "T12:00"), t(last + "T12:00") + 1, DAY_MS):
        run.monitor.observe("E1", energy, "main", ts, per_day)
        run.evaluate(ts)


def test_day_month_mismatch_raised_then_resolved() -> None:
    run = Run()
    run.monitor.observe("E1", "electricity", "main", t("2026-03-01T00:15"), 0.0)  # data from 1 March
    _daily(run, "2026-03-01", "2026-03-31", 1.0)  # 31 tce of daily data
    run.monitor.observe("M1", "electricity", "monthly", t("2026-04-01T00:00"), 33.0)
    _daily(run, "2026-04-01", "2026-04-01", 1.0)
    run.monitor.observe("E1", "electricity", "main", t("2026-04-02T02:00"), 0.0)
    run.evaluate(t("2026-04-02T02:00"))
    assert run.of("day_month_mismatch") == []  # judged after the ±1 day tolerance and the lateness
    run.monitor.observe("E1", "electricity", "main", t("2026-04-02T02:01"), 0.0)
    run.evaluate(t("2026-04-02T02:01"))
    [a] = run.of("day_month_mismatch")
    assert a.key == "U1|day_month_mismatch|electricity"
    assert (a.state, a.severity, a.uom) == ("raised", "yellow", "%")
    assert a.value == pytest.approx(100 * 2 / 33, abs=1e-6) and a.threshold == 5.0  # 6.06 %
    assert a.ts_ms == t("2026-04-01T00:00")
    assert a.message == (
        "【预警】某某钢铁 2026 年 3 月 electricity 日数据合计 31 tce，与月报 33 tce 偏差 6.06%，超过 5%"
    )
    # April: 30 tce of data against a report of 31 (stamped 5 h after 1 May 00:00): 3.2 % → resolved.
    _daily(run, "2026-04-02", "2026-04-30", 1.0)
    run.monitor.observe("M1", "electricity", "monthly", t("2026-05-01T05:00"), 31.0)
    _daily(run, "2026-05-01", "2026-05-03", 1.0)
    resolved = run.of("day_month_mismatch")[1]
    assert resolved.state == "resolved" and resolved.value == pytest.approx(100 / 31, abs=1e-6)
    assert resolved.ts_ms == t("2026-05-01T00:00")


def test_monthly_figures_count_in_no_total_and_partial_months_are_not_judged() -> None:
    run = Run()
    _daily(run, "2026-03-10", "2026-03-31", 1.0)  # the unit's data begins on 10 March
    run.monitor.observe("M1", "electricity", "monthly", t("2026-04-01T00:00"), 100.0)
    _daily(run, "2026-04-01", "2026-04-05", 1.0)
    assert run.of("day_month_mismatch") == []
    assert run.monitor.done_month == 2026 * 12 + 2  # March was due, and let go
    assert 2026 * 12 + 2 not in run.monitor.month_main and run.monitor.month_report == {}
    hours = dict(run.monitor.hours)
    run.monitor.observe("M2", "electricity", "monthly", t("2026-05-01T00:00"), 500.0)
    assert run.monitor.hours == hours  # no hour (nor spike) sees a monthly figure
    assert run.monitor.month_main[2026 * 12 + 3] == {"electricity": 5.0}  # April: daily data only


def test_a_consistent_month_without_an_open_alert_changes_nothing() -> None:
    run = Run()
    run.monitor.observe("E1", "natural_gas", "main", t("2026-03-01T00:15"), 0.0)
    _daily(run, "2026-03-01", "2026-03-31", 1.0, "natural_gas")
    run.monitor.observe("M1", "natural_gas", "monthly", t("2026-04-01T00:00"), 30.0)  # 3.3 %
    _daily(run, "2026-04-01", "2026-04-03", 1.0, "natural_gas")
    assert run.of("day_month_mismatch") == []
    assert run.monitor.done_month == 2026 * 12 + 2


# --- messages ------------------------------------------------------------------------------------


def test_english_and_both_languages() -> None:
    en = "[Warning] 某某钢铁: meter E2 silent for 60 min"
    cases: list[tuple[Lang, str]] = [
        ("en", en),
        ("both", f"【预警】某某钢铁 电表 E2 已 60 分钟无数据 / {en}"),
    ]
    for lang, expected in cases:
        m = OperationalMonitor()
        for ts in range(t("2026-03-05T00:15"), t("2026-03-05T01:00") + 1, Q):
            m.observe("E1", "electricity", "main", ts, 0.1)
        m.observe("E2", "electricity", "main", t("2026-03-05T00:15"), 0.1)
        rules = OperationalRules(silent_intervals=2)
        out = m.evaluate(UNIT, NAME, t("2026-03-05T01:15"), rules, lang=lang)
        assert [a.message for a in out.alerts] == [expected]


# --- state: round-trip, cadence, memory ----------------------------------------------------------


def _scenario(run: Run, roundtrip_every: int = 0, json_lib: str = "json") -> None:
    """Twelve days of three meters with gaps, a spike, a late piece and month reports."""
    steps = 0
    start, end = t("2026-03-25T00:15"), t("2026-04-06T06:00")
    run.monitor.observe("M1", "electricity", "monthly", t("2026-04-01T00:00"), 20.0)
    for ts in range(start, end + 1, Q):
        for m in ("E1", "E2", "S1"):
            if m == "E2" and t("2026-03-28T08:00") <= ts < t("2026-03-28T13:00"):
                continue  # silent 5 h
            if m == "S1" and ts % HOUR_MS == 0:
                continue  # S1 misses one interval an hour: 72/96 per day
            x = 0.1 if m != "S1" else 0.05
            if t("2026-04-03T10:00") < ts <= t("2026-04-03T11:00") and m == "E1":
                x = 0.5
            if m == "E1" and ts == t("2026-03-30T10:00"):
                continue  # this one comes late, 90 min after
            run.monitor.observe(m, "electricity", "sub" if m == "S1" else "main", ts, x)
        if ts == t("2026-03-30T11:30"):
            run.monitor.observe("E1", "electricity", "main", t("2026-03-30T10:00"), 0.1)
        run.evaluate(ts)
        steps += 1
        if roundtrip_every and steps % roundtrip_every == 0:
            doc = run.monitor.to_json()
            text = orjson.dumps(doc) if json_lib == "orjson" else json.dumps(doc)
            run.monitor = OperationalMonitor.from_json(json.loads(text))


def test_scenario_exercises_every_rule() -> None:
    run = Run()
    _scenario(run)
    assert {a.rule for a in run.alerts} == {"silent_meter", "completeness", "consumption_spike"}
    assert len(run.quality) == 12  # 25 March … 5 April
    assert run.quality[0].received == 96 + 96 + 72  # the late piece of 30 March counts too


@pytest.mark.parametrize(("every", "lib"), [(1, "json"), (37, "orjson"), (500, "json")])
def test_json_round_trip_mid_stream_gives_the_same_results(every: int, lib: str) -> None:
    straight, restored = Run(), Run()
    _scenario(straight)
    _scenario(restored, roundtrip_every=every, json_lib=lib)
    assert restored.alerts == straight.alerts
    assert restored.quality == straight.quality
    assert restored.monitor == straight.monitor
    assert OperationalMonitor.from_json(straight.monitor.to_json()) == straight.monitor


def test_from_json_refuses_another_format() -> None:
    doc = OperationalMonitor().to_json()
    doc["v"] = 99
    with pytest.raises(ValueError, match="format"):
        OperationalMonitor.from_json(doc)


def _size(m: OperationalMonitor) -> int:
    return len(json.dumps(m.to_json(), ensure_ascii=False, separators=(",", ":")))


def test_memory_is_bounded_over_60_days_of_10_meters() -> None:
    run = Run()
    meters = [f"E{i}" for i in range(10)]
    sizes = []
    for day in range(60):
        start = t("2026-01-01T00:15") + day * DAY_MS
        # each meter misses its own interval of the day, one meter a few hours: keeps state busy
        run.feed(
            start, start + DAY_MS - Q, meters,
            tce=lambda m, ts: None if (ts // Q) % 96 == int(m[1:]) * 7 else 0.01 * (1 + int(m[1:])),
        )  # fmt: skip
        sizes.append(_size(run.monitor))
    assert len(run.quality) == 59
    # Measured ≈ 1.8 kB (10 meters with a day bitmap each, 24 baselines, a few pending hours).
    assert max(sizes) < 2_500, max(sizes)
    assert sizes[-1] <= sizes[9] + 100  # no growth with time


def test_memory_is_bounded_even_without_evaluate() -> None:
    m = OperationalMonitor()
    sizes = []
    for day in range(40):
        for ts in range(t("2026-01-01T00:15") + day * DAY_MS, t("2026-01-02T00:00") + day * DAY_MS + 1, Q):
            for i in range(10):
                m.observe(f"E{i}", "electricity", "main", ts, 0.01)
        m.observe("M1", "electricity", "monthly", t("2026-01-01T00:00") + day * DAY_MS, 1.0)
        sizes.append(_size(m))
    # Measured ≈ 10.7 kB: RETAIN_MS (8 days) of day bitmaps and hour sums, then no growth.
    assert max(sizes) < 12_000, max(sizes)
    assert sizes[-1] <= sizes[15] + 100


# --- properties ----------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    missing=st.sets(st.integers(0, 3 * 96 - 1), max_size=120),
    amounts=st.lists(st.floats(0.0, 3.0), min_size=24, max_size=24),
    cadence=st.sets(st.integers(0, 3 * 96 + 40), max_size=60),
)
def test_period_rules_do_not_depend_on_how_often_evaluate_is_called(
    missing: set[int], amounts: list[float], cadence: set[int]
) -> None:
    """Days, hours and months are judged the same whether evaluate runs after every interval or only
    now and then (the silent rule is about "now", so it is left out)."""
    rules = OperationalRules(spike_baseline_days=1, lateness_ms=HOUR_MS)
    start = t("2026-03-05T00:15")
    every, sometimes = Run(rules), Run(rules)
    last = 3 * 96 + 40
    for k in range(last + 1):
        ts = start + k * Q
        if k not in missing:
            x = amounts[(ts // HOUR_MS) % 24] / 4
            every.monitor.observe("E1", "electricity", "main", ts, x)
            sometimes.monitor.observe("E1", "electricity", "main", ts, x)
        every.evaluate(ts)
        if k in cadence or k == last:
            sometimes.evaluate(ts)

    def period(run: Run) -> list[tuple[str, str, int, float]]:
        # each alert's lifecycle in order; between alerts of different keys the order is free (a rare
        # evaluate judges the days before the hours; found by this test)
        alerts = [(a.key, a.state, a.ts_ms, a.value) for a in run.alerts if a.rule != "silent_meter"]
        return sorted(alerts, key=lambda alert: alert[0])

    assert sometimes.quality == every.quality
    assert period(sometimes) == period(every)
    assert len(every.quality) == 3
    assert [q.received for q in every.quality] == [
        96 - len([k for k in missing if d * 96 <= k < (d + 1) * 96]) for d in range(3)
    ]
