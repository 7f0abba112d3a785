"""Quota progress and projection, with the arithmetic written out."""

from datetime import datetime

import pytest

from energy.periods import UnitPeriods
from energy.quota import product_energy, quota_progress, schedule_share
from energy.registry import ProductInfo, YearTargets


def t(text: str) -> int:
    """Epoch ms of a local (UTC+08:00) time written without its offset."""
    return int(datetime.fromisoformat(text + "+08:00").timestamp() * 1000)


#: Noon on day 73 of 2026 (31 January days + 28 February days + 14 = 73): 72.5 days elapsed.
NOON_DAY_73 = t("2026-03-14T12:00")
#: Shares of the months of a year: 0.1, 0.1, 0.093, then 0.0785 × 8 and 0.079 (sum 1).
SHARES = [0.1, 0.1, 0.093] + [0.0785] * 8 + [0.079]


def test_linear_schedule_in_a_common_and_a_leap_year() -> None:
    assert schedule_share(NOON_DAY_73) == pytest.approx(72.5 / 365)
    # 1 March 2024 at noon: 31 + 29 + 0.5 days of 366
    assert schedule_share(t("2024-03-01T12:00")) == pytest.approx(60.5 / 366)
    # at 00:00 on 1 January the year just closed is complete
    assert schedule_share(t("2026-01-01T00:00")) == 1.0
    assert schedule_share(t("2026-01-01T06:00")) == pytest.approx(0.25 / 365)


def test_seasonal_schedule_from_monthly_shares() -> None:
    # completed months 0.1 + 0.1, then March's 0.093 × 13.5/31 of March elapsed = 0.0405
    assert schedule_share(NOON_DAY_73, SHARES) == pytest.approx(0.2405)
    # weights need not sum to 1: they are normalised
    assert schedule_share(NOON_DAY_73, [s * 40_000 for s in SHARES]) == pytest.approx(0.2405)
    with pytest.raises(ValueError):
        schedule_share(NOON_DAY_73, [0.5, 0.5])


def test_progress_with_a_linear_schedule() -> None:
    p = UnitPeriods()
    p.add(t("2026-01-01T00:15"), "raw_coal", 8000.0, 20000.0)
    targets = YearTargets(year=2026, energy_cap_tce=36_500.0, co2_cap_t=100_000.0)
    q = quota_progress(targets, p, NOON_DAY_73)
    assert q.projection == "linear"  # no history of 2025
    assert q.ytd_tce == 8000.0 and q.quota_tce == 36_500.0
    assert q.used_pct == pytest.approx(8000 / 36_500 * 100)  # 21.918 %
    assert q.schedule_pct == pytest.approx(72.5 / 365 * 100)  # 19.863 %: 7,250 tce at 100 tce/day
    assert q.projected_tce == pytest.approx(8000 * 365 / 72.5)  # 40,275.86 tce
    assert q.projected_pct == pytest.approx(8000 * 365 / 72.5 / 36_500 * 100)  # 110.34 %
    assert q.co2.ytd == 20000.0
    assert q.co2.used_pct == pytest.approx(20.0)
    assert q.co2.projected == pytest.approx(20000 * 365 / 72.5)  # 100,689.66 t
    assert q.co2.projected_pct == pytest.approx(100.68966, rel=1e-6)
    assert q.intensity is None and q.intensity_target is None  # no output value, no target
    fields = q.status_fields()
    assert fields["projection"] == "linear" and fields["quota_tce"] == 36_500.0
    assert "intensity" not in fields  # no value: no field


def test_progress_with_a_seasonal_schedule_from_last_year() -> None:
    p = UnitPeriods()
    # 2025 by month: 4,000 / 4,000 / 3,720 / 3,140 × 8 / 3,160 = 40,000 tce → the shares of SHARES
    months = [4000.0, 4000.0, 3720.0] + [3140.0] * 8 + [3160.0]
    for m, tce in enumerate(months, start=1):
        p.add(t(f"2025-{m:02d}-01T00:15"), "raw_coal", tce, 0.0)
    p.add(t("2026-01-01T00:15"), "raw_coal", 8000.0, 0.0)
    shares = p.monthly_shares(2025)
    assert shares == pytest.approx(SHARES)
    q = quota_progress(YearTargets(year=2026, energy_cap_tce=36_500.0), p, NOON_DAY_73)
    assert q.projection == "seasonal"
    assert q.schedule_pct == pytest.approx(24.05)  # 0.1 + 0.1 + 0.093 × 13.5/31
    assert q.projected_tce == pytest.approx(8000 / 0.2405)  # 33,264.03 tce
    assert q.projected_pct == pytest.approx(8000 / 0.2405 / 36_500 * 100)  # 91.13 %


def intensity_history(this_year_tce: float) -> UnitPeriods:
    """2025: 1,000 tce and 500 万元 in January, 3,000 tce and 1,500 万元 in June (2.0 tce/万元 in the
    same period and over the year); 2026: ``this_year_tce`` and 500 万元 in January."""
    p = UnitPeriods()
    p.add(t("2025-01-01T00:15"), "natural_gas", 1000.0, 2000.0)
    p.add_output(t("2025-01-10T00:15"), "steel", 100.0, 500.0)
    p.add(t("2025-06-01T00:15"), "natural_gas", 3000.0, 6000.0)
    p.add_output(t("2025-06-10T00:15"), "steel", 300.0, 1500.0)
    p.add(t("2026-01-01T00:15"), "natural_gas", this_year_tce, this_year_tce * 2)
    p.add_output(t("2026-01-10T00:15"), "steel", 100.0, 500.0)
    return p


@pytest.mark.parametrize(
    ("tce", "intensity", "change_pct"),
    [
        (1100.0, 2.2, 10.0),  # 1,100 / 500 = 2.2 against 2.0: +10 %
        (990.0, 1.98, -1.0),  # 1.98 / 2.0 − 1 = −1 %
        (970.0, 1.94, -3.0),  # 1.94 / 2.0 − 1 = −3 %
    ],
)
def test_intensity_against_the_same_period_last_year_and_the_target(
    tce: float, intensity: float, change_pct: float
) -> None:
    targets = YearTargets(year=2026, energy_intensity_decline_pct=2.5, base_year=2025)
    q = quota_progress(targets, intensity_history(tce), NOON_DAY_73)
    ei = q.energy_intensity
    assert ei.value == pytest.approx(intensity)
    assert ei.last_year == pytest.approx(2.0)  # 1,000 / 500
    assert ei.change_pct == pytest.approx(change_pct)
    assert ei.base == pytest.approx(2.0)  # 2025 as a whole: 4,000 / 2,000
    assert ei.target == pytest.approx(1.95)  # 2.0 × (1 − 2.5 %)
    assert ei.required_change_pct == pytest.approx(-2.5)  # 1.95 / 2.0 − 1
    assert ei.change_vs_base_pct == pytest.approx(change_pct)
    # CO₂ is 2 t per tce in both years: the same changes, no target
    assert q.co2_intensity.change_pct == pytest.approx(change_pct)
    assert q.co2_intensity.target is None


def test_an_absolute_intensity_target_sets_the_required_decline_against_last_years_whole_year() -> None:
    targets = YearTargets(year=2026, energy_intensity_target=1.9)
    ei = quota_progress(targets, intensity_history(990.0), NOON_DAY_73).energy_intensity
    assert ei.target == 1.9
    assert ei.required_change_pct == pytest.approx(-5.0)  # 1.9 / 2.0 − 1


def test_without_history_the_base_intensity_is_the_given_one() -> None:
    p = UnitPeriods()
    p.add(t("2026-01-01T00:15"), "natural_gas", 990.0, 0.0)
    p.add_output(t("2026-01-10T00:15"), "steel", 100.0, 500.0)
    targets = YearTargets(
        year=2026, energy_intensity_decline_pct=13.5, base_year=2020, base_energy_intensity=2.2
    )
    ei = quota_progress(targets, p, NOON_DAY_73).energy_intensity
    assert ei.value == pytest.approx(1.98)
    assert ei.change_pct is None and ei.last_year is None
    assert ei.base == 2.2
    assert ei.target == pytest.approx(2.2 * 0.865)  # 1.903
    assert ei.change_vs_base_pct == pytest.approx(-10.0)  # 1.98 / 2.2 − 1
    assert ei.required_vs_base_pct == pytest.approx(-13.5)
    assert ei.required_change_pct is None  # the base year is not last year and 2025 is unknown


def test_a_decline_without_a_base_year_is_a_decline_on_last_year() -> None:
    p = UnitPeriods()
    p.add(t("2026-01-01T00:15"), "natural_gas", 990.0, 0.0)
    p.add_output(t("2026-01-10T00:15"), "steel", 100.0, 500.0)
    targets = YearTargets(year=2026, energy_intensity_decline_pct=2.5, base_energy_intensity=2.0)
    ei = quota_progress(targets, p, NOON_DAY_73).energy_intensity
    assert ei.required_change_pct == -2.5


def test_targets_must_be_for_the_year_asked() -> None:
    with pytest.raises(ValueError):
        quota_progress(YearTargets(year=2025), UnitPeriods(), NOON_DAY_73)


def test_product_energy_per_unit_of_output() -> None:
    p = UnitPeriods()
    p.add(t("2026-01-05T10:00"), "raw_coal", 10.0, 26.0)
    p.add(t("2026-01-05T10:00"), "natural_gas", 3.0, 6.0, excluded="feedstock")
    p.add_output(t("2026-01-06T00:00"), "clinker", 100.0, 40.0)
    whole = ProductInfo(product_id="clinker", name="熟料", uom="t", benchmark=100, baseline=117, limit=128)
    # 综合能耗 includes feedstock: (10 + 3) tce × 1000 kgce/tce / 100 t = 130 kgce/t
    assert product_energy(whole, p, NOON_DAY_73) == pytest.approx(130.0)
    by_meter = whole.model_copy(update={"meters": ("kiln",)})
    p.add_product_energy(t("2026-01-05T10:00"), "clinker", 11.5, 30.0)
    assert product_energy(by_meter, p, NOON_DAY_73) == pytest.approx(115.0)  # 11.5 × 1000 / 100
    assert product_energy(whole.model_copy(update={"product_id": "cement"}), p, NOON_DAY_73) is None
