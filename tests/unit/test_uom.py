"""Unit conversion: quantities and rates into an energy's canonical unit."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import pytest

from energy.accounting import AccountingError
from energy.uom import UomError, dimension, quantity_in, rate_per_hour_in


@pytest.mark.parametrize(
    ("convert", "uom", "canonical", "value", "expected"),
    [
        (quantity_in, "kWh", "kWh", 123.456, 123.456),
        (quantity_in, "MWh", "kWh", 2.5, 2_500.0),
        (quantity_in, "GWh", "kWh", 1.0, 1_000_000.0),
        (quantity_in, "Wh", "kWh", 1_500.0, 1.5),
        (quantity_in, "万kWh", "kWh", 3.0, 30_000.0),
        (quantity_in, "kg", "t", 2_500.0, 2.5),
        (quantity_in, "t", "t", 7.0, 7.0),
        (quantity_in, "万t", "t", 1.2, 12_000.0),
        (quantity_in, "m³", "m³", 10.0, 10.0),
        (quantity_in, "m3", "m³", 10.0, 10.0),
        (quantity_in, "Nm³", "m³", 10.0, 10.0),
        (quantity_in, "Nm3", "m³", 10.0, 10.0),
        (quantity_in, "万m³", "m³", 2.0, 20_000.0),
        (quantity_in, "万Nm³", "m³", 2.0, 20_000.0),
        (quantity_in, "L", "m³", 1_000.0, 1.0),
        (quantity_in, "MJ", "GJ", 1_500.0, 1.5),
        (quantity_in, "kJ", "GJ", 1_000_000.0, 1.0),
        (quantity_in, "GJ", "GJ", 4.0, 4.0),
        (quantity_in, "万kcal", "GJ", 1.0, 0.041868),
        (quantity_in, "Gcal", "GJ", 1.0, 4.1868),
        # a heat meter reading MWh: energy is one dimension
        (quantity_in, "MWh", "GJ", 1.0, 3.6),
        # rates, into the canonical unit per hour
        (rate_per_hour_in, "kW", "kWh", 5.0, 5.0),
        (rate_per_hour_in, "W", "kWh", 500.0, 0.5),
        (rate_per_hour_in, "MW", "kWh", 2.0, 2_000.0),
        (rate_per_hour_in, "MW", "GJ", 1.0, 3.6),
        (rate_per_hour_in, "m³/h", "m³", 120.0, 120.0),
        (rate_per_hour_in, "Nm3/h", "m³", 120.0, 120.0),
        (rate_per_hour_in, "万m³/h", "m³", 1.0, 10_000.0),
        (rate_per_hour_in, "m³/min", "m³", 2.0, 120.0),
        (rate_per_hour_in, "t/h", "t", 3.0, 3.0),
        (rate_per_hour_in, "kg/h", "t", 500.0, 0.5),
        (rate_per_hour_in, "kg/s", "t", 1.0, 3.6),
        (rate_per_hour_in, "GJ/h", "GJ", 7.0, 7.0),
        (rate_per_hour_in, "MJ/h", "GJ", 7_000.0, 7.0),
        (rate_per_hour_in, "t/d", "t", 24.0, 1.0),
    ],
)
def test_conversions(
    convert: Callable[[str, str, float], float], uom: str, canonical: str, value: float, expected: float
) -> None:
    assert convert(uom, canonical, value) == pytest.approx(expected, rel=1e-12)


def test_same_unit_is_exact() -> None:
    assert quantity_in("kWh", "kWh", 0.1) == 0.1
    assert quantity_in("MWh", "kWh", 1.0) == 1_000.0


def test_kcal_to_gj_uses_the_international_calorie() -> None:
    # GB/T 2589: 7 000 kcal = 29 307.6 kJ = 1 kgce
    assert quantity_in("kcal", "GJ", 7_000.0) == pytest.approx(0.0293076, rel=1e-12)


@pytest.mark.parametrize("alias", ["KWH", "kwh", "kW·h", "kW.h", "度", "千瓦时", " kWh "])
def test_kwh_spellings(alias: str) -> None:
    assert quantity_in(alias, "kWh", 5.0) == 5.0


@pytest.mark.parametrize(
    ("alias", "canonical"), [("吨", "t"), ("公斤", "kg"), ("立方米", "m³"), ("吉焦", "GJ")]
)
def test_chinese_unit_names(alias: str, canonical: str) -> None:
    assert quantity_in(alias, canonical, 3.0) == 3.0


def test_other_dimension_is_a_mismatch() -> None:
    with pytest.raises(UomError) as info:
        quantity_in("m³", "kWh", 1.0)
    assert info.value.rule == "uom_mismatch"
    assert str(info.value) == f"uom_mismatch: {info.value.detail}"
    assert isinstance(info.value, AccountingError)


@pytest.mark.parametrize(("uom", "canonical"), [("L", "t"), ("kg", "m³"), ("GJ", "t"), ("t", "kWh")])
def test_mismatches(uom: str, canonical: str) -> None:
    with pytest.raises(UomError) as info:
        quantity_in(uom, canonical, 1.0)
    assert info.value.rule == "uom_mismatch"


@pytest.mark.parametrize(
    ("uom", "canonical"), [("furlong", "kWh"), ("kWh", "furlong"), ("", "t"), ("mt", "t")]
)
def test_unknown_units(uom: str, canonical: str) -> None:
    with pytest.raises(UomError) as info:
        quantity_in(uom, canonical, 1.0)
    assert info.value.rule == "unknown_uom"


@pytest.mark.parametrize(
    ("uom", "canonical", "rule"),
    [
        ("kW", "t", "uom_mismatch"),
        ("m³/h", "kWh", "uom_mismatch"),
        ("kWh", "kWh", "uom_mismatch"),  # a quantity is not a rate
        ("furlong/h", "t", "unknown_uom"),
        ("m³/fortnight", "m³", "unknown_uom"),
        ("furlong", "t", "unknown_uom"),
    ],
)
def test_rate_errors(uom: str, canonical: str, rule: str) -> None:
    with pytest.raises(UomError) as info:
        rate_per_hour_in(uom, canonical, 1.0)
    assert info.value.rule == rule


def test_dimension() -> None:
    assert [dimension(u) for u in ("kWh", "GJ", "t", "Nm3")] == ["energy", "energy", "mass", "volume"]


def test_uom_error_survives_pickling() -> None:
    err = UomError("unknown_uom", "unit 'furlong' is not known")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is UomError
    assert (back.rule, back.detail, str(back)) == (err.rule, err.detail, str(err))


def test_quantity_units_lists_every_spelling_by_dimension() -> None:
    from energy.uom import DIMENSIONS, quantity_units

    assert DIMENSIONS == ("energy", "mass", "volume")
    assert {"kWh", "GJ", "万kcal", "度", "千瓦时"} <= set(quantity_units("energy"))
    assert {"t", "kg", "吨"} <= set(quantity_units("mass"))
    assert {"m³", "Nm³", "万Nm³", "m3", "L"} <= set(quantity_units("volume"))
    for dim in DIMENSIONS:
        for uom in quantity_units(dim):
            assert dimension(uom) == dim, uom
    with pytest.raises(ValueError):
        quantity_units("power")
