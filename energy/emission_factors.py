"""CO₂ emission factors, read from ``energy/data/co2_factors.csv``: tonnes CO₂ per canonical unit of
an energy (t/kWh, t/t, t/m³, t/GJ), grouped in series.

Electricity factors are published per data year (national, per grid region and per province) about
two years late, so they are chosen by data year, not by date: a reading of day ``on`` uses the newest
data year ``<= on.year`` that has a row for the unit's province, its grid region or the nation, and of
that year the most specific row. Heat, steam and fuels use undated defaults chosen by validity date.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from energy.tables import AccountingError, Row, overlaps, read_table, table_error, valid_on
from energy.uom import UomError, dimension

#: Series searched, in order, for an energy the grid series has no rows for: purchased heat (heat,
#: steam), then the Chinese MRV fuel defaults, then IPCC 2006 defaults.
FALLBACK_SERIES: tuple[str, ...] = ("purchased_heat", "china_fuel_default", "ipcc_2006")
#: The mark of a factor given per site with :meth:`EmissionFactorTable.with_override`.
OVERRIDE_MARK = "site"

_COLUMNS = (
    "series", "energy", "region", "data_year", "t_co2_per_uom", "uom",
    "valid_from", "valid_to", "source", "mark", "note",
)  # fmt: skip


@dataclass(frozen=True)
class EmissionFactor:
    """``t_co2_per_uom`` tonnes CO₂ per ``uom`` of ``energy`` in ``series``. ``region`` is ``None``
    for the national value, else a grid region (华东) or province (河北); ``data_year`` is the year
    the factor describes (grid factors) or ``None`` (fuel defaults). Valid from ``valid_from`` (for
    grid factors: the publication date) to ``valid_to`` inclusive (``None`` = open)."""

    series: str
    energy: str
    region: str | None
    data_year: int | None
    t_co2_per_uom: float
    uom: str
    valid_from: date
    valid_to: date | None
    source: str
    mark: str
    note: str


class EmissionFactorTable:
    """All CO₂ factor series; immutable (overrides return a copy)."""

    def __init__(
        self, rows: tuple[EmissionFactor, ...], overrides: dict[str, EmissionFactor] | None = None
    ) -> None:
        """Build from already-checked rows; use :meth:`load` to read the data file."""
        self._rows = rows
        self._overrides = dict(overrides or {})
        groups: dict[tuple[str, str], list[EmissionFactor]] = {}
        for f in rows:
            groups.setdefault((f.series, f.energy), []).append(f)
        self._groups = {k: tuple(v) for k, v in groups.items()}
        self._series = frozenset(f.series for f in rows)

    @classmethod
    def load(cls, path: str | Path | None = None) -> EmissionFactorTable:
        """Read the factor CSV (``None`` = the packaged file) and check it: marks, dates, units, one
        row per series/energy/region/data year valid on any day. Raises :class:`AccountingError`
        ``bad_table`` naming the file and line."""
        return _packaged() if path is None else cls._read(path)

    @classmethod
    def _read(cls, path: str | Path | None) -> EmissionFactorTable:
        rows: list[EmissionFactor] = []
        for row in read_table("co2_factors.csv", path, _COLUMNS):
            f = _factor(row)
            for other in rows:
                if (other.series, other.energy) != (f.series, f.energy):
                    continue
                if (other.data_year is None) != (f.data_year is None):
                    raise table_error(row.where, f"{f.series}/{f.energy} mixes dated and undated rows")
                if (other.region, other.data_year) == (f.region, f.data_year) and overlaps(
                    (other.valid_from, other.valid_to), (f.valid_from, f.valid_to)
                ):
                    raise table_error(
                        row.where, f"{f.series}/{f.energy}/{f.region or 'national'} appears twice"
                    )
            rows.append(f)
        return cls(tuple(rows))

    def series(self) -> set[str]:
        """The names of the series in the table."""
        return set(self._series)

    def rows(self) -> tuple[EmissionFactor, ...]:
        """Every factor row in use: the file's, in file order, then the per-site overrides."""
        return self._rows + tuple(self._overrides.values())

    def regions(self, series: str, energy: str = "electricity") -> set[str]:
        """The regions and provinces that have rows of their own in ``series`` for ``energy``."""
        return {f.region for f in self._groups.get((series, energy), ()) if f.region is not None}

    def factor(
        self,
        energy: str,
        on: date,
        grid_series: str = "mee_grid_average",
        region: str | None = None,
        province: str | None = None,
    ) -> EmissionFactor:
        """The CO₂ factor (t CO₂ per canonical uom) of ``energy`` for a reading of the day ``on``.

        Electricity (any energy with rows in ``grid_series``): of the series' rows for ``province``,
        for ``region`` (the grid region, e.g. 华北) and the national rows, the newest data year
        ``<= on.year`` (the oldest data year when ``on`` is before every one); within that year the
        province's row, else the region's, else the national one. Newest data first, then the most
        specific: 河北 in 2026 gets 华北 2023, not 河北 2022. Rows whose ``valid_to`` has passed are
        skipped. A name the series has no rows for (a province not in the table) is simply not found
        at its level. Other energies: the first of :data:`FALLBACK_SERIES` with a row valid on
        ``on`` (region and province do not matter). A per-site override wins over all. Raises
        :class:`AccountingError` ``unknown_series`` or ``no_emission_factor``.
        """
        override = self._overrides.get(energy)
        if override is not None:
            return override
        if grid_series not in self._series:
            raise AccountingError("unknown_series", f"CO₂ factor series {grid_series!r} is not in the table")
        grid = self._groups.get((grid_series, energy))
        if grid:
            found = _by_data_year(grid, on, province, region)
            if found is not None:
                return found
        for series in FALLBACK_SERIES:
            for f in self._groups.get((series, energy), ()):
                if f.data_year is None and valid_on(f.valid_from, f.valid_to, on):
                    return f
        raise AccountingError(
            "no_emission_factor", f"no CO₂ factor for {energy} on {on.isoformat()} (series {grid_series})"
        )

    def with_override(self, energy: str, t_co2_per_uom: float, uom: str, source: str) -> EmissionFactorTable:
        """A copy where ``energy`` uses ``t_co2_per_uom`` (t CO₂ per ``uom``, its canonical unit) on
        every date, series and region, e.g. a site's measured carbon content of a manufactured gas."""
        if not (math.isfinite(t_co2_per_uom) and t_co2_per_uom >= 0):
            raise AccountingError("bad_emission_factor", f"override for {energy} must be >= 0 t CO₂/{uom}")
        if not source.strip():
            raise AccountingError("bad_emission_factor", f"override for {energy} needs a source")
        f = EmissionFactor(
            "override", energy, None, None, t_co2_per_uom, uom, date.min, None, source, OVERRIDE_MARK,
            "per-site override",
        )  # fmt: skip
        return EmissionFactorTable(self._rows, {**self._overrides, energy: f})


def _by_data_year(
    rows: tuple[EmissionFactor, ...], on: date, province: str | None, region: str | None
) -> EmissionFactor | None:
    """The row of the newest data year ``<= on.year`` (else the oldest year) among the rows of
    ``province``, ``region`` and the nation; within the year the most specific of the three."""
    places: list[str | None] = [p for p in (province, region) if p is not None]
    places.append(None)
    rank = {place: i for i, place in reversed(list(enumerate(places)))}
    pool = [
        f
        for f in rows
        if f.data_year is not None and f.region in rank and (f.valid_to is None or on <= f.valid_to)
    ]
    if not pool:
        return None
    years = {f.data_year for f in pool if f.data_year is not None}
    upto = [y for y in years if y <= on.year]
    year = max(upto) if upto else min(years)
    same_year = [f for f in pool if f.data_year == year]
    return min(same_year, key=lambda f: (rank[f.region], -f.valid_from.toordinal()))


def _factor(row: Row) -> EmissionFactor:
    uom = row.text("uom")
    try:
        dimension(uom)
    except UomError as exc:
        raise table_error(row.where, exc.detail) from None
    validity = row.validity()
    return EmissionFactor(
        series=row.text("series"),
        energy=row.text("energy"),
        region=row.optional("region"),
        data_year=row.year("data_year"),
        t_co2_per_uom=row.number("t_co2_per_uom", positive=False),
        uom=uom,
        **row.provenance(validity),
    )


@lru_cache(maxsize=1)
def _packaged() -> EmissionFactorTable:
    """The packaged table, read once per process (the table is immutable)."""
    return EmissionFactorTable._read(None)
