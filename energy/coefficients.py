"""Energy types and their standard-coal coefficients (GB/T 2589 折标准煤系数), read from
``energy/data/energy_types.csv`` and ``energy/data/coefficients.csv``.

A coefficient is in kgce per the energy's canonical unit (kgce/kWh, kgce/t, kgce/m³, kgce/GJ) and
is valid over a date range, so a past period is accounted with the edition in force then. Electricity
has two bases: ``equivalent`` (当量值, the energy content) and ``equal_value`` (等价值, the primary
energy used to make it, one row per year).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from energy.tables import AccountingError, Row, overlaps, read_table, table_error, valid_on
from energy.uom import UomError, dimension

CATEGORIES: frozenset[str] = frozenset({"electricity", "fuel", "heat", "medium"})
BASES: frozenset[str] = frozenset({"equivalent", "equal_value"})
#: The mark of a coefficient given per site with :meth:`CoefficientTable.with_override`.
OVERRIDE_MARK = "site"

_TYPE_COLUMNS = ("code", "name_zh", "name_en", "category", "uom", "counts_in_total", "note")
_COEF_COLUMNS = ("energy", "basis", "kgce_per_uom", "uom", "valid_from", "valid_to", "source", "mark", "note")


@dataclass(frozen=True)
class EnergyType:
    """One energy type. ``uom`` is the canonical unit its quantities are accounted in;
    ``counts_in_total`` says whether it enters 综合能耗; ``density_t_per_m3`` (t/m³, optional) lets a
    volume reading of a mass-accounted energy (litres of diesel, m³ of water) be converted."""

    code: str
    name_zh: str
    name_en: str
    category: str
    uom: str
    counts_in_total: bool
    note: str
    density_t_per_m3: float | None = None
    density_source: str = ""


@dataclass(frozen=True)
class Coefficient:
    """``kgce_per_uom`` kgce per ``uom`` of ``energy`` on ``basis``, valid from ``valid_from`` to
    ``valid_to`` inclusive (``None`` = open). ``mark`` is V, S or U (or ``site`` for an override)."""

    energy: str
    basis: str
    kgce_per_uom: float
    uom: str
    valid_from: date
    valid_to: date | None
    source: str
    mark: str
    note: str


class CoefficientTable:
    """Energy types and their coefficients; immutable (overrides return a copy)."""

    def __init__(self, types: Mapping[str, EnergyType], rows: tuple[Coefficient, ...]) -> None:
        """Build from already-checked parts; use :meth:`load` to read the data files."""
        self._types: Mapping[str, EnergyType] = MappingProxyType(dict(types))
        self._rows = rows
        by_key: dict[tuple[str, str], list[Coefficient]] = {}
        for c in rows:
            by_key.setdefault((c.energy, c.basis), []).append(c)
        self._by_key = {k: tuple(sorted(v, key=lambda c: c.valid_from)) for k, v in by_key.items()}

    @classmethod
    def load(
        cls,
        energy_types_csv: str | Path | None = None,
        coefficients_csv: str | Path | None = None,
    ) -> CoefficientTable:
        """Read the energy-type and coefficient CSVs (``None`` = the packaged file) and check them:
        marks, dates, units and no two rows of one energy and basis valid on the same day.
        Raises :class:`AccountingError` ``bad_table`` naming the file and line."""
        if energy_types_csv is None and coefficients_csv is None:
            return _packaged()
        return cls._read(energy_types_csv, coefficients_csv)

    @classmethod
    def _read(
        cls, energy_types_csv: str | Path | None, coefficients_csv: str | Path | None
    ) -> CoefficientTable:
        types: dict[str, EnergyType] = {}
        for row in read_table("energy_types.csv", energy_types_csv, _TYPE_COLUMNS):
            t = _energy_type(row)
            if t.code in types:
                raise table_error(row.where, f"energy {t.code!r} appears twice")
            types[t.code] = t
        rows: list[Coefficient] = []
        for row in read_table("coefficients.csv", coefficients_csv, _COEF_COLUMNS):
            c = _coefficient(row, types)
            for other in rows:
                if (other.energy, other.basis) == (c.energy, c.basis) and overlaps(
                    (other.valid_from, other.valid_to), (c.valid_from, c.valid_to)
                ):
                    raise table_error(
                        row.where, f"{c.energy}/{c.basis} overlaps the row valid from {other.valid_from}"
                    )
            rows.append(c)
        return cls(types, tuple(rows))

    def energy_type(self, code: str) -> EnergyType:
        """The energy type ``code``; raises :class:`AccountingError` ``unknown_energy``."""
        found = self._types.get(code)
        if found is None:
            raise AccountingError("unknown_energy", f"energy {code!r} is not in the energy-type table")
        return found

    def energy_types(self) -> Mapping[str, EnergyType]:
        """All energy types by code (read-only)."""
        return self._types

    def rows(self) -> tuple[Coefficient, ...]:
        """Every coefficient row, in file order."""
        return self._rows

    def coefficient(self, energy: str, on: date, basis: str = "equivalent") -> Coefficient:
        """The coefficient (kgce per canonical uom) of ``energy`` valid on the day ``on``.

        ``basis`` is ``equivalent`` (当量值) or ``equal_value`` (等价值); an energy with no rows of
        the asked basis (every energy but electricity) uses its ``equivalent`` rows. Raises
        :class:`AccountingError` ``unknown_energy``, ``unknown_basis`` or ``no_coefficient``.
        """
        self.energy_type(energy)
        if basis not in BASES:
            raise AccountingError("unknown_basis", f"basis {basis!r} is not one of {sorted(BASES)}")
        rows = self._by_key.get((energy, basis)) or self._by_key.get((energy, "equivalent"), ())
        for c in rows:
            if valid_on(c.valid_from, c.valid_to, on):
                return c
        raise AccountingError(
            "no_coefficient", f"no {basis} coefficient for {energy} valid on {on.isoformat()}"
        )

    def with_override(self, energy: str, kgce_per_uom: float, source: str) -> CoefficientTable:
        """A copy where ``energy``'s coefficient is ``kgce_per_uom`` (kgce per canonical uom) on every
        date and basis, e.g. a site's measured heating value; ``source`` says where it comes from."""
        t = self.energy_type(energy)
        if not (math.isfinite(kgce_per_uom) and kgce_per_uom > 0):
            raise AccountingError("bad_coefficient", f"override for {energy} must be > 0 kgce/{t.uom}")
        if not source.strip():
            raise AccountingError("bad_coefficient", f"override for {energy} needs a source")
        bases = sorted({c.basis for c in self._rows if c.energy == energy} or {"equivalent"})
        kept = tuple(c for c in self._rows if c.energy != energy)
        added = tuple(
            Coefficient(
                energy, b, kgce_per_uom, t.uom, date.min, None, source, OVERRIDE_MARK, "per-site override"
            )
            for b in bases
        )
        return CoefficientTable(self._types, kept + added)


def _energy_type(row: Row) -> EnergyType:
    code = row.text("code")
    category = row.text("category")
    if category not in CATEGORIES:
        raise table_error(row.where, f"category {category!r} is not one of {sorted(CATEGORIES)}")
    uom = row.text("uom")
    try:
        dim = dimension(uom)
    except UomError as exc:
        raise table_error(row.where, exc.detail) from None
    density = row.optional_number("density_t_per_m3")
    source = row.optional("density_source") or ""
    if density is not None and (dim != "mass" or not source):
        raise table_error(row.where, "a density needs a mass canonical uom and a density_source")
    return EnergyType(
        code=code,
        name_zh=row.text("name_zh"),
        name_en=row.text("name_en"),
        category=category,
        uom=uom,
        counts_in_total=row.flag("counts_in_total"),
        note=row.optional("note") or "",
        density_t_per_m3=density,
        density_source=source,
    )


def _coefficient(row: Row, types: Mapping[str, EnergyType]) -> Coefficient:
    energy = row.text("energy")
    t = types.get(energy)
    if t is None:
        raise table_error(row.where, f"energy {energy!r} is not in the energy-type table")
    basis = row.text("basis")
    if basis not in BASES:
        raise table_error(row.where, f"basis {basis!r} is not one of {sorted(BASES)}")
    uom = row.text("uom")
    if uom != t.uom:
        raise table_error(row.where, f"uom {uom!r} is not {energy}'s canonical uom {t.uom!r}")
    validity = row.validity()
    return Coefficient(
        energy=energy,
        basis=basis,
        kgce_per_uom=row.number("kgce_per_uom"),
        uom=uom,
        **row.provenance(validity),
    )


@lru_cache(maxsize=1)
def _packaged() -> CoefficientTable:
    """The packaged tables, read once per process (the table is immutable)."""
    return CoefficientTable._read(None, None)
