"""Units of measure: converting a meter's quantity or rate into the canonical unit of its energy.

Three dimensions are known, each with a base unit:

* energy, base J: Wh, kWh, MWh, GWh, 万kWh (electricity) and kJ, MJ, GJ, TJ, kcal, 万kcal, Gcal
  (heat). Both families are one dimension, so a heat meter reading kWh or MWh converts to GJ
  (1 kWh = 3.6 MJ) and kcal is the international-table calorie, 4.1868 kJ (GB/T 2589: 7 000 kcal =
  29 307.6 kJ = 1 kgce).
* mass, base kg: g, kg, t, 万t.
* volume, base m³: L, m³, Nm³, 万m³, 万Nm³. **m³ and Nm³ are treated as the same unit**: gas meters
  of the monitoring system report volumes already corrected to standard conditions, and the
  GB/T 2589 and MEE factors are per standard m³. A meter reporting uncorrected working-condition m³
  must be corrected at the collector.

Converting between dimensions (litres of diesel to tonnes, m³ of water to tonnes) needs a density;
that is the energy's business (``energy_types.csv``, used by :class:`energy.accounting.Accountant`),
not this module's, which raises ``uom_mismatch``.

The conversion factors here are definitions of the units, not data with a source and an edition;
the energy and emission coefficients live in ``energy/data``.
"""

from __future__ import annotations

from functools import lru_cache

from energy.tables import AccountingError

_ENERGY = "energy"
_MASS = "mass"
_VOLUME = "volume"

#: unit symbol → (dimension, size in the dimension's base unit: J, kg or m³)
_UNITS: dict[str, tuple[str, float]] = {
    "Wh": (_ENERGY, 3_600.0),
    "kWh": (_ENERGY, 3_600_000.0),
    "MWh": (_ENERGY, 3_600_000_000.0),
    "GWh": (_ENERGY, 3_600_000_000_000.0),
    "万kWh": (_ENERGY, 36_000_000_000.0),
    "kJ": (_ENERGY, 1_000.0),
    "MJ": (_ENERGY, 1_000_000.0),
    "GJ": (_ENERGY, 1_000_000_000.0),
    "TJ": (_ENERGY, 1_000_000_000_000.0),
    "kcal": (_ENERGY, 4_186.8),
    "万kcal": (_ENERGY, 41_868_000.0),
    "Gcal": (_ENERGY, 4_186_800_000.0),
    "g": (_MASS, 0.001),
    "kg": (_MASS, 1.0),
    "t": (_MASS, 1_000.0),
    "万t": (_MASS, 10_000_000.0),
    "L": (_VOLUME, 0.001),
    "m³": (_VOLUME, 1.0),
    "Nm³": (_VOLUME, 1.0),
    "万m³": (_VOLUME, 10_000.0),
    "万Nm³": (_VOLUME, 10_000.0),
}

#: Other spellings seen in meter data and Chinese reports → the symbol above.
_ALIASES: dict[str, str] = {
    "kW·h": "kWh",
    "kW.h": "kWh",
    "kW h": "kWh",
    "千瓦时": "kWh",
    "度": "kWh",
    "万千瓦时": "万kWh",
    "万度": "万kWh",
    "MW·h": "MWh",
    "兆瓦时": "MWh",
    "千焦": "kJ",
    "兆焦": "MJ",
    "吉焦": "GJ",
    "千卡": "kcal",
    "大卡": "kcal",
    "万大卡": "万kcal",
    "千克": "kg",
    "公斤": "kg",
    "吨": "t",
    "tonne": "t",
    "tonnes": "t",
    "万吨": "万t",
    "litre": "L",
    "liter": "L",
    "litres": "L",
    "liters": "L",
    "升": "L",
    "m3": "m³",
    "m^3": "m³",
    "立方米": "m³",
    "方": "m³",
    "Nm3": "Nm³",
    "Nm^3": "Nm³",
    "标方": "Nm³",
    "标立方米": "Nm³",
    "万m3": "万m³",
    "万立方米": "万m³",
    "万Nm3": "万Nm³",
}

#: Power units (rates of energy), in W = J/s.
_POWER: dict[str, float] = {"W": 1.0, "kW": 1_000.0, "MW": 1_000_000.0, "GW": 1_000_000_000.0}
_POWER_ALIASES: dict[str, str] = {"千瓦": "kW", "兆瓦": "MW"}

#: Time denominators of a rate → how many of them make one hour.
_PER_HOUR: dict[str, float] = {"h": 1.0, "hr": 1.0, "小时": 1.0, "min": 60.0, "s": 3_600.0, "d": 1 / 24}


def _case_insensitive(symbols: list[str]) -> dict[str, str]:
    """Lower-cased symbol → symbol, leaving out any whose lower case is shared by two symbols."""
    seen: dict[str, list[str]] = {}
    for s in symbols:
        seen.setdefault(s.lower(), []).append(s)
    return {low: found[0] for low, found in seen.items() if len({_canon(f) for f in found}) == 1}


def _canon(symbol: str) -> str:
    return _ALIASES.get(symbol, _POWER_ALIASES.get(symbol, symbol))


_UNITS_CI = _case_insensitive([*_UNITS, *_ALIASES])
_POWER_CI = _case_insensitive([*_POWER, *_POWER_ALIASES])


class UomError(AccountingError):
    """A unit that cannot be used: rule ``unknown_uom`` (not a known unit) or ``uom_mismatch``
    (a unit of another dimension than the canonical one). ``str(e) == f"{rule}: {detail}"``."""


def _unit(uom: str) -> tuple[str, str, float]:
    """(symbol, dimension, size in base units) of a quantity unit; raises ``unknown_uom``."""
    s = uom.strip()
    symbol = _ALIASES.get(s, s)
    if symbol not in _UNITS:
        symbol = _canon(_UNITS_CI.get(s.lower(), s))
    found = _UNITS.get(symbol)
    if found is None:
        raise UomError("unknown_uom", f"unit {uom!r} is not known")
    return symbol, found[0], found[1]


@lru_cache(maxsize=4096)
def _quantity_scale(uom: str, canonical_uom: str) -> float:
    """How many ``canonical_uom`` one ``uom`` is (1 exactly when they name the same unit)."""
    symbol, dim, size = _unit(uom)
    c_symbol, c_dim, c_size = _unit(canonical_uom)
    if dim != c_dim:
        raise UomError("uom_mismatch", f"{uom!r} is a unit of {dim}, {canonical_uom!r} one of {c_dim}")
    return 1.0 if symbol == c_symbol else size / c_size


#: The quantity dimensions, each with its base unit: energy (J), mass (kg), volume (m³).
DIMENSIONS: tuple[str, ...] = (_ENERGY, _MASS, _VOLUME)


def quantity_units(dim: str) -> tuple[str, ...]:
    """Every spelling of a quantity unit of the dimension ``dim`` (one of :data:`DIMENSIONS`) that
    :func:`quantity_in` accepts as written: the symbols (kWh, 万Nm³ …) and the other spellings seen in
    meter data (度, 吨, m3 …). Letter case is also forgiven where it is not ambiguous. Raises
    ``ValueError`` for an unknown dimension."""
    if dim not in DIMENSIONS:
        raise ValueError(f"dimension {dim!r} is not one of {DIMENSIONS}")
    symbols = [s for s, (d, _) in _UNITS.items() if d == dim]
    return (*symbols, *(a for a, s in _ALIASES.items() if _UNITS[s][0] == dim))


def dimension(uom: str) -> str:
    """The dimension of a quantity unit: ``energy``, ``mass`` or ``volume`` (raises ``unknown_uom``)."""
    return _unit(uom)[1]


def quantity_in(uom: str, canonical_uom: str, value: float) -> float:
    """``value`` (a quantity in ``uom``, e.g. 2.5 MWh) expressed in ``canonical_uom`` (e.g. 2 500 kWh).

    Raises :class:`UomError` ``unknown_uom`` for a unit not known here and ``uom_mismatch`` for a
    unit of another dimension (m³ for a kWh energy).
    """
    return value * _quantity_scale(uom, canonical_uom)


@lru_cache(maxsize=4096)
def _rate_scale(uom: str, canonical_uom: str) -> float:
    """How many ``canonical_uom`` per hour one ``uom`` (a rate) is."""
    s = uom.strip()
    power = _POWER_ALIASES.get(s, s)
    if power not in _POWER:
        power = _canon(_POWER_CI.get(s.lower(), s))
    if power in _POWER:
        joules_per_hour = _POWER[power] * 3_600.0
        c_symbol, c_dim, c_size = _unit(canonical_uom)
        if c_dim != _ENERGY:
            raise UomError("uom_mismatch", f"{uom!r} is a power, {canonical_uom!r} a unit of {c_dim}")
        return 1.0 if (power, c_symbol) == ("kW", "kWh") else joules_per_hour / c_size
    quantity, slash, per = s.rpartition("/")
    per_hour = _PER_HOUR.get(per.strip())
    if not slash or per_hour is None:
        # a known quantity unit without a time denominator is a rate of the wrong kind
        try:
            _unit(s)
        except UomError:
            raise UomError("unknown_uom", f"rate unit {uom!r} is not known") from None
        raise UomError("uom_mismatch", f"{uom!r} is a quantity, not a rate (e.g. {s}/h)")
    return per_hour * _quantity_scale(quantity, canonical_uom)


def rate_per_hour_in(uom: str, canonical_uom: str, value: float) -> float:
    """A rate reading (``value`` in ``uom``: kW, MW, m³/h, Nm³/h, t/h, kg/h, GJ/h, MJ/h, …) in
    ``canonical_uom`` per hour; a power becomes energy per hour (5 kW → 5 kWh/h, 1 MW → 3.6 GJ/h).

    Denominators ``/h``, ``/min``, ``/s`` and ``/d`` are understood. Raises :class:`UomError` like
    :func:`quantity_in`; a plain quantity unit (kWh) given as a rate is ``uom_mismatch``.
    """
    return value * _rate_scale(uom, canonical_uom)
