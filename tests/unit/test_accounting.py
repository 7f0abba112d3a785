"""The Accountant: readings to canonical quantities, quantities to (tce, tCO₂)."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from energy.accounting import Accountant, AccountingError, AccountingOptions
from energy.coefficients import CoefficientTable
from energy.emission_factors import EmissionFactorTable
from energy.registry import CoefficientOverride, UnitInfo
from energy.uom import UomError

DAY = date(2024, 6, 15)


@pytest.fixture(scope="module")
def acc() -> Accountant:
    return Accountant()


def test_electricity_equivalent_tce(acc: Accountant) -> None:
    tce, co2 = acc.tce_co2("electricity", 1000.0, DAY)
    assert abs(tce - 0.1229) < 1e-12
    assert co2 == pytest.approx(0.5306, rel=1e-12)  # 2024 uses the 2023 national factor


def test_electricity_2026_uses_2023_factor(acc: Accountant) -> None:
    _, co2 = acc.tce_co2("electricity", 1.0, date(2026, 2, 1))
    assert co2 == pytest.approx(0.5306e-3, rel=1e-12)


def test_raw_coal(acc: Accountant) -> None:
    tce, co2 = acc.tce_co2("raw_coal", 1.0, DAY)
    assert abs(tce - 0.7143) < 1e-12
    # bituminous: NCV 23.204 GJ/t × 0.02618 tC/GJ × 93 % × 44/12, table rounded to 4 figures
    assert co2 == pytest.approx(23.204 * 0.02618 * 0.93 * 44 / 12, abs=5e-4)
    assert co2 == pytest.approx(2.072, rel=1e-12)


def test_natural_gas(acc: Accountant) -> None:
    tce, co2 = acc.tce_co2("natural_gas", 10_000.0, DAY)
    assert tce == pytest.approx(12.143, rel=1e-12)
    assert co2 == pytest.approx(21.62, rel=1e-12)


def test_region_from_argument_and_from_options() -> None:
    day = date(2022, 8, 1)
    by_arg = Accountant().tce_co2("electricity", 1000.0, day, region="华东")[1]
    assert by_arg == pytest.approx(0.5617, rel=1e-12)
    by_option = Accountant(options=AccountingOptions(region="华东"))
    assert by_option.tce_co2("electricity", 1000.0, day)[1] == pytest.approx(0.5617, rel=1e-12)
    # an explicit region beats the options' region
    assert by_option.tce_co2("electricity", 1000.0, day, region="华北")[1] == pytest.approx(0.6776, rel=1e-12)
    assert by_option.tce_co2("electricity", 1000.0, day)[1] == pytest.approx(0.5617, rel=1e-12)


def test_equal_value_basis_differs() -> None:
    equal = Accountant(options=AccountingOptions(electricity_basis="equal_value"))
    tce, _ = equal.tce_co2("electricity", 1000.0, DAY)
    assert tce == pytest.approx(0.3, rel=1e-12)
    assert tce != Accountant().tce_co2("electricity", 1000.0, DAY)[0]
    # other energies are unaffected by the electricity basis
    assert equal.tce_co2("natural_gas", 10_000.0, DAY) == Accountant().tce_co2("natural_gas", 10_000.0, DAY)


def test_ets_series() -> None:
    ets = Accountant(options=AccountingOptions(grid_series="ets_grid"))
    assert ets.tce_co2("electricity", 1000.0, DAY)[1] == pytest.approx(0.5703, rel=1e-12)


def test_with_override_changes_natural_gas_tce() -> None:
    site = Accountant(CoefficientTable.load().with_override("natural_gas", 1.3300, "site LHV test"))
    tce, co2 = site.tce_co2("natural_gas", 10_000.0, DAY)
    assert tce == pytest.approx(13.3, rel=1e-12)
    assert co2 == pytest.approx(21.62, rel=1e-12)  # CO₂ is not the coefficient's business


def test_emission_override() -> None:
    site = Accountant(
        factors=EmissionFactorTable.load().with_override("electricity", 0.0, "kWh", "green PPA")
    )
    assert site.tce_co2("electricity", 1000.0, DAY) == pytest.approx((0.1229, 0.0), rel=1e-12)


def test_fresh_water_editions_and_no_direct_co2(acc: Accountant) -> None:
    assert acc.tce_co2("fresh_water", 1000.0, date(2020, 6, 1)) == pytest.approx((0.2571, 0.0), rel=1e-12)
    assert acc.tce_co2("fresh_water", 1000.0, date(2022, 6, 1)) == pytest.approx((0.0857, 0.0), rel=1e-12)


def test_steam_and_heat(acc: Accountant) -> None:
    tce, co2 = acc.tce_co2("steam", 10.0, DAY)
    assert tce == pytest.approx(1.286, rel=1e-12)
    assert co2 == pytest.approx(10 * 0.11 * 128.6 / 34.12, rel=2e-4)
    tce, co2 = acc.tce_co2("heat", acc.quantity("heat", 1000.0, "MJ"), DAY)
    assert tce == pytest.approx(0.03412, rel=1e-12)
    assert co2 == pytest.approx(0.11, rel=1e-12)


def test_quantity_conversion(acc: Accountant) -> None:
    assert acc.canonical_uom("electricity") == "kWh"
    assert acc.quantity("electricity", 2.5, "MWh") == pytest.approx(2500.0, rel=1e-12)
    assert acc.quantity("electricity", 1.0, "万kWh") == pytest.approx(10_000.0, rel=1e-12)
    assert acc.quantity("raw_coal", 1500.0, "kg") == pytest.approx(1.5, rel=1e-12)
    assert acc.quantity("natural_gas", 3.0, "万Nm³") == pytest.approx(30_000.0, rel=1e-12)
    assert acc.quantity("heat", 1.0, "万kcal") == pytest.approx(0.041868, rel=1e-12)
    # twice, to go through the cache
    assert acc.quantity("electricity", 2.5, "MWh") == pytest.approx(2500.0, rel=1e-12)


def test_volume_of_a_mass_energy_uses_its_density(acc: Accountant) -> None:
    assert acc.quantity("diesel", 1000.0, "L") == pytest.approx(0.87, rel=1e-12)
    assert acc.quantity("fresh_water", 12.0, "m³") == pytest.approx(12.0, rel=1e-12)
    assert acc.rate_per_hour("gasoline", 100.0, "L/h") == pytest.approx(0.074, rel=1e-12)
    # no density: refused
    with pytest.raises(UomError) as info:
        acc.quantity("raw_coal", 1.0, "m³")
    assert info.value.rule == "uom_mismatch"


def test_rates(acc: Accountant) -> None:
    assert acc.rate_per_hour("electricity", 5.0, "kW") == 5.0
    assert acc.rate_per_hour("electricity", 1.0, "MW") == pytest.approx(1000.0, rel=1e-12)
    assert acc.rate_per_hour("natural_gas", 120.0, "Nm3/h") == pytest.approx(120.0, rel=1e-12)
    assert acc.rate_per_hour("steam", 800.0, "kg/h") == pytest.approx(0.8, rel=1e-12)
    assert acc.rate_per_hour("heat", 1.0, "MW") == pytest.approx(3.6, rel=1e-12)


@pytest.mark.parametrize(
    ("call", "rule"),
    [
        (lambda a: a.quantity("electricity", 1.0, "m³"), "uom_mismatch"),
        (lambda a: a.quantity("electricity", 1.0, "furlong"), "unknown_uom"),
        (lambda a: a.rate_per_hour("electricity", 1.0, "kWh"), "uom_mismatch"),
        (lambda a: a.quantity("unobtainium", 1.0, "kWh"), "unknown_energy"),
        (lambda a: a.rate_per_hour("unobtainium", 1.0, "kW"), "unknown_energy"),
        (lambda a: a.canonical_uom("unobtainium"), "unknown_energy"),
        (lambda a: a.tce_co2("unobtainium", 1.0, DAY), "unknown_energy"),
        (lambda a: a.tce_co2("raw_coal", 1.0, date(2005, 1, 1)), "no_coefficient"),
    ],
)
def test_errors_are_accounting_errors(
    acc: Accountant, call: Callable[[Accountant], object], rule: str
) -> None:
    with pytest.raises(AccountingError) as info:
        call(acc)
    assert info.value.rule == rule
    assert str(info.value) == f"{rule}: {info.value.detail}"


def test_equal_value_outside_its_years() -> None:
    equal = Accountant(options=AccountingOptions(electricity_basis="equal_value"))
    with pytest.raises(AccountingError) as info:
        equal.tce_co2("electricity", 1.0, date(2027, 1, 1))
    assert info.value.rule == "no_coefficient"


def test_bad_options() -> None:
    with pytest.raises(AccountingError) as info:
        Accountant(options=AccountingOptions(electricity_basis="average"))
    assert info.value.rule == "unknown_basis"
    with pytest.raises(AccountingError) as info:
        Accountant(options=AccountingOptions(grid_series="nope"))
    assert info.value.rule == "unknown_series"


def factor_file(tmp_path: Path, row: str) -> Path:
    """A CO₂ factor CSV with the packaged file's header and the one data ``row``."""
    path = tmp_path / "f.csv"
    header = "series,energy,region,data_year,t_co2_per_uom,uom,valid_from,valid_to,source,mark,note"
    path.write_text(f"{header}\n{row}\n", encoding="utf-8")
    return path


def test_missing_factor_for_a_fuel_is_an_error_but_not_for_a_medium(tmp_path: Path) -> None:
    path = factor_file(tmp_path, "mee_grid_average,electricity,,2023,0.0005,kWh,2026-01-01,,test,V,")
    acc = Accountant(factors=EmissionFactorTable.load(path))
    with pytest.raises(AccountingError) as info:
        acc.tce_co2("raw_coal", 1.0, DAY)
    assert info.value.rule == "no_emission_factor"
    assert acc.tce_co2("oxygen", 100.0, DAY) == pytest.approx((0.04, 0.0), rel=1e-12)


def test_override_in_a_wrong_unit_is_refused() -> None:
    factors = EmissionFactorTable.load().with_override("natural_gas", 21.62, "万m³", "per 10⁴ m³ by mistake")
    with pytest.raises(AccountingError) as info:
        Accountant(factors=factors)
    assert info.value.rule == "bad_table"


def test_factor_in_a_wrong_unit_is_refused(tmp_path: Path) -> None:
    path = factor_file(tmp_path, "mee_grid_average,electricity,,2023,0.5,MWh,2026-01-01,,test,V,")
    with pytest.raises(AccountingError) as info:
        Accountant(factors=EmissionFactorTable.load(path))
    assert info.value.rule == "bad_table"


def test_cached_lookups_stay_per_region_and_day() -> None:
    acc = Accountant()
    east = acc.tce_co2("electricity", 1000.0, date(2022, 1, 1), "华东")
    north = acc.tce_co2("electricity", 1000.0, date(2022, 1, 1), "华北")
    assert east != north
    assert acc.tce_co2("electricity", 1000.0, date(2022, 1, 1), "华东") == east
    assert acc.tce_co2("electricity", 2000.0, date(2022, 1, 1), "华东")[1] == pytest.approx(2 * east[1])
    before, after = date(2021, 3, 31), date(2021, 4, 1)
    assert acc.tce_co2("fresh_water", 1.0, before) != acc.tce_co2("fresh_water", 1.0, after)


def test_accounting_error_survives_pickling() -> None:
    err = AccountingError("no_coefficient", "none for x")
    back = pickle.loads(pickle.dumps(err))
    assert (back.rule, back.detail) == ("no_coefficient", "none for x")
    assert str(back) == "no_coefficient: none for x"
    assert issubclass(UomError, AccountingError)


def unit(**settings: object) -> UnitInfo:
    """A 河北 steel unit (grid 华北) with the given accounting settings."""
    base: dict[str, object] = {
        "unit_id": "u1", "name": "河北测试钢厂", "region": "河北", "grid_region": "华北", "industry": "steel",
    }  # fmt: skip
    return UnitInfo.model_validate({**base, **settings})


def test_for_unit_without_settings_is_the_same_accountant(acc: Accountant) -> None:
    assert acc.for_unit(None) is acc
    assert acc.for_unit(unit()) is acc
    # a basis equal to the accountant's own is no setting either
    assert acc.for_unit(unit(electricity_basis="equivalent")) is acc


def test_for_unit_basis_and_overrides() -> None:
    base = Accountant()
    site = base.for_unit(
        unit(
            electricity_basis="equal_value",
            coefficient_overrides=[{"energy": "natural_gas", "kgce_per_uom": 1.33, "source": "LHV 2024-03"}],
        )
    )
    assert site is not base
    assert site.options == AccountingOptions(electricity_basis="equal_value")
    assert site.factors is base.factors  # the tables are shared, not reloaded
    assert site.tce_co2("electricity", 1000.0, DAY)[0] == pytest.approx(0.3, rel=1e-12)
    assert site.tce_co2("natural_gas", 10_000.0, DAY) == pytest.approx((13.3, 21.62), rel=1e-12)
    c = site.coefficients.coefficient("natural_gas", DAY)
    assert (c.mark, c.source) == ("site", "LHV 2024-03")
    # the base accountant is untouched
    assert base.tce_co2("natural_gas", 10_000.0, DAY)[0] == pytest.approx(12.143, rel=1e-12)
    assert base.tce_co2("electricity", 1000.0, DAY)[0] == pytest.approx(0.1229, rel=1e-12)


def test_for_unit_is_shared_by_units_with_the_same_settings() -> None:
    base = Accountant()
    override = CoefficientOverride(energy="natural_gas", kgce_per_uom=1.25, source="LHV lab report")
    units = [
        unit(unit_id=f"u{i}", region=p, grid_region=g, coefficient_overrides=(override,))
        for i, (p, g) in enumerate([("河北", "华北"), ("江苏", "华东"), ("四川", "西南")] * 50)
    ]
    accountants = {id(base.for_unit(u)) for u in units}
    assert len(accountants) == 1
    other = unit(coefficient_overrides=(override.model_copy(update={"kgce_per_uom": 1.26}),))
    assert base.for_unit(other) is not base.for_unit(units[0])
    # the same value from another source is another setting (its provenance differs)
    moved = unit(coefficient_overrides=(override.model_copy(update={"source": "another report"}),))
    assert base.for_unit(moved) is not base.for_unit(units[0])
    # equal settings parsed from the registry topic hit the same instance
    again = UnitInfo.from_json(units[0].to_json())
    assert base.for_unit(again) is base.for_unit(units[0])


def test_for_unit_later_override_of_the_same_energy_wins() -> None:
    site = Accountant().for_unit(
        unit(
            coefficient_overrides=[
                {"energy": "natural_gas", "kgce_per_uom": 1.1, "source": "old"},
                {"energy": "natural_gas", "kgce_per_uom": 1.2, "source": "new"},
            ]
        )
    )
    assert site.tce_co2("natural_gas", 1000.0, DAY)[0] == pytest.approx(1.2, rel=1e-12)


def test_for_unit_with_an_unknown_energy_is_refused() -> None:
    bad = unit(coefficient_overrides=[{"energy": "unobtainium", "kgce_per_uom": 1.0, "source": "x"}])
    with pytest.raises(AccountingError) as info:
        Accountant().for_unit(bad)
    assert info.value.rule == "unknown_energy"


def test_unit_geography_newest_data_then_most_specific(acc: Accountant) -> None:
    u = unit()
    site = acc.for_unit(u)
    # 2026: 2023 data, no 河北 row of 2023 → 华北 2023 0.6361 kgCO₂/kWh
    assert site.tce_co2("electricity", 1000.0, date(2026, 3, 1), u.grid_region, u.region)[1] == pytest.approx(
        0.6361, rel=1e-12
    )
    # 2022: 2022 data has a 河北 row → 0.7252
    assert acc.tce_co2("electricity", 1000.0, date(2022, 3, 1), "华北", "河北")[1] == pytest.approx(
        0.7252, rel=1e-12
    )
    assert acc.tce_co2("electricity", 1000.0, date(2022, 3, 1), province="河北")[1] == pytest.approx(
        0.7252, rel=1e-12
    )
    # the cache keeps region and province apart
    assert acc.tce_co2("electricity", 1000.0, date(2022, 3, 1), "华北")[1] == pytest.approx(0.6776, rel=1e-12)


def test_options_region_only_when_the_call_names_neither() -> None:
    east = Accountant(options=AccountingOptions(region="华东"))
    day = date(2022, 8, 1)
    assert east.tce_co2("electricity", 1000.0, day)[1] == pytest.approx(0.5617, rel=1e-12)
    # a province alone replaces the default region: 河北 2022, not 华东
    assert east.tce_co2("electricity", 1000.0, day, province="河北")[1] == pytest.approx(0.7252, rel=1e-12)
    # a province without rows and no region: national, not the default region
    assert east.tce_co2("electricity", 1000.0, day, province="江苏")[1] == pytest.approx(0.5366, rel=1e-12)
