"""Worked examples, computed by hand from the published coefficients (reference/domain.md §1.2, §2).

Every expected number below is written out from the literal domain values, not read back from the
tables, so a wrong table row (or a wrong lookup rule) fails here. Tolerance: 1e-12 relative.

The site: one day, 2026-03-10 in China, meters reporting in their own units.

    electricity   12 MWh           = 12 000 kWh
    raw coal      8 500 kg         = 8.5 t
    natural gas   0.32 万Nm³       = 3 200 m³
    steam         15 000 kg        = 15 t
"""

from __future__ import annotations

from datetime import date

import pytest

from energy.accounting import Accountant, AccountingOptions
from energy.intervals import local_day
from energy.registry import UnitInfo
from energy.schema import parse_ts_ms

REL = 1e-12

# the day's readings: (energy, value, meter uom)
READINGS = [
    ("electricity", 12.0, "MWh"),
    ("raw_coal", 8_500.0, "kg"),
    ("natural_gas", 0.32, "万Nm³"),
    ("steam", 15_000.0, "kg"),
]
# a reading at 09:00 China time; its local day is what the coefficients and factors are chosen by
DAY = local_day(parse_ts_ms("2026-03-10T09:00:00+08:00"))


def close(actual: float, expected: float) -> bool:
    return abs(actual - expected) <= REL * abs(expected)


def unit(region: str, grid_region: str, **settings: object) -> UnitInfo:
    return UnitInfo.model_validate(
        {
            "unit_id": "site",
            "name": "例",
            "region": region,
            "grid_region": grid_region,
            "industry": "chemicals",
        }
        | settings
    )


def account(acc: Accountant, info: UnitInfo | None, day: date = DAY) -> dict[str, tuple[float, float]]:
    """(tce, tCO₂) per energy of the day's READINGS for ``info`` (or with no unit)."""
    site = acc.for_unit(info)
    region, province = (info.grid_region, info.region) if info is not None else (None, None)
    out: dict[str, tuple[float, float]] = {}
    for energy, value, uom in READINGS:
        qty = site.quantity(energy, value, uom)
        out[energy] = site.tce_co2(energy, qty, day, region, province)
    return out


@pytest.fixture(scope="module")
def acc() -> Accountant:
    return Accountant()


def test_meter_units_to_canonical_quantities(acc: Accountant) -> None:
    assert date(2026, 3, 10) == DAY
    assert close(acc.quantity("electricity", 12.0, "MWh"), 12_000.0)  # 12 × 1 000 kWh
    assert close(acc.quantity("raw_coal", 8_500.0, "kg"), 8.5)  # 8 500 kg ÷ 1 000
    assert close(acc.quantity("natural_gas", 0.32, "万Nm³"), 3_200.0)  # 0.32 × 10 000 m³
    assert close(acc.quantity("steam", 15_000.0, "kg"), 15.0)


def test_a_four_energy_day_in_jiangsu(acc: Accountant) -> None:
    """(a) 江苏 (grid 华东), 当量值, packaged coefficients; 2026 uses the 2023 grid factors."""
    r = account(acc, unit("江苏", "华东"))
    # tce = qty × kgce/uom ÷ 1 000 (GB/T 2589 Appendix A, domain.md §1.2)
    #   electricity  12 000 kWh × 0.1229 kgce/kWh (当量值)            = 1 474.8   kgce = 1.4748   tce
    #   raw coal     8.5 t × 714.3 kgce/t (0.7143 kgce/kg)             = 6 071.55  kgce = 6.07155  tce
    #   natural gas  3 200 m³ × 1.2143 kgce/m³ (气田天然气)            = 3 885.76  kgce = 3.88576  tce
    #   steam        15 t × 128.6 kgce/t (0.1286 kgce/kg, [S])          = 1 929     kgce = 1.929    tce
    # tCO₂ (domain.md §2)
    #   electricity  12 000 kWh × 0.5500 kgCO₂/kWh (华东 2023, §2.1)   = 6 600 kg       = 6.6      t
    #   raw coal     8.5 t × 2.072 tCO₂/t (烟煤 MRV default, §2.3)                      = 17.612   t
    #   natural gas  3 200 m³ × 21.62 tCO₂/10⁴Nm³ = 3 200 × 0.002162                    = 6.9184   t
    #   steam        15 t × 0.4146 tCO₂/t (0.11 tCO₂/GJ × 128.6/34.12 GJ/t, §2.3, rounded
    #                to 4 figures as the table stores it)                                = 6.219    t
    expected = {
        "electricity": (1.4748, 6.6),
        "raw_coal": (6.07155, 17.612),
        "natural_gas": (3.88576, 6.9184),
        "steam": (1.929, 6.219),
    }
    for energy, (tce, co2) in expected.items():
        assert close(r[energy][0], tce), (energy, r[energy])
        assert close(r[energy][1], co2), (energy, r[energy])
    # 综合能耗 1.4748 + 6.07155 + 3.88576 + 1.929 = 13.36111 tce
    assert close(sum(v[0] for v in r.values()), 13.36111)
    # CO₂ 6.6 + 17.612 + 6.9184 + 6.219 = 37.3494 t
    assert close(sum(v[1] for v in r.values()), 37.3494)


def test_the_same_day_on_equal_value_with_a_measured_gas_coefficient(acc: Accountant) -> None:
    """(b) electricity as 等价值 and the site's natural gas from its measured heating value."""
    info = unit(
        "江苏",
        "华东",
        electricity_basis="equal_value",
        # measured LHV 8 750 kcal/m³ ÷ 7 000 kcal/kgce = 1.25 kgce/m³
        coefficient_overrides=[{"energy": "natural_gas", "kgce_per_uom": 1.25, "source": "LHV test 2026-02"}],
    )
    r = account(acc, info)
    #   electricity  12 000 kWh × 0.3 kgce/kWh (2026 等价值 — a PLACEHOLDER [U], domain.md §1.1:
    #                "≈0.30–0.32 kgce/kWh in 2020s", yearly 供电煤耗 not verified)    = 3 600 kgce = 3.6 tce
    #   natural gas  3 200 m³ × 1.25 kgce/m³ (site)                                     = 4 000 kgce = 4.0 tce
    #   raw coal and steam as in (a): 6.07155 and 1.929 tce
    assert close(r["electricity"][0], 3.6)
    assert close(r["natural_gas"][0], 4.0)
    assert close(r["raw_coal"][0], 6.07155)
    assert close(r["steam"][0], 1.929)
    # 3.6 + 6.07155 + 4.0 + 1.929 = 15.60055 tce (vs 13.36111 on 当量值 with the default gas)
    assert close(sum(v[0] for v in r.values()), 15.60055)
    # CO₂ does not depend on the basis nor on a coefficient: still 37.3494 t
    assert close(sum(v[1] for v in r.values()), 37.3494)
    c = acc.for_unit(info).coefficients.coefficient("natural_gas", DAY)
    assert (c.mark, c.source) == ("site", "LHV test 2026-02")


@pytest.mark.parametrize(
    ("info", "day", "kg_co2_per_kwh", "t_co2"),
    [
        # 2026 → 2023 data. 河北 has no 2023 row: its grid 华北's 0.6361, not 河北 2022's 0.7252
        (unit("河北", "华北"), date(2026, 3, 10), 0.6361, 7.6332),  # 12 000 × 0.6361 kg
        (unit("江苏", "华东"), date(2026, 3, 10), 0.5500, 6.6),  # 12 000 × 0.5500 kg
        (None, date(2026, 3, 10), 0.5306, 6.3672),  # national 2023: 12 000 × 0.5306 kg
        # 2022 → 2022 data, which has a 河北 row: the province beats its region
        (unit("河北", "华北"), date(2022, 8, 1), 0.7252, 8.7024),  # 12 000 × 0.7252 kg
        (unit("江苏", "华东"), date(2022, 8, 1), 0.5617, 6.7404),  # 华东 2022
        (None, date(2022, 8, 1), 0.5366, 6.4392),  # national 2022
        # 2021 → only a national 2021 factor exists, wherever the unit is
        (unit("河北", "华北"), date(2021, 8, 1), 0.5568, 6.6816),  # 12 000 × 0.5568 kg
    ],
)
def test_electricity_co2_by_place(
    acc: Accountant, info: UnitInfo | None, day: date, kg_co2_per_kwh: float, t_co2: float
) -> None:
    """(c) 12 000 kWh in 河北 vs 华东 vs no region."""
    assert close(12_000 * kg_co2_per_kwh / 1000, t_co2)  # the arithmetic of the row itself
    tce, co2 = account(acc, info, day)["electricity"]
    assert close(co2, t_co2)
    assert close(tce, 1.4748)  # 当量值 0.1229 on every one of these days


def test_no_region_uses_the_configured_default() -> None:
    north = Accountant(options=AccountingOptions(region="华北"))
    _, co2 = north.tce_co2("electricity", 12_000.0, DAY)
    assert close(co2, 7.6332)  # 12 000 × 0.6361 kg (华北 2023)


@pytest.mark.parametrize(
    ("ts", "kgce_per_t", "tce"),
    [
        # GB/T 2589-2008 era, 新鲜水 0.2571 kgce/t [V]: 500 t × 0.2571 = 128.55 kgce
        ("2020-06-01T12:00:00+08:00", 0.2571, 0.12855),
        # GB/T 2589-2020 (in force 2021-04-01), 0.0857 kgce/t [S]: 500 t × 0.0857 = 42.85 kgce
        ("2022-06-01T12:00:00+08:00", 0.0857, 0.04285),
        # the edition changes at local midnight: 2021-03-31T15:59Z is still 31 March in China …
        ("2021-03-31T15:59:00Z", 0.2571, 0.12855),
        # … and 2021-03-31T16:00Z is 1 April 00:00 in China, the 2020 edition's first day
        ("2021-03-31T16:00:00Z", 0.0857, 0.04285),
    ],
)
def test_fresh_water_under_two_editions(acc: Accountant, ts: str, kgce_per_t: float, tce: float) -> None:
    """(d) 500 m³ of fresh water (1 t/m³) under the 2008-era and the 2020 coefficient."""
    assert close(500 * kgce_per_t / 1000, tce)
    qty = acc.quantity("fresh_water", 500.0, "m³")
    assert close(qty, 500.0)
    got_tce, got_co2 = acc.tce_co2("fresh_water", qty, local_day(parse_ts_ms(ts)), "华东", "江苏")
    assert close(got_tce, tce)
    assert got_co2 == 0.0  # a medium: its CO₂ is counted where it is produced


def test_steam_metered_as_heat_instead(acc: Accountant) -> None:
    """(e) the same 15 t of steam through a heat meter: 15 t × 2.76 GJ/t = 41.4 GJ (measured enthalpy)."""
    qty = acc.quantity("heat", 41_400.0, "MJ")
    assert close(qty, 41.4)
    tce, co2 = acc.tce_co2("heat", qty, DAY, "华东", "江苏")
    # 41.4 GJ × 34.12 kgce/GJ (0.03412 kgce/MJ) = 1 412.568 kgce; 41.4 GJ × 0.11 tCO₂/GJ = 4.554 t
    assert close(tce, 1.412568)
    assert close(co2, 4.554)
    # per tonne (128.6 kgce/t = 3.77 GJ/t) the same steam counts 1.929 tce: the conventional per-tonne
    # figure is above the enthalpy of low-pressure steam
    assert tce < 1.929


def test_ets_series_is_a_different_number(acc: Accountant) -> None:
    """The carbon-market factor (domain.md §2.2): 12 000 kWh × 0.5703 kgCO₂/kWh = 6.8436 t, nationwide."""
    ets = Accountant(options=AccountingOptions(grid_series="ets_grid"))
    _, co2 = ets.tce_co2("electricity", 12_000.0, DAY, "华北", "河北")
    assert close(co2, 6.8436)
