"""Warning levels (NDRC barometer), hysteresis and the alert texts."""

from datetime import datetime

import pytest

from energy.levels import (
    LevelTracker,
    assess,
    assess_intensity,
    assess_product,
    assess_total,
    product_value,
    worst,
)
from energy.messages import level_alert, level_text, product_alert
from energy.periods import UnitPeriods
from energy.quota import IntensityProgress, TotalProgress, quota_progress
from energy.registry import ProductInfo, WarningThresholds, YearTargets

MINUTE = 60_000
DEFAULTS = WarningThresholds()  # red at 100 % projected, yellow from 90 %, 2 % hysteresis, 60 min hold
# No yellow band (yellow line = red line): for the tests about hold and hysteresis between two levels.
TWO_LEVELS = WarningThresholds(yellow_projected_pct=100)
CLINKER = ProductInfo(product_id="clinker", name="熟料", uom="t", benchmark=100, baseline=117, limit=128)


def t(text: str) -> int:
    """Epoch ms of a local (UTC+08:00) time written without its offset."""
    return int(datetime.fromisoformat(text + "+08:00").timestamp() * 1000)


def total(projected_pct: float, schedule_pct: float = 50.0) -> TotalProgress:
    """A cap of 1,000 t with the run-rate projection: used = schedule × projected / 100."""
    used_pct = schedule_pct * projected_pct / 100
    return TotalProgress(
        ytd=used_pct * 10, quota=1000.0, used_pct=used_pct, projected=projected_pct * 10,
        projected_pct=projected_pct,
    )  # fmt: skip


def intensity(change_pct: float, required_pct: float = -2.5) -> IntensityProgress:
    return IntensityProgress(
        value=2.0 * (1 + change_pct / 100), target=1.95, last_year=2.0, change_pct=change_pct, base=2.0,
        change_vs_base_pct=change_pct, required_change_pct=required_pct, required_vs_base_pct=required_pct,
    )  # fmt: skip


# --- the rules -------------------------------------------------------------------------------------


def test_total_projected_over_the_cap_is_red_and_on_schedule_is_green() -> None:
    p = UnitPeriods()
    p.add(t("2026-01-01T00:15"), "raw_coal", 8000.0, 0.0)
    q = quota_progress(YearTargets(year=2026, energy_cap_tce=36_500.0), p, t("2026-03-14T12:00"))
    found = assess(q, DEFAULTS)
    assert set(found) == {"energy_total"}  # no CO₂ cap, no intensity target
    red = found["energy_total"]
    # projected 8,000 × 365 / 72.5 / 36,500 = 110.34 % ≥ 100 %
    assert red.level == "red"
    assert red.figures["red"][0] == pytest.approx(110.3448, rel=1e-5)
    assert red.figures["red"][1] == 100.0
    # with red at 120 %: 110.34 % is past the yellow line (90 %) → yellow, 20.34 points past it
    yellow = assess_total("energy_total", q.energy, q.schedule_pct, WarningThresholds(red_projected_pct=120))
    assert yellow is not None and yellow.level == "yellow"
    assert yellow.clear_of_yellow == pytest.approx(90 - 8000 * 365 / 72.5 / 365)
    # with yellow from 115 % → green
    green_rules = WarningThresholds(red_projected_pct=120, yellow_projected_pct=115)
    green = assess_total("energy_total", q.energy, q.schedule_pct, green_rules)
    assert green is not None and green.level == "green"


def test_at_the_projection_thresholds_red_and_yellow_begin() -> None:
    a = assess_total("energy_total", total(100.0), 50.0, DEFAULTS)
    assert a is not None and a.level == "red"
    b = assess_total("energy_total", total(99.9), 50.0, DEFAULTS)
    assert b is not None and b.level == "yellow"
    c = assess_total("energy_total", total(89.9), 50.0, DEFAULTS)
    assert c is not None and c.level == "green"


def test_no_cap_no_level() -> None:
    empty = TotalProgress(ytd=5.0, quota=None, used_pct=None, projected=9.0, projected_pct=None)
    assert assess_total("energy_total", empty, 50.0, DEFAULTS) is None


@pytest.mark.parametrize(
    ("change_pct", "level"),
    [
        (10.0, "red"),  # rose: 不降反升
        (0.0, "red"),  # did not fall
        (-1.0, "yellow"),  # fell 1 % when 2.5 % is due
        (-2.5, "green"),  # fell exactly as much as due
        (-3.0, "green"),
    ],
)
def test_intensity_levels(change_pct: float, level: str) -> None:
    a = assess_intensity("energy_intensity", intensity(change_pct))
    assert a is not None and a.level == level and a.basis == "yoy"


def test_intensity_from_real_history_rising_year_on_year_is_red() -> None:
    p = UnitPeriods()
    p.add(t("2025-01-01T00:15"), "natural_gas", 1000.0, 0.0)
    p.add_output(t("2025-01-10T00:15"), "steel", 100.0, 500.0)
    p.add(t("2026-01-01T00:15"), "natural_gas", 1100.0, 0.0)
    p.add_output(t("2026-01-10T00:15"), "steel", 100.0, 500.0)
    targets = YearTargets(year=2026, energy_intensity_decline_pct=2.5, base_year=2025)
    a = assess(quota_progress(targets, p, t("2026-03-14T12:00")), DEFAULTS)["energy_intensity"]
    assert a.level == "red"
    assert a.figures["red"][0] == pytest.approx(10.0)  # 2.2 against 2.0 tce/万元
    assert a.figures["red"][1] == 0.0


def test_intensity_without_last_year_is_graded_against_the_base_year() -> None:
    progress = IntensityProgress(
        value=1.98, target=1.903, last_year=None, change_pct=None, base=2.2, change_vs_base_pct=-10.0,
        required_change_pct=None, required_vs_base_pct=-13.5,
    )  # fmt: skip
    a = assess_intensity("energy_intensity", progress)
    assert a is not None and a.level == "yellow" and a.basis == "base"
    no_target = IntensityProgress(1.98, None, 2.0, -1.0, None, None, None, None)
    assert assess_intensity("energy_intensity", no_target) is None


@pytest.mark.parametrize(
    ("kgce_per_t", "level"),
    [(130.0, "red"), (128.0, "yellow"), (120.0, "yellow"), (117.0, "green"), (95.0, "green")],
)
def test_product_against_limit_and_baseline(kgce_per_t: float, level: str) -> None:
    a = assess_product(CLINKER, kgce_per_t)
    assert a is not None and a.level == level and a.indicator == "product:clinker"


def test_product_standards_in_other_units_and_negative_values() -> None:
    # a BOF's net energy is negative: −5 kgce/t is above the −10 baseline
    bof = ProductInfo(product_id="bof", name="转炉钢", uom="t", benchmark=-30, baseline=-10)
    a = assess_product(bof, -5.0)
    assert a is not None and a.level == "yellow"
    assert a.clear_of_yellow == pytest.approx(-50.0)  # (−10 − (−5)) / 10 × 100
    ethylene = ProductInfo(product_id="ethylene", name="乙烯", uom="t", value_uom="kgoe/t", baseline=640)
    # 1 kgce = 29.3076 MJ, 1 kgoe = 41.868 MJ: 1,000 kgce/t = 700 kgoe/t
    assert product_value(ethylene, 1000.0) == pytest.approx(700.0)
    aluminium = ProductInfo(product_id="al", name="电解铝", uom="t", value_uom="kWh/t", limit=13_350)
    assert assess_product(aluminium, 4000.0) is None  # kWh/t is not computable from tce
    assert assess_product(CLINKER, None) is None


def test_the_worst_level() -> None:
    assert worst(["green", "yellow", "green"]) == "yellow"
    assert worst(["yellow", "red"]) == "red"
    assert worst([]) == "green"


# --- hysteresis ------------------------------------------------------------------------------------


def run(
    tracker: LevelTracker, projected: float, ts: int, rules: WarningThresholds = TWO_LEVELS
) -> str | None:
    """Feed one total assessment; the state of the change, if any."""
    change = tracker.update(assess_total("energy_total", total(projected), 50.0, rules), ts, rules)
    return None if change is None else change.state


def test_a_value_hovering_around_the_boundary_does_not_flap() -> None:
    tracker = LevelTracker()
    states = [run(tracker, 100.5 if k % 2 == 0 else 99.5, k * 15 * MINUTE) for k in range(48)]
    assert states[0] == "raised"
    assert states[1:] == [None] * 47  # 99.5 is only 0.5 points clear of the 100 % line, 2 are needed
    assert tracker.level == "red"


def test_a_recovery_is_reported_only_after_the_hold() -> None:
    tracker = LevelTracker()
    assert run(tracker, 104.0, 0) == "raised"
    # 95 %: 5 points clear of red, more than the 2 points of hysteresis
    assert run(tracker, 95.0, 10 * MINUTE) is None
    assert run(tracker, 95.0, 69 * MINUTE) is None  # held 59 minutes
    assert run(tracker, 95.0, 70 * MINUTE) == "resolved"  # held 60
    assert tracker.level == "green"


def test_a_relapse_during_the_hold_starts_it_again() -> None:
    tracker = LevelTracker()
    run(tracker, 104.0, 0)
    assert run(tracker, 95.0, 10 * MINUTE) is None
    assert run(tracker, 99.5, 40 * MINUTE) is None  # not clear: the hold starts again
    assert run(tracker, 95.0, 50 * MINUTE) is None
    assert run(tracker, 95.0, 100 * MINUTE) is None  # 50 minutes since 50
    assert run(tracker, 95.0, 110 * MINUTE) == "resolved"


def test_red_to_yellow_to_green() -> None:
    rules = WarningThresholds(red_projected_pct=110, hysteresis_pct=2, hold_minutes=30)
    tracker = LevelTracker()
    assert run(tracker, 112.0, 0, rules) == "raised"
    # 107 %: 3 points under 110 (clear of red) but past the yellow line at 90 %
    assert run(tracker, 107.0, 15 * MINUTE, rules) is None
    change = tracker.update(assess_total("energy_total", total(107.0), 50.0, rules), 45 * MINUTE, rules)
    assert change is not None
    assert (change.previous, change.level, change.state) == ("red", "yellow", "updated")
    assert run(tracker, 115.0, 50 * MINUTE, rules) == "updated"  # worse again: at once
    assert tracker.level == "red"


def test_the_tracker_survives_the_table_store_mid_hold() -> None:
    tracker = LevelTracker()
    run(tracker, 104.0, 0)
    run(tracker, 95.0, 10 * MINUTE)
    restored = LevelTracker.from_json(tracker.to_json())
    assert restored == tracker
    assert run(restored, 95.0, 70 * MINUTE) == "resolved"
    with pytest.raises(ValueError):
        LevelTracker.from_json({"level": "purple", "since": {}})


def test_without_hysteresis_or_hold_recovery_is_immediate() -> None:
    rules = WarningThresholds(yellow_projected_pct=100, hysteresis_pct=0, hold_minutes=0)
    tracker = LevelTracker()
    assert run(tracker, 100.0, 0, rules) == "raised"
    assert run(tracker, 99.0, 1, rules) == "resolved"
    assert tracker.update(None, 2, rules) is None  # nothing to grade: level kept


# --- alert texts -----------------------------------------------------------------------------------


def test_alert_texts_in_chinese_and_english() -> None:
    alert = level_alert(
        "U1", "某某钢铁", "energy_total", "red", "raised", 112.0, 100.0, 2026, ts_ms=1_000, lang="both"
    )
    assert alert.key == "U1|dual_control|energy_total" and alert.rule == "dual_control"
    assert alert.severity == "red" and alert.state == "raised" and alert.uom == "%"
    assert alert.message == (
        "【一级预警】某某钢铁 2026 年能耗总量预计达到配额的 112% / "
        "[Level 1 warning] 某某钢铁: 2026 energy use projected at 112% of its cap"
    )
    zh = level_text("某某钢铁", "energy_intensity", "yellow", "updated", -1.0, -2.5, 2026)
    assert zh == "【二级预警·级别调整】某某钢铁 2026 年单位产值能耗同比下降 1%，未达到进度要求（下降 2.5%）"
    en = level_text("某某钢铁", "co2_intensity", "red", "raised", 3.26, 0.0, 2026, basis="base", lang="en")
    assert en == (
        "[Level 1 warning] 某某钢铁: 2026 CO₂ per 10,000 yuan of output up 3.3% against the base year"
    )
    resolved = level_text("某某钢铁", "co2_total", "green", "resolved", 95.0, 100.0, 2026)
    assert resolved == "【预警解除】某某钢铁 2026 年碳排放总量回到进度以内（三级），预计达到配额的 95%"
    with pytest.raises(ValueError):
        level_text("某某钢铁", "water", "red", "raised", 1.0, 0.0, 2026)


def test_product_alert() -> None:
    a = assess_product(CLINKER, 130.0)
    assert a is not None
    value, threshold = a.figures["red"]
    alert = product_alert("U2", "某某水泥", CLINKER, "red", "raised", value, threshold, 2026, ts_ms=5)
    assert alert.key == "U2|product_energy|clinker" and alert.uom == "kgce/t"
    assert alert.message == "【一级预警】某某水泥 2026 年熟料单位产品综合能耗 130 kgce/t，高于能耗限额 128"


def test_from_assessment_to_alert() -> None:
    tracker = LevelTracker()
    a = assess_intensity("energy_intensity", intensity(-1.0))
    assert a is not None
    change = tracker.update(a, 7_000, DEFAULTS)
    assert change is not None and change.state == "raised" and change.level == "yellow"
    value, threshold = a.figures[change.level]
    alert = level_alert(
        "U1", "某某钢铁", a.indicator, change.level, change.state, value, threshold, 2026, ts_ms=7_000,
        basis=a.basis, lang="en",
    )  # fmt: skip
    assert alert.severity == "yellow" and alert.value == -1.0 and alert.threshold == -2.5
    assert alert.message == (
        "[Level 2 warning] 某某钢铁: 2026 energy use per 10,000 yuan of output down 1% year on year, "
        "short of the required 2.5% decline"
    )


def test_getting_worse_forgets_a_pending_recovery() -> None:
    rules = WarningThresholds(red_projected_pct=110, hysteresis_pct=2, hold_minutes=60)
    tracker = LevelTracker()
    assert run(tracker, 105.0, 0, rules) == "raised"  # past the yellow line (90 %): yellow
    assert run(tracker, 85.0, 10 * MINUTE, rules) is None  # 5 points clear: green pending from 10
    assert run(tracker, 112.0, 20 * MINUTE, rules) == "updated"  # red at once
    assert run(tracker, 85.0, 30 * MINUTE, rules) is None  # pending again, from 30 (not 10)
    assert run(tracker, 85.0, 75 * MINUTE, rules) is None
    assert run(tracker, 85.0, 90 * MINUTE, rules) == "resolved"
