"""Properties of unit conversion and of tce/CO₂ accounting (hypothesis).

* every quantity unit of every dimension an energy is accounted in round-trips through the canonical
  unit within 1e-12 relative;
* conversion and accounting are linear: the parts of a quantity convert (and account) to the parts of
  the whole;
* an unknown or a mismatched unit always raises ``UomError`` (``unknown_uom`` / ``uom_mismatch``),
  never a number.
"""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from energy.accounting import Accountant
from energy.coefficients import CoefficientTable
from energy.uom import DIMENSIONS, UomError, dimension, quantity_in, quantity_units, rate_per_hour_in

REL = 1e-12
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ACCOUNTANT = Accountant()
TYPES = CoefficientTable.load().energy_types()
ENERGIES = sorted(TYPES)
CANONICAL = sorted({t.uom for t in TYPES.values()})
UNITS = {dim: quantity_units(dim) for dim in DIMENSIONS}
KNOWN_LOWER = {u.lower() for units in UNITS.values() for u in units}
POWERS_LOWER = {"w", "kw", "mw", "gw", "千瓦", "兆瓦"}

# meter values: zero, or normal magnitudes that no unit scale (1e-9 … 1e10) can push out of range
values = st.one_of(
    st.just(0.0),
    st.floats(min_value=1e-9, max_value=1e15, allow_subnormal=False),
    st.floats(min_value=-1e15, max_value=-1e-9, allow_subnormal=False),
)
# Zero or at least 1e-9: no meter reports 1e-308, and converting such a value (g → t) underflows into
# subnormals, where a unit factor's rounding swamps any relative tolerance.
parts = st.lists(
    st.one_of(st.just(0.0), st.floats(min_value=1e-9, max_value=1e9)), min_size=1, max_size=12
)
days = st.dates(min_value=date(2008, 1, 1), max_value=date(2026, 12, 31))


def close(actual: float, expected: float, rel: float = REL) -> bool:
    return abs(actual - expected) <= rel * abs(expected) or actual == expected


def unknown(s: str) -> bool:
    """Whether ``s`` is surely no quantity unit (nor a power) in any spelling or letter case."""
    low = s.strip().lower()
    return low not in KNOWN_LOWER and low not in POWERS_LOWER and "/" not in s


junk = st.text(max_size=12).filter(unknown)


def test_every_energy_is_accounted_in_a_known_unit() -> None:
    for code, t in TYPES.items():
        assert dimension(t.uom) in DIMENSIONS, code
        assert t.uom in UNITS[dimension(t.uom)], code


@FAST
@given(values)
def test_every_unit_round_trips_through_every_canonical_unit_of_its_dimension(x: float) -> None:
    for canonical in CANONICAL:
        for uom in UNITS[dimension(canonical)]:
            there = quantity_in(uom, canonical, x)
            back = quantity_in(canonical, uom, there)
            assert close(back, x), (uom, canonical, x, there, back)


@FAST
@given(st.sampled_from(ENERGIES), values)
def test_the_accountant_converts_like_the_uom_module(energy: str, x: float) -> None:
    t = TYPES[energy]
    for uom in UNITS[dimension(t.uom)]:
        assert close(ACCOUNTANT.quantity(energy, x, uom), quantity_in(uom, t.uom, x)), (energy, uom)
    if t.density_t_per_m3 is not None:  # a volume reading of a mass-accounted energy
        for uom in UNITS["volume"]:
            expected = quantity_in(uom, "m³", x) * t.density_t_per_m3 * quantity_in("t", t.uom, 1.0)
            assert close(ACCOUNTANT.quantity(energy, x, uom), expected), (energy, uom)


@FAST
@given(st.sampled_from(ENERGIES), st.data(), parts)
def test_converting_the_parts_equals_converting_the_sum(
    energy: str, data: st.DataObject, xs: list[float]
) -> None:
    t = TYPES[energy]
    uom = data.draw(st.sampled_from(UNITS[dimension(t.uom)]))
    whole = ACCOUNTANT.quantity(energy, sum(xs), uom)
    assert close(sum(ACCOUNTANT.quantity(energy, x, uom) for x in xs), whole, 1e-12)


@FAST
@given(st.sampled_from(ENERGIES), days, parts, st.sampled_from([None, "华北", "华东", "西南"]))
def test_tce_and_co2_are_linear(energy: str, day: date, qs: list[float], region: str | None) -> None:
    tce, co2 = ACCOUNTANT.tce_co2(energy, sum(qs), day, region)
    split = [ACCOUNTANT.tce_co2(energy, q, day, region) for q in qs]
    assert close(sum(s[0] for s in split), tce)
    assert close(sum(s[1] for s in split), co2)
    assert tce >= 0 and co2 >= 0


@FAST
@given(st.sampled_from(CANONICAL), st.sampled_from(["h", "min", "s", "d"]), values)
def test_a_rate_is_its_quantity_per_time(canonical: str, per: str, x: float) -> None:
    per_hour = {"h": 1.0, "min": 60.0, "s": 3_600.0, "d": 1 / 24}[per]
    for uom in UNITS[dimension(canonical)]:
        expected = quantity_in(uom, canonical, x) * per_hour
        assert close(rate_per_hour_in(f"{uom}/{per}", canonical, x), expected), (uom, per)


@FAST
@given(junk, values)
def test_an_unknown_unit_is_never_a_number(uom: str, x: float) -> None:
    for canonical in CANONICAL:
        for convert in (quantity_in, rate_per_hour_in):
            with pytest.raises(UomError) as info:
                convert(uom, canonical, x)
            assert info.value.rule == "unknown_uom", (uom, canonical, convert)
        with pytest.raises(UomError) as info:
            rate_per_hour_in(f"{uom}/h", canonical, x)
        assert info.value.rule == "unknown_uom"
    for energy in ENERGIES:
        with pytest.raises(UomError) as info:
            ACCOUNTANT.quantity(energy, x, uom)
        assert info.value.rule == "unknown_uom"


@FAST
@given(
    st.sampled_from([u for units in UNITS.values() for u in units]), st.text(min_size=1, max_size=6), values
)
def test_a_known_unit_with_junk_attached_is_unknown(uom: str, tail: str, x: float) -> None:
    garbled = f"{uom}#{tail}"
    with pytest.raises(UomError) as info:
        quantity_in(garbled, "kWh", x)
    assert info.value.rule == "unknown_uom"


@FAST
@given(st.sampled_from(CANONICAL), st.data(), values)
def test_a_unit_of_another_dimension_is_a_mismatch(canonical: str, data: st.DataObject, x: float) -> None:
    other = data.draw(st.sampled_from([d for d in DIMENSIONS if d != dimension(canonical)]))
    uom = data.draw(st.sampled_from(UNITS[other]))
    with pytest.raises(UomError) as info:
        quantity_in(uom, canonical, x)
    assert info.value.rule == "uom_mismatch"
    with pytest.raises(UomError) as info:
        rate_per_hour_in(f"{uom}/h", canonical, x)
    assert info.value.rule == "uom_mismatch"
    # a quantity unit given as a rate, and a power for a non-energy unit
    same = data.draw(st.sampled_from(UNITS[dimension(canonical)]))
    with pytest.raises(UomError) as info:
        rate_per_hour_in(same, canonical, x)
    assert info.value.rule == "uom_mismatch"
    if dimension(canonical) != "energy":
        with pytest.raises(UomError) as info:
            rate_per_hour_in("kW", canonical, x)
        assert info.value.rule == "uom_mismatch"


@FAST
@given(st.sampled_from(ENERGIES), st.data(), values)
def test_the_accountant_refuses_a_mismatched_unit(energy: str, data: st.DataObject, x: float) -> None:
    t = TYPES[energy]
    refused = [d for d in DIMENSIONS if d != dimension(t.uom)]
    if t.density_t_per_m3 is not None:
        refused.remove("volume")  # litres of diesel, m³ of water: converted with the density
    uom = data.draw(st.sampled_from([u for d in refused for u in UNITS[d]]))
    with pytest.raises(UomError) as info:
        ACCOUNTANT.quantity(energy, x, uom)
    assert info.value.rule == "uom_mismatch"
