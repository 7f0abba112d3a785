"""CO₂ factors: the packaged data and the selection rules."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from energy.accounting import AccountingError
from energy.coefficients import CoefficientTable
from energy.emission_factors import EmissionFactorTable

C_TO_CO2 = 44 / 12


@pytest.fixture(scope="module")
def table() -> EmissionFactorTable:
    return EmissionFactorTable.load()


def test_series(table: EmissionFactorTable) -> None:
    assert table.series() == {
        "mee_grid_average", "mee_grid_excl_nonfossil", "mee_grid_fossil", "ets_grid",
        "china_fuel_default", "ipcc_2006", "purchased_heat",
    }  # fmt: skip


def test_electricity_uses_the_newest_published_data_year(table: EmissionFactorTable) -> None:
    f = table.factor("electricity", date(2026, 3, 1))
    assert (f.data_year, f.region, f.series) == (2023, None, "mee_grid_average")
    assert f.t_co2_per_uom == pytest.approx(0.5306e-3, rel=1e-12)
    assert table.factor("electricity", date(2022, 5, 1)).t_co2_per_uom == pytest.approx(0.5366e-3, rel=1e-12)
    assert table.factor("electricity", date(2021, 5, 1)).t_co2_per_uom == pytest.approx(0.5568e-3, rel=1e-12)


def test_reading_older_than_every_factor_uses_the_oldest(table: EmissionFactorTable) -> None:
    f = table.factor("electricity", date(2018, 1, 1))
    assert f.data_year == 2021


def test_regional_factors(table: EmissionFactorTable) -> None:
    east_2022 = table.factor("electricity", date(2022, 6, 1), region="华东")
    assert (east_2022.region, east_2022.data_year) == ("华东", 2022)
    assert east_2022.t_co2_per_uom == pytest.approx(0.5617e-3, rel=1e-12)
    assert table.factor("electricity", date(2026, 6, 1), region="华东").t_co2_per_uom == pytest.approx(
        0.55e-3, rel=1e-12
    )
    assert table.factor("electricity", date(2023, 6, 1), region="西南").t_co2_per_uom == pytest.approx(
        0.2472e-3, rel=1e-12
    )
    assert table.regions("mee_grid_average") >= {"华北", "东北", "华东", "华中", "西北", "南方", "西南"}


def test_newest_data_year_first_then_the_most_specific_row(table: EmissionFactorTable) -> None:
    # 河北 has only a 2022 factor; in 2026 the newest data year is 2023, which has 华北 and national
    # rows but no 河北 row: 华北 2023 (0.6361) wins over 河北 2022 (0.7252)
    f = table.factor("electricity", date(2026, 1, 1), region="华北", province="河北")
    assert (f.region, f.data_year) == ("华北", 2023)
    assert f.t_co2_per_uom == pytest.approx(0.6361e-3, rel=1e-12)
    # in 2022 the newest data year is 2022, which has a 河北 row: the province beats its region
    f = table.factor("electricity", date(2022, 9, 1), region="华北", province="河北")
    assert (f.region, f.data_year) == ("河北", 2022)
    assert f.t_co2_per_uom == pytest.approx(0.7252e-3, rel=1e-12)
    # a province alone: 2026 → national 2023 (no 河北 or region row of 2023); 2022 → 河北 2022
    f = table.factor("electricity", date(2026, 1, 1), province="河北")
    assert (f.region, f.data_year) == (None, 2023)
    assert table.factor("electricity", date(2022, 1, 1), province="河北").region == "河北"
    # 2021 has only a national row: region and province do not matter
    f = table.factor("electricity", date(2021, 7, 1), region="华北", province="河北")
    assert (f.region, f.data_year) == (None, 2021)
    assert f.t_co2_per_uom == pytest.approx(0.5568e-3, rel=1e-12)


def test_a_province_name_given_as_region_counts_the_same(table: EmissionFactorTable) -> None:
    # callers passing a province as the region (the old single-argument API) get the same rule
    for day in (date(2022, 3, 1), date(2026, 3, 1)):
        assert table.factor("electricity", day, region="河北") == table.factor(
            "electricity", day, province="河北"
        )


def test_province_not_in_the_table_uses_its_region_then_national(table: EmissionFactorTable) -> None:
    f = table.factor("electricity", date(2026, 1, 1), region="华东", province="江苏")
    assert (f.region, f.data_year) == ("华东", 2023)
    f = table.factor("electricity", date(2026, 1, 1), province="江苏")
    assert (f.region, f.data_year) == (None, 2023)


def test_geography_does_not_touch_fuels(table: EmissionFactorTable) -> None:
    day = date(2024, 1, 1)
    assert table.factor("natural_gas", day, region="华北", province="河北") == table.factor(
        "natural_gas", day
    )


def test_a_newer_year_without_the_units_rows_falls_back_to_an_older_year(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text(
        HEAD
        + "g,electricity,华东,2022,0.0005,kWh,2024-01-01,,t,V,\n"
        + "g,electricity,华北,2023,0.0006,kWh,2025-01-01,,t,V,\n",
        encoding="utf-8",
    )
    table = EmissionFactorTable.load(path)
    # 2023 has only a 华北 row: a 华东 unit keeps its 2022 row, a 华北 unit takes 2023
    assert table.factor("electricity", date(2026, 1, 1), grid_series="g", region="华东").data_year == 2022
    assert table.factor("electricity", date(2026, 1, 1), grid_series="g", region="华北").data_year == 2023
    # nothing for 西南 nor the nation
    with pytest.raises(AccountingError) as info:
        table.factor("electricity", date(2026, 1, 1), grid_series="g", region="西南")
    assert info.value.rule == "no_emission_factor"
    # before every data year: the oldest year among the unit's rows
    assert table.factor("electricity", date(2019, 1, 1), grid_series="g", region="华北").data_year == 2023


def test_other_grid_series(table: EmissionFactorTable) -> None:
    ets = table.factor("electricity", date(2025, 1, 1), grid_series="ets_grid", region="华东")
    assert (ets.series, ets.region) == ("ets_grid", None)
    assert ets.t_co2_per_uom == pytest.approx(0.5703e-3, rel=1e-12)
    fossil = table.factor("electricity", date(2022, 1, 1), grid_series="mee_grid_fossil")
    assert fossil.t_co2_per_uom == pytest.approx(0.8325e-3, rel=1e-12)
    excl = table.factor("electricity", date(2026, 1, 1), grid_series="mee_grid_excl_nonfossil")
    assert excl.t_co2_per_uom == pytest.approx(0.6096e-3, rel=1e-12)
    with pytest.raises(AccountingError) as info:
        table.factor("electricity", date(2025, 1, 1), grid_series="mee_grid_avg")
    assert info.value.rule == "unknown_series"


# domain.md §2.3: NCV (GJ per t, or per 10⁴ Nm³), carbon content (tC/GJ), oxidation; EF per canonical uom
MRV = [
    ("raw_coal", 23.204, 0.02618, 0.93, 1.0),  # 烟煤
    ("washed_coal", 26.344, 0.02540, 0.93, 1.0),
    ("coke", 28.446, 0.02940, 0.93, 1.0),
    ("crude_oil", 42.62, 0.02010, 0.98, 1.0),
    ("fuel_oil", 40.19, 0.02110, 0.98, 1.0),
    ("gasoline", 44.80, 0.01890, 0.98, 1.0),
    ("diesel", 43.33, 0.02020, 0.98, 1.0),
    ("kerosene", 44.75, 0.01960, 0.98, 1.0),
    ("lpg", 47.31, 0.01720, 0.99, 1.0),
    ("natural_gas", 389.31, 0.01530, 0.99, 1e-4),
    ("coke_oven_gas", 173.854, 0.01360, 0.99, 1e-4),
    ("blast_furnace_gas", 37.69, 0.07080, 0.99, 1e-4),
]


@pytest.mark.parametrize(("energy", "ncv", "cc", "of", "per_uom"), MRV)
def test_fuel_defaults_match_ncv_cc_of(
    table: EmissionFactorTable, energy: str, ncv: float, cc: float, of: float, per_uom: float
) -> None:
    f = table.factor(energy, date(2024, 1, 1))
    assert f.series == "china_fuel_default"
    recomputed = ncv * cc * of * C_TO_CO2 * per_uom
    # the table keeps 4 significant figures, as domain.md prints them
    assert f.t_co2_per_uom == pytest.approx(recomputed, rel=6e-4)


def test_headline_fuel_factors(table: EmissionFactorTable) -> None:
    assert table.factor("raw_coal", date(2024, 1, 1)).t_co2_per_uom == 2.072
    assert table.factor("natural_gas", date(2024, 1, 1)).t_co2_per_uom == 0.002162
    assert table.factor("diesel", date(2024, 1, 1)).t_co2_per_uom == 3.145


def test_ipcc_is_the_fallback(table: EmissionFactorTable) -> None:
    slime = table.factor("coal_slime", date(2024, 1, 1))
    assert slime.series == "ipcc_2006"
    # other bituminous coal 94 600 kgCO₂/TJ × 10.454 GJ/t (midpoint of 煤泥's 8.363–12.545)
    assert slime.t_co2_per_uom == pytest.approx(94_600 * 10.454 / 1e6, rel=6e-4)
    diesel = next(f for f in table.rows() if f.series == "ipcc_2006" and f.energy == "diesel")
    assert diesel.t_co2_per_uom == pytest.approx(74_100 * 43.33 / 1e6, rel=6e-4)  # domain.md: 3.21


def test_heat_and_steam(table: EmissionFactorTable) -> None:
    heat = table.factor("heat", date(2024, 1, 1))
    assert (heat.series, heat.t_co2_per_uom, heat.uom) == ("purchased_heat", 0.11, "GJ")
    steam = table.factor("steam", date(2024, 1, 1))
    assert steam.series == "purchased_heat"
    assert steam.t_co2_per_uom == pytest.approx(0.11 * 128.6 / 34.12, rel=2e-4)
    assert steam.mark == "S"


def test_every_non_medium_energy_has_a_factor_and_media_have_none(table: EmissionFactorTable) -> None:
    types = CoefficientTable.load().energy_types()
    for code, t in types.items():
        if t.category == "medium":
            with pytest.raises(AccountingError) as info:
                table.factor(code, date(2024, 1, 1))
            assert info.value.rule == "no_emission_factor"
            continue
        for day in (date(2005, 1, 1), date(2024, 1, 1)):
            f = table.factor(code, day)
            assert f.t_co2_per_uom > 0
            assert f.uom == t.uom, code


def test_every_row_names_a_known_energy_in_its_canonical_unit(table: EmissionFactorTable) -> None:
    types = CoefficientTable.load().energy_types()
    for f in table.rows():
        assert f.energy in types, f
        assert f.uom == types[f.energy].uom, f
        assert f.source.strip() and f.mark in {"V", "S", "U"}
        assert f.valid_to is None or f.valid_from <= f.valid_to
        assert (f.data_year is None) == (f.series in {"china_fuel_default", "ipcc_2006", "purchased_heat"})


def test_override(table: EmissionFactorTable) -> None:
    site = table.with_override("producer_gas", 0.0006, "m³", "gas analysis 2024-05")
    f = site.factor("producer_gas", date(2024, 1, 1))
    assert (f.t_co2_per_uom, f.mark) == (0.0006, "site")
    assert table.factor("producer_gas", date(2024, 1, 1)).mark == "U"
    with pytest.raises(AccountingError) as info:
        table.with_override("producer_gas", float("inf"), "m³", "x")
    assert info.value.rule == "bad_emission_factor"


def test_no_factor(table: EmissionFactorTable) -> None:
    with pytest.raises(AccountingError) as info:
        table.factor("unobtainium", date(2024, 1, 1))
    assert info.value.rule == "no_emission_factor"


HEAD = "series,energy,region,data_year,t_co2_per_uom,uom,valid_from,valid_to,source,mark,note\n"


def test_load_from_path_and_valid_to(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text(
        HEAD
        + "g,electricity,,2020,0.0006,kWh,2022-01-01,2023-12-31,t,V,\n"
        + "g,electricity,,2019,0.0007,kWh,2021-01-01,,t,V,\n",
        encoding="utf-8",
    )
    table = EmissionFactorTable.load(path)
    assert table.factor("electricity", date(2023, 6, 1), grid_series="g").data_year == 2020
    # the 2020 row was withdrawn at the end of 2023
    assert table.factor("electricity", date(2024, 6, 1), grid_series="g").data_year == 2019


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        ("g,electricity,,2022,0.0005,kWh,2024-01-01,,t,V,\ng,electricity,,2022,0.0006,kWh,2024-06-01,,t,V,\n",
         "appears twice"),
        ("g,electricity,,2022,0.0005,kWh,2024-01-01,,t,V,\ng,electricity,,,0.0006,kWh,2024-06-01,,t,V,\n",
         "mixes dated and undated"),
        ("g,electricity,,22,0.0005,kWh,2024-01-01,,t,V,\n", "not a year"),
        ("g,electricity,,2022,0.0005,furlong,2024-01-01,,t,V,\n", "furlong"),
        ("g,electricity,,2022,0.0005,kWh,2024-01-01,,t,v,\n", "mark"),
        ("g,electricity,,2022,-0.1,kWh,2024-01-01,,t,V,\n", "number"),
    ],
)  # fmt: skip
def test_bad_factor_files_are_refused(tmp_path: Path, rows: str, fragment: str) -> None:
    path = tmp_path / "f.csv"
    path.write_text(HEAD + rows, encoding="utf-8")
    with pytest.raises(AccountingError) as info:
        EmissionFactorTable.load(path)
    assert info.value.rule == "bad_table"
    assert fragment in info.value.detail
