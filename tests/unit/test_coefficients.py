"""Energy types and GB/T 2589 coefficients: the packaged data and the table's lookups."""

from __future__ import annotations

import csv
from datetime import date
from importlib import resources
from pathlib import Path

import pytest

from energy.accounting import AccountingError
from energy.coefficients import CoefficientTable

BRIEF_CODES = {
    "electricity", "raw_coal", "washed_coal", "coke", "crude_oil", "fuel_oil", "gasoline", "kerosene",
    "diesel", "lpg", "refinery_dry_gas", "natural_gas", "oilfield_natural_gas", "coke_oven_gas",
    "blast_furnace_gas", "coal_tar", "heat", "steam", "fresh_water", "softened_water", "deaerated_water",
    "compressed_air", "oxygen", "acetylene", "calcium_carbide",
}  # fmt: skip
# The other rows of domain.md §1.2.
MORE_CODES = {
    "coal_middlings", "coal_slime", "other_gas", "producer_gas", "heavy_oil_catalytic_cracking_gas",
    "heavy_oil_thermal_cracking_gas", "coke_gasification_gas", "pressure_gasification_gas", "water_gas",
}  # fmt: skip


def packaged_rows(name: str) -> list[dict[str, str]]:
    text = resources.files("energy").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@pytest.fixture(scope="module")
def table() -> CoefficientTable:
    return CoefficientTable.load()


@pytest.mark.parametrize("name", ["coefficients.csv", "co2_factors.csv"])
def test_every_row_has_a_source_a_mark_and_a_sane_validity(name: str) -> None:
    rows = packaged_rows(name)
    assert rows
    for row in rows:
        assert row["source"].strip(), row
        assert row["mark"] in {"V", "S", "U"}, row
        start = date.fromisoformat(row["valid_from"])
        if row["valid_to"]:
            assert start <= date.fromisoformat(row["valid_to"]), row


def test_energy_types_cover_domain_table(table: CoefficientTable) -> None:
    codes = set(table.energy_types())
    assert codes >= BRIEF_CODES | MORE_CODES
    for t in table.energy_types().values():
        assert t.category in {"electricity", "fuel", "heat", "medium"}
        assert t.counts_in_total is True  # GB/T 2589 counts 耗能工质 in 综合能耗 too
        assert t.name_zh and t.name_en
    media = {c for c, t in table.energy_types().items() if t.category == "medium"}
    assert media == {
        "fresh_water", "softened_water", "deaerated_water", "compressed_air", "oxygen", "acetylene",
        "calcium_carbide",
    }  # fmt: skip


def test_canonical_units(table: CoefficientTable) -> None:
    uoms = {c: t.uom for c, t in table.energy_types().items()}
    assert uoms["electricity"] == "kWh"
    assert uoms["raw_coal"] == uoms["diesel"] == uoms["steam"] == uoms["fresh_water"] == "t"
    assert uoms["natural_gas"] == uoms["coke_oven_gas"] == uoms["compressed_air"] == "m³"
    assert uoms["heat"] == "GJ"


def test_every_energy_type_has_a_coefficient_on_every_day_since_2008(table: CoefficientTable) -> None:
    with_rows = {c.energy for c in table.rows()}
    assert with_rows == set(table.energy_types())
    days = [date(2008, 1, 1), date(2015, 6, 1), date(2021, 3, 31), date(2021, 4, 1), date(2026, 5, 1)]
    for code in table.energy_types():
        for day in days:
            c = table.coefficient(code, day)
            assert c.kgce_per_uom > 0
            assert c.uom == table.energy_type(code).uom


def test_electricity_equivalent_value(table: CoefficientTable) -> None:
    for day in (date(2015, 1, 1), date(2024, 7, 1)):
        c = table.coefficient("electricity", day)
        assert c.kgce_per_uom == 0.1229
        assert c.basis == "equivalent"
    # consistent with its definition, 860 kcal/kWh ÷ 7 000 kcal/kgce, rounded to 4 decimals
    now = table.coefficient("electricity", date(2024, 1, 1))
    assert now.kgce_per_uom == pytest.approx(860 / 7000, abs=5e-5)
    assert table.coefficient("electricity", date(2015, 1, 1)).mark == "V"
    assert table.coefficient("electricity", date(2022, 1, 1)).mark == "S"


def test_electricity_equal_value_differs_and_is_per_year(table: CoefficientTable) -> None:
    rows = [c for c in table.rows() if c.energy == "electricity" and c.basis == "equal_value"]
    assert sorted(c.valid_from.year for c in rows) == list(range(2020, 2027))
    for c in rows:
        assert c.valid_to == date(c.valid_from.year, 12, 31)
        assert c.mark == "U"
    equal = table.coefficient("electricity", date(2024, 6, 1), basis="equal_value")
    assert equal.basis == "equal_value"
    assert equal.kgce_per_uom != table.coefficient("electricity", date(2024, 6, 1)).kgce_per_uom
    for day in (date(2019, 12, 31), date(2027, 1, 1)):
        with pytest.raises(AccountingError) as info:
            table.coefficient("electricity", day, basis="equal_value")
        assert info.value.rule == "no_coefficient"


def test_other_energies_ignore_the_basis(table: CoefficientTable) -> None:
    day = date(2024, 6, 1)
    assert table.coefficient("natural_gas", day, basis="equal_value") == table.coefficient("natural_gas", day)


@pytest.mark.parametrize(
    ("energy", "kgce_per_uom"),
    [
        ("raw_coal", 714.3),
        ("washed_coal", 900.0),
        ("coke", 971.4),
        ("crude_oil", 1428.6),
        ("gasoline", 1471.4),
        ("diesel", 1457.1),
        ("lpg", 1714.3),
        ("natural_gas", 1.2143),
        ("coke_oven_gas", 0.6143),
        ("blast_furnace_gas", 0.1286),
        ("heat", 34.12),
        ("steam", 128.6),
        ("compressed_air", 0.04),
        ("calcium_carbide", 2078.6),
    ],
)
def test_domain_values(table: CoefficientTable, energy: str, kgce_per_uom: float) -> None:
    assert table.coefficient(energy, date(2023, 1, 1)).kgce_per_uom == kgce_per_uom


@pytest.mark.parametrize(
    ("energy", "kcal"),
    [("raw_coal", 5_000), ("washed_coal", 6_300), ("coke", 6_800), ("diesel", 10_200), ("lpg", 12_000),
     ("natural_gas", 8_500), ("blast_furnace_gas", 900)],
)  # fmt: skip
def test_coefficients_match_their_heating_values(table: CoefficientTable, energy: str, kcal: int) -> None:
    # kcal per kg (per m³ for gases); 1 kgce = 7 000 kcal; GB/T 2589 rounds kgce/kg to 4 decimals
    c = table.coefficient(energy, date(2023, 1, 1))
    per_kg_or_m3 = c.kgce_per_uom / 1000 if c.uom == "t" else c.kgce_per_uom
    assert per_kg_or_m3 == pytest.approx(kcal / 7000, abs=5e-5)


def test_fresh_water_has_two_editions(table: CoefficientTable) -> None:
    old = table.coefficient("fresh_water", date(2020, 6, 1))
    new = table.coefficient("fresh_water", date(2022, 6, 1))
    assert (old.kgce_per_uom, old.mark) == (0.2571, "V")
    assert (new.kgce_per_uom, new.mark) == (0.0857, "S")
    assert table.coefficient("fresh_water", date(2021, 3, 31)).kgce_per_uom == 0.2571
    assert table.coefficient("fresh_water", date(2021, 4, 1)).kgce_per_uom == 0.0857


def test_before_any_edition_there_is_no_coefficient(table: CoefficientTable) -> None:
    with pytest.raises(AccountingError) as info:
        table.coefficient("raw_coal", date(2007, 12, 31))
    assert info.value.rule == "no_coefficient"


def test_unknown_energy_and_basis(table: CoefficientTable) -> None:
    with pytest.raises(AccountingError) as info:
        table.coefficient("unobtainium", date(2024, 1, 1))
    assert info.value.rule == "unknown_energy"
    with pytest.raises(AccountingError) as info:
        table.energy_type("unobtainium")
    assert info.value.rule == "unknown_energy"
    with pytest.raises(AccountingError) as info:
        table.coefficient("electricity", date(2024, 1, 1), basis="calorific")
    assert info.value.rule == "unknown_basis"


def test_with_override_replaces_every_date(table: CoefficientTable) -> None:
    site = table.with_override("natural_gas", 1.33, "site LHV 38.98 MJ/m³, lab report 2024-03")
    for day in (date(1999, 1, 1), date(2015, 1, 1), date(2030, 1, 1)):
        c = site.coefficient("natural_gas", day)
        assert c.kgce_per_uom == 1.33
        assert c.mark == "site"
        assert c.source.startswith("site LHV")
    assert table.coefficient("natural_gas", date(2024, 1, 1)).kgce_per_uom == 1.2143  # original untouched
    assert site.coefficient("raw_coal", date(2024, 1, 1)) == table.coefficient("raw_coal", date(2024, 1, 1))


def test_override_of_electricity_keeps_both_bases(table: CoefficientTable) -> None:
    site = table.with_override("electricity", 0.31, "provincial 等价值 2027")
    assert site.coefficient("electricity", date(2027, 6, 1), basis="equal_value").kgce_per_uom == 0.31
    assert site.coefficient("electricity", date(2027, 6, 1)).kgce_per_uom == 0.31


@pytest.mark.parametrize(("value", "source"), [(0.0, "x"), (-1.0, "x"), (float("nan"), "x"), (1.0, "  ")])
def test_bad_overrides(table: CoefficientTable, value: float, source: str) -> None:
    with pytest.raises(AccountingError) as info:
        table.with_override("natural_gas", value, source)
    assert info.value.rule == "bad_coefficient"
    with pytest.raises(AccountingError) as info:
        table.with_override("unobtainium", 1.0, "x")
    assert info.value.rule == "unknown_energy"


T_HEAD = "code,name_zh,name_en,category,uom,counts_in_total,note\n"
TYPES = (
    "code,name_zh,name_en,category,uom,counts_in_total,note\nnatural_gas,天然气,Natural gas,fuel,m³,true,\n"
)
HEAD = "energy,basis,kgce_per_uom,uom,valid_from,valid_to,source,mark,note\n"


def write(tmp_path: Path, coefficients: str, types: str = TYPES) -> tuple[Path, Path]:
    t = tmp_path / "types.csv"
    c = tmp_path / "coefficients.csv"
    t.write_text(types, encoding="utf-8")
    c.write_text(HEAD + coefficients, encoding="utf-8")
    return t, c


def test_load_from_paths(tmp_path: Path) -> None:
    t, c = write(
        tmp_path,
        "natural_gas,equivalent,1.2,m³,2010-01-01,2019-12-31,test,V,\n"
        "natural_gas,equivalent,1.3,m³,2020-01-01,,test,S,\n",
    )
    table = CoefficientTable.load(t, c)
    assert table.coefficient("natural_gas", date(2015, 1, 1)).kgce_per_uom == 1.2
    assert table.coefficient("natural_gas", date(2025, 1, 1)).kgce_per_uom == 1.3


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        ("natural_gas,equivalent,1.2,m³,2010-01-01,,t,V,\nnatural_gas,equivalent,1.3,m³,2020-01-01,,t,V,\n",
         "overlaps"),
        ("natural_gas,equivalent,1.2,m³,2010-01-01,,t,X,\n", "mark"),
        ("natural_gas,equivalent,1.2,m³,2010-01-01,2009-01-01,t,V,\n", "before valid_from"),
        ("natural_gas,equivalent,1.2,t,2010-01-01,,t,V,\n", "canonical uom"),
        ("coal,equivalent,1.2,t,2010-01-01,,t,V,\n", "not in the energy-type table"),
        ("natural_gas,equivalent,1.2,m³,2010-01-01,,,V,\n", "'source' is empty"),
        ("natural_gas,equivalent,-1,m³,2010-01-01,,t,V,\n", "> 0"),
        ("natural_gas,equivalent,abc,m³,2010-01-01,,t,V,\n", "not a number"),
        ("natural_gas,average,1.2,m³,2010-01-01,,t,V,\n", "basis"),
        ("natural_gas,equivalent,1.2,m³,2010-13-01,,t,V,\n", "ISO date"),
    ],
)  # fmt: skip
def test_bad_coefficient_files_are_refused(tmp_path: Path, rows: str, fragment: str) -> None:
    t, c = write(tmp_path, rows)
    with pytest.raises(AccountingError) as info:
        CoefficientTable.load(t, c)
    assert info.value.rule == "bad_table"
    assert fragment in info.value.detail
    assert "coefficients.csv:" in info.value.detail


@pytest.mark.parametrize(
    ("types", "fragment"),
    [
        (T_HEAD + "ng,天然气,NG,gas,m³,true,\n", "category"),
        (T_HEAD + "ng,天然气,NG,fuel,furlong,true,\n", "furlong"),
        (T_HEAD + "ng,天然气,NG,fuel,m³,yes,\n", "true or false"),
        ("code,name_zh,name_en,category,uom,counts_in_total\nng,天然气,NG,fuel,m³,true\n", "missing columns"),
        ("code,name_zh,name_en,category,uom,counts_in_total,note,density_t_per_m3\n"
         "ng,天然气,NG,fuel,m³,true,,0.7\n", "density"),
    ],
)  # fmt: skip
def test_bad_energy_type_files_are_refused(tmp_path: Path, types: str, fragment: str) -> None:
    t, c = write(tmp_path, "", types)
    with pytest.raises(AccountingError) as info:
        CoefficientTable.load(t, c)
    assert info.value.rule == "bad_table"
    assert fragment in info.value.detail


def test_packaged_table_is_loaded_once() -> None:
    assert CoefficientTable.load() is CoefficientTable.load()


# Every row of domain.md §1.2 and the media it lists: code, canonical uom, then (kgce per canonical uom,
# mark) under the 2008 edition (read on 2015-06-01) and under the 2020 edition (2023-06-01).
# Literal domain values: 0.7143 kgce/kg is written 714.3 kgce/t.
SECTION_1_2 = [
    ("raw_coal", "t", (714.3, "V"), (714.3, "V")),
    ("washed_coal", "t", (900.0, "V"), (900.0, "V")),
    ("coal_middlings", "t", (285.7, "V"), (285.7, "V")),
    ("coal_slime", "t", (357.15, "U"), (357.15, "U")),  # midpoint of 0.2857–0.4286, chosen here
    ("coke", "t", (971.4, "V"), (971.4, "V")),
    ("crude_oil", "t", (1428.6, "V"), (1428.6, "V")),
    ("fuel_oil", "t", (1428.6, "V"), (1428.6, "V")),
    ("gasoline", "t", (1471.4, "V"), (1471.4, "V")),
    ("kerosene", "t", (1471.4, "V"), (1471.4, "V")),
    ("diesel", "t", (1457.1, "V"), (1457.1, "V")),
    ("lpg", "t", (1714.3, "V"), (1714.3, "V")),
    ("refinery_dry_gas", "t", (1571.4, "V"), (1571.4, "V")),
    ("oilfield_natural_gas", "m³", (1.33, "S"), (1.33, "S")),
    ("natural_gas", "m³", (1.2143, "V"), (1.2143, "V")),
    ("coke_oven_gas", "m³", (0.6143, "V"), (0.6143, "V")),
    ("blast_furnace_gas", "m³", (0.1286, "V"), (0.1286, "V")),
    ("other_gas", "m³", (0.35701, "V"), (0.35701, "V")),
    ("producer_gas", "m³", (0.1786, "S"), (0.1786, "S")),
    ("heavy_oil_catalytic_cracking_gas", "m³", (0.6571, "S"), (0.6571, "S")),
    ("heavy_oil_thermal_cracking_gas", "m³", (1.2143, "S"), (1.2143, "S")),
    ("coke_gasification_gas", "m³", (0.5571, "S"), (0.5571, "S")),
    ("pressure_gasification_gas", "m³", (0.5143, "S"), (0.5143, "S")),
    ("water_gas", "m³", (0.3571, "S"), (0.3571, "S")),
    ("coal_tar", "t", (1142.9, "S"), (1142.9, "S")),
    ("heat", "GJ", (34.12, "V"), (34.12, "V")),
    ("electricity", "kWh", (0.1229, "V"), (0.1229, "S")),
    ("steam", "t", (128.6, "S"), (128.6, "S")),
    ("fresh_water", "t", (0.2571, "V"), (0.0857, "S")),
    ("softened_water", "t", (0.4857, "S"), (0.4857, "S")),
    ("deaerated_water", "t", (0.9714, "S"), (0.9714, "S")),
    ("compressed_air", "m³", (0.04, "V"), (0.04, "V")),
    ("oxygen", "m³", (0.4, "V"), (0.4, "V")),
    ("acetylene", "m³", (8.3143, "V"), (8.3143, "V")),
    ("calcium_carbide", "t", (2078.6, "V"), (2078.6, "V")),
]


@pytest.mark.parametrize(("energy", "uom", "edition_2008", "edition_2020"), SECTION_1_2)
def test_every_row_of_section_1_2(
    table: CoefficientTable,
    energy: str,
    uom: str,
    edition_2008: tuple[float, str],
    edition_2020: tuple[float, str],
) -> None:
    assert table.energy_type(energy).uom == uom
    for day, (value, mark) in ((date(2015, 6, 1), edition_2008), (date(2023, 6, 1), edition_2020)):
        c = table.coefficient(energy, day)
        assert (c.kgce_per_uom, c.mark, c.uom) == (value, mark, uom), (energy, day)


def test_section_1_2_is_the_whole_energy_type_table(table: CoefficientTable) -> None:
    assert {row[0] for row in SECTION_1_2} == set(table.energy_types())


def test_the_unverified_rows_are_the_known_placeholders() -> None:
    # a row becomes U (or stops being U) deliberately: update this list and the closing note with it
    coefficients = {
        (r["energy"], r["basis"], r["valid_from"])
        for r in packaged_rows("coefficients.csv")
        if r["mark"] == "U"
    }
    assert coefficients == {
        *(("electricity", "equal_value", f"{y}-01-01") for y in range(2020, 2027)),
        ("coal_slime", "equivalent", "2008-01-01"),
        ("coal_slime", "equivalent", "2021-04-01"),
    }
    factors = {(r["series"], r["energy"]) for r in packaged_rows("co2_factors.csv") if r["mark"] == "U"}
    assert factors == {
        *(("china_fuel_default", gas) for gas in MORE_CODES - {"coal_middlings", "coal_slime", "other_gas"}),
        ("ipcc_2006", "coal_slime"),
    }
