"""From a meter's value to the energy's canonical quantity, and from a quantity to tce and tCO₂.

``tce = qty × kgce_per_uom / 1000`` (GB/T 2589, coefficient valid on the reading's day and basis);
``tCO₂ = qty × t_co2_per_uom`` (the factor of :class:`~energy.emission_factors.EmissionFactorTable`).
耗能工质 (category ``medium``) without a factor of their own get 0 tCO₂: their CO₂ is counted where
the medium is produced (the electricity or fuel that made it).

One :class:`Accountant` is built per process from the packaged tables; :meth:`Accountant.for_unit`
gives the accountant of a unit with its own electricity basis or site-measured coefficients (shared by
every unit with the same settings). Lookups are cached per (energy, day, grid region, province), so
the hot path is two dict lookups and two multiplications.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING

from energy.coefficients import BASES, CoefficientTable, EnergyType
from energy.emission_factors import EmissionFactorTable
from energy.tables import AccountingError
from energy.uom import UomError, quantity_in, rate_per_hour_in

if TYPE_CHECKING:  # only for annotations: the kernel's accounting does not need pydantic at run time
    from energy.registry import CoefficientOverride, UnitInfo

__all__ = ["Accountant", "AccountingError", "AccountingOptions", "UomError"]

#: quantity_in / rate_per_hour_in
_Convert = Callable[[str, str, float], float]
#: Entries kept in each lookup cache before it is emptied (bounds memory over years of days).
_CACHE_LIMIT = 100_000


@dataclass(frozen=True)
class AccountingOptions:
    """How to account: ``electricity_basis`` ``equivalent`` (当量值) or ``equal_value`` (等价值);
    ``grid_series`` the CO₂ series for electricity (``mee_grid_average``, ``mee_grid_excl_nonfossil``,
    ``mee_grid_fossil``, ``ets_grid``); ``region`` the grid region (or province) used for CO₂ when a
    lookup names neither a grid region nor a province."""

    electricity_basis: str = "equivalent"
    grid_series: str = "mee_grid_average"
    region: str | None = None


DEFAULT_OPTIONS = AccountingOptions()


class Accountant:
    """Converts readings to canonical quantities and quantities to (tce, tCO₂)."""

    def __init__(
        self,
        coefficients: CoefficientTable | None = None,
        factors: EmissionFactorTable | None = None,
        options: AccountingOptions = DEFAULT_OPTIONS,
    ) -> None:
        """``None`` tables mean the packaged ones. Raises :class:`AccountingError` ``unknown_basis`` or
        ``unknown_series`` for bad options and ``bad_table`` when a factor's uom is not its energy's
        canonical uom."""
        self._coefficients = coefficients if coefficients is not None else CoefficientTable.load()
        self._factors = factors if factors is not None else EmissionFactorTable.load()
        self._options = options
        if options.electricity_basis not in BASES:
            raise AccountingError(
                "unknown_basis",
                f"electricity basis {options.electricity_basis!r} is not one of {sorted(BASES)}",
            )
        if options.grid_series not in self._factors.series():
            raise AccountingError(
                "unknown_series", f"CO₂ factor series {options.grid_series!r} is not in the table"
            )
        types = self._coefficients.energy_types()
        for f in self._factors.rows():
            t = types.get(f.energy)
            if t is not None and f.uom != t.uom:
                raise AccountingError(
                    "bad_table",
                    f"{f.series}/{f.energy} factor is per {f.uom}, the energy is accounted in {t.uom}",
                )
        self._per_uom: dict[tuple[str, date, str | None, str | None], tuple[float, float]] = {}
        self._qty_scale: dict[tuple[str, str], float] = {}
        self._rate_scale: dict[tuple[str, str], float] = {}
        # a unit's settings (electricity basis or None, coefficient overrides) → its accountant
        self._units: dict[tuple[str | None, tuple[CoefficientOverride, ...]], Accountant] = {}

    def for_unit(self, info: UnitInfo | None) -> Accountant:
        """The accountant for the unit ``info``: its ``electricity_basis`` (``None``: this
        accountant's) and its ``coefficient_overrides`` applied in order with
        :meth:`CoefficientTable.with_override` (a later override of the same energy wins), on this
        accountant's tables and grid series. ``None``, or a unit with no settings of its own, gets
        this accountant.

        Accountants are cached by (basis, overrides): every unit with the same settings shares one
        instance and its lookup cache, and a cached call is one dict lookup. The unit's geography is
        not part of it: pass ``info.grid_region`` and ``info.region`` to :meth:`tce_co2`. Raises
        :class:`AccountingError` ``unknown_energy`` or ``bad_coefficient`` for an override that
        cannot be used.
        """
        if info is None:
            return self
        key = (info.electricity_basis, info.coefficient_overrides)
        found = self._units.get(key)
        if found is None:
            found = self._derive(*key)
            if len(self._units) >= _CACHE_LIMIT:
                self._units.clear()
            self._units[key] = found
        return found

    def _derive(self, basis: str | None, overrides: tuple[CoefficientOverride, ...]) -> Accountant:
        basis = basis if basis is not None else self._options.electricity_basis
        if basis == self._options.electricity_basis and not overrides:
            return self
        coefficients = self._coefficients
        for o in overrides:
            coefficients = coefficients.with_override(o.energy, o.kgce_per_uom, o.source)
        derived = Accountant(coefficients, self._factors, replace(self._options, electricity_basis=basis))
        # same energy types, so the same uom conversions: share those caches
        derived._qty_scale = self._qty_scale
        derived._rate_scale = self._rate_scale
        return derived

    @property
    def coefficients(self) -> CoefficientTable:
        """The coefficient table in use."""
        return self._coefficients

    @property
    def factors(self) -> EmissionFactorTable:
        """The CO₂ factor table in use."""
        return self._factors

    @property
    def options(self) -> AccountingOptions:
        """The accounting options in use."""
        return self._options

    def energy_type(self, energy: str) -> EnergyType:
        """The energy type ``energy``; raises :class:`AccountingError` ``unknown_energy``."""
        return self.coefficients.energy_type(energy)

    def canonical_uom(self, energy: str) -> str:
        """The unit ``energy`` is accounted in (kWh, t, m³, GJ); raises ``unknown_energy``."""
        return self.coefficients.energy_type(energy).uom

    def quantity(self, energy: str, value: float, uom: str) -> float:
        """A cumulative or interval ``value`` in ``uom`` as the energy's canonical unit (e.g. 2 MWh →
        2 000 kWh; 1 000 L diesel → 0.87 t with its density). Raises :class:`AccountingError`
        ``unknown_energy`` or :class:`UomError` ``unknown_uom`` / ``uom_mismatch``."""
        scale = self._qty_scale.get((energy, uom))
        if scale is None:
            scale = self._scale(energy, uom, quantity_in, self._qty_scale)
        return value * scale

    def rate_per_hour(self, energy: str, value: float, uom: str) -> float:
        """A rate ``value`` in ``uom`` (kW, m³/h, t/h, GJ/h …) as the canonical unit per hour (kW →
        kWh/h). Raises like :meth:`quantity`."""
        scale = self._rate_scale.get((energy, uom))
        if scale is None:
            scale = self._scale(energy, uom, rate_per_hour_in, self._rate_scale)
        return value * scale

    def _scale(
        self,
        energy: str,
        uom: str,
        convert: _Convert,
        cache: dict[tuple[str, str], float],
    ) -> float:
        t = self.coefficients.energy_type(energy)
        try:
            scale = convert(uom, t.uom, 1.0)
        except UomError as exc:
            if exc.rule != "uom_mismatch" or t.density_t_per_m3 is None:
                raise
            try:  # a volume reading of a mass-accounted energy: m³ × t/m³, then to the canonical mass
                scale = convert(uom, "m³", 1.0) * t.density_t_per_m3 * quantity_in("t", t.uom, 1.0)
            except UomError:
                raise exc from None
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[(energy, uom)] = scale
        return scale

    def tce_co2(
        self,
        energy: str,
        qty: float,
        day: date,
        region: str | None = None,
        province: str | None = None,
    ) -> tuple[float, float]:
        """``qty`` (canonical uom of ``energy``) used on ``day`` → (tce, tCO₂).

        tce = qty × kgce_per_uom / 1000 on the configured electricity basis; tCO₂ = qty × t CO₂ per
        uom of the configured grid series. Electricity's factor is the newest data year for the
        ``province``, the grid ``region`` or the nation, and of that year the most specific row
        (:meth:`EmissionFactorTable.factor`); when both are ``None`` the options' region is used.
        Raises :class:`AccountingError` ``unknown_energy``, ``no_coefficient`` or
        ``no_emission_factor`` (never for a medium, whose CO₂ is 0 when it has no factor).
        """
        key = (energy, day, region, province)
        per_uom = self._per_uom.get(key)
        if per_uom is None:
            per_uom = self._resolve(energy, day, region, province)
            if len(self._per_uom) >= _CACHE_LIMIT:
                self._per_uom.clear()
            self._per_uom[key] = per_uom
        return qty * per_uom[0] / 1000, qty * per_uom[1]

    def _resolve(
        self, energy: str, day: date, region: str | None, province: str | None
    ) -> tuple[float, float]:
        """(kgce per uom, t CO₂ per uom) of ``energy`` on ``day``."""
        opts = self.options
        t = self.coefficients.energy_type(energy)
        kgce = self.coefficients.coefficient(energy, day, opts.electricity_basis).kgce_per_uom
        if region is None and province is None:
            region = opts.region
        try:
            co2 = self.factors.factor(energy, day, opts.grid_series, region, province)
        except AccountingError as exc:
            if exc.rule == "no_emission_factor" and t.category == "medium":
                return kgce, 0.0
            raise
        return kgce, co2.t_co2_per_uom
