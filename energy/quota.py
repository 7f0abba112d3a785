"""Quota progress and projection (能耗双控 / 碳排放双控) of one unit for one calendar year.

Totals (reference/domain.md §4.2): ``used_pct = ytd / cap × 100``; the schedule (时序进度) is the share
of the year elapsed in China time, linear by default, or seasonal from last year's monthly shares;
the projection is the run rate ``ytd / schedule_share`` (so ``projected_pct − 100`` has the sign of
``used_pct − schedule_pct``).

Intensity is tce (or tCO₂) per 万元 of output value, year to date. Its change is taken against the
same period last year (同比, what the NDRC barometer grades) and against the base year. The target is
``*_intensity_target`` when given, else the base intensity × (1 − decline/100); the base intensity
comes from the history of ``base_year`` when the unit's data covers that whole year, else from
``base_*_intensity``. A decline without ``base_year`` is a decline on last year (the national
annual targets are set that way: 国发〔2024〕12号, 2024 energy intensity −2.5 %). The y/y decline the
year requires (``required_change_pct``) is the target against last year's whole-year intensity, or,
without that history, minus the decline when the base year is last year.

Nothing here reads a clock: every answer is for the ``at_ts_ms`` passed in (see
``energy.periods`` for how an instant is read).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

from energy.periods import Totals, UnitPeriods, local_midnight_ms, next_month, reference_day
from energy.registry import ProductInfo, YearTargets

Projection = Literal["linear", "seasonal"]


def schedule_share(at_ts_ms: int, monthly_shares: Sequence[float] | None = None) -> float:
    """Share (0..1) of the local year elapsed at ``at_ts_ms`` (epoch ms; at 00:00 on 1 January the
    year just closed, 1.0). Linear: elapsed time / the year's length (365 or 366 days). Seasonal, with
    ``monthly_shares`` (12 non-negative weights, normalised to sum 1, e.g. last year's
    :meth:`UnitPeriods.monthly_shares`): the shares of the completed months plus the current month's
    share × the fraction of the month elapsed."""
    today = reference_day(at_ts_ms)
    if monthly_shares is None:
        start = local_midnight_ms(date(today.year, 1, 1))
        end = local_midnight_ms(date(today.year + 1, 1, 1))
        return (at_ts_ms - start) / (end - start)
    shares = list(monthly_shares)
    if len(shares) != 12 or not all(math.isfinite(s) and s >= 0 for s in shares) or sum(shares) <= 0:
        raise ValueError("monthly shares must be 12 finite non-negative numbers with a positive sum")
    total = sum(shares)
    month_start = today.replace(day=1)
    start = local_midnight_ms(month_start)
    end = local_midnight_ms(next_month(month_start))
    elapsed = sum(shares[: today.month - 1]) + shares[today.month - 1] * (at_ts_ms - start) / (end - start)
    return min(1.0, max(0.0, elapsed / total))


@dataclass(frozen=True)
class TotalProgress:
    """A total against its yearly cap: ``ytd`` and ``projected`` in the indicator's unit (tce or
    tCO₂), ``quota`` the cap (None: no cap), percentages of the cap (None without a cap, or, for
    the projection, when no time has elapsed)."""

    ytd: float
    quota: float | None
    used_pct: float | None
    projected: float | None
    projected_pct: float | None


@dataclass(frozen=True)
class IntensityProgress:
    """An intensity (tce or tCO₂ per 万元 of output value), year to date.

    ``value`` (None without output value), ``target`` (None without one), ``last_year`` (the same
    period last year) and ``base`` (the base year's) in the indicator's unit; ``change_pct`` against
    last year and ``change_vs_base_pct`` against the base year (percent, negative: it fell);
    ``required_change_pct`` the y/y change the year's target requires and ``required_vs_base_pct``
    the change against the base year it requires (both percent, negative for a decline)."""

    value: float | None
    target: float | None
    last_year: float | None
    change_pct: float | None
    base: float | None
    change_vs_base_pct: float | None
    required_change_pct: float | None
    required_vs_base_pct: float | None


@dataclass(frozen=True)
class QuotaProgress:
    """A unit's progress in ``year`` at the time asked: ``schedule_pct`` (percent of the year by the
    schedule), ``projection`` (the schedule used, ``seasonal`` when last year's monthly shares exist),
    ``energy`` (tce) and ``co2`` (tCO₂) totals, their intensities, the year-to-date output value
    (万元) and the energy kept out of the total (``excluded_tce``, feedstock and renewable)."""

    year: int
    schedule_pct: float
    projection: Projection
    energy: TotalProgress
    co2: TotalProgress
    energy_intensity: IntensityProgress
    co2_intensity: IntensityProgress
    output_value_10k_yuan: float
    excluded_tce: float

    @property
    def ytd_tce(self) -> float:
        return self.energy.ytd

    @property
    def quota_tce(self) -> float | None:
        return self.energy.quota

    @property
    def used_pct(self) -> float | None:
        return self.energy.used_pct

    @property
    def projected_tce(self) -> float | None:
        return self.energy.projected

    @property
    def projected_pct(self) -> float | None:
        return self.energy.projected_pct

    @property
    def intensity(self) -> float | None:
        return self.energy_intensity.value

    @property
    def intensity_target(self) -> float | None:
        return self.energy_intensity.target

    @property
    def intensity_change_pct(self) -> float | None:
        return self.energy_intensity.change_pct

    def status_fields(self) -> dict[str, float | str]:
        """The ``unit_status`` measurement's fields (ARCHITECTURE.md), those that have a value."""
        e, c, ei, ci = self.energy, self.co2, self.energy_intensity, self.co2_intensity
        fields: dict[str, float | str | None] = {
            "ytd_tce": e.ytd,
            "quota_tce": e.quota,
            "used_pct": e.used_pct,
            "schedule_pct": self.schedule_pct,
            "projection": self.projection,
            "projected_tce": e.projected,
            "projected_pct": e.projected_pct,
            "excluded_tce": self.excluded_tce,
            "output_value_10k_yuan": self.output_value_10k_yuan,
            "intensity": ei.value,
            "intensity_target": ei.target,
            "intensity_change_pct": ei.change_pct,
            "intensity_change_vs_base_pct": ei.change_vs_base_pct,
            "ytd_co2_t": c.ytd,
            "co2_quota_t": c.quota,
            "co2_used_pct": c.used_pct,
            "co2_projected_t": c.projected,
            "co2_projected_pct": c.projected_pct,
            "co2_intensity": ci.value,
            "co2_intensity_target": ci.target,
            "co2_intensity_change_pct": ci.change_pct,
            "co2_intensity_change_vs_base_pct": ci.change_vs_base_pct,
        }
        return {k: v for k, v in fields.items() if v is not None}


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _change_pct(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference <= 0:
        return None
    return (value / reference - 1.0) * 100.0


def _total(ytd: float, cap: float | None, share: float) -> TotalProgress:
    projected = ytd / share if share > 0 else None
    return TotalProgress(
        ytd=ytd,
        quota=cap,
        used_pct=ytd / cap * 100.0 if cap else None,
        projected=projected,
        projected_pct=projected / cap * 100.0 if cap and projected is not None else None,
    )


def _intensity(
    field: Literal["tce", "co2_t"],
    ytd: Totals,
    last_year: Totals | None,
    last_year_whole: Totals | None,
    base_year: Totals | None,
    absolute_target: float | None,
    decline_pct: float | None,
    base_given: float | None,
    base_is_last_year: bool,
) -> IntensityProgress:
    def of(t: Totals | None) -> float | None:
        return None if t is None else _ratio(getattr(t, field), t.output_value_10k_yuan)

    value = of(ytd)
    previous = of(last_year)
    base = of(base_year)
    if base is None:
        base = base_given
    target = absolute_target
    if target is None and base is not None and decline_pct is not None:
        target = base * (1.0 - decline_pct / 100.0)
    required = _change_pct(target, of(last_year_whole))
    if required is None and absolute_target is None and decline_pct is not None and base_is_last_year:
        required = -decline_pct
    return IntensityProgress(
        value=value,
        target=target,
        last_year=previous,
        change_pct=_change_pct(value, previous),
        base=base,
        change_vs_base_pct=_change_pct(value, base),
        required_change_pct=required,
        required_vs_base_pct=_change_pct(target, base),
    )


def intensity_window(
    periods: UnitPeriods, at_ts_ms: int, output_through_ms: int | None
) -> tuple[Totals, int]:
    """The year-to-date totals an intensity divides, and the time they run to.

    Energy and output reports arrive on their own (two topics, and output is often reported late):
    the intensity is taken over the span both cover, up to ``min(at_ts_ms, output_through_ms)``
    (``output_through_ms``: the end of the newest output report, epoch ms). Energy is cut there when
    output lags; output is cut at ``at_ts_ms`` when it runs ahead (the last day pro rata, see
    :meth:`UnitPeriods.year_to`). Without ``output_through_ms``: the year to date as it stands."""
    ytd = periods.totals("year", at_ts_ms)
    if output_through_ms is None or output_through_ms == at_ts_ms:
        return ytd, at_ts_ms
    if output_through_ms < at_ts_ms:
        cut = periods.year_to(output_through_ms)
        if cut is None or reference_day(output_through_ms).year != reference_day(at_ts_ms).year:
            return ytd, at_ts_ms
        return _with_output(cut, ytd), output_through_ms
    cut = periods.year_to(at_ts_ms)
    if cut is None:
        return ytd, at_ts_ms
    return _with_output(ytd, cut), at_ts_ms


def _with_output(energy: Totals, output: Totals) -> Totals:
    """``energy``'s energy figures with ``output``'s output quantities and value."""
    return replace(energy, output_value_10k_yuan=output.output_value_10k_yuan, output=output.output)


def quota_progress(
    targets: YearTargets, periods: UnitPeriods, at_ts_ms: int, output_through_ms: int | None = None
) -> QuotaProgress:
    """The unit's progress against ``targets`` with the data up to ``at_ts_ms`` (epoch ms), whose local
    year must be ``targets.year`` (raises ValueError otherwise). Intensities are taken over the span
    that energy and output reports both cover (:func:`intensity_window`)."""
    year = reference_day(at_ts_ms).year
    if targets.year != year:
        raise ValueError(f"targets are for {targets.year}, the time asked is in {year}")
    ytd = periods.totals("year", at_ts_ms)
    intensity_ytd, intensity_at = intensity_window(periods, at_ts_ms, output_through_ms)
    shares = periods.monthly_shares(year - 1)
    projection: Projection = "linear"
    share = schedule_share(at_ts_ms)
    if shares is not None:
        seasonal = schedule_share(at_ts_ms, shares)
        if seasonal > 0:
            projection, share = "seasonal", seasonal
    last_year = periods.same_period_last_year("year", intensity_at)
    last_year_whole = periods.year_totals(year - 1)
    base_year_number = targets.base_year if targets.base_year is not None else year - 1
    base_year = periods.year_totals(base_year_number) if base_year_number < year else None
    base_is_last_year = base_year_number == year - 1
    return QuotaProgress(
        year=year,
        schedule_pct=share * 100.0,
        projection=projection,
        energy=_total(ytd.tce, targets.energy_cap_tce, share),
        co2=_total(ytd.co2_t, targets.co2_cap_t, share),
        energy_intensity=_intensity(
            "tce",
            intensity_ytd,
            last_year,
            last_year_whole,
            base_year,
            targets.energy_intensity_target,
            targets.energy_intensity_decline_pct,
            targets.base_energy_intensity,
            base_is_last_year,
        ),
        co2_intensity=_intensity(
            "co2_t",
            intensity_ytd,
            last_year,
            last_year_whole,
            base_year,
            targets.co2_intensity_target,
            targets.co2_intensity_decline_pct,
            targets.base_co2_intensity,
            base_is_last_year,
        ),
        output_value_10k_yuan=ytd.output_value_10k_yuan,
        excluded_tce=ytd.excluded_tce,
    )


def product_energy(
    product: ProductInfo, periods: UnitPeriods, at_ts_ms: int, output_through_ms: int | None = None
) -> float | None:
    """单位产品综合能耗 year to date at ``at_ts_ms``: kgce per unit of the product's output (its ``uom``).

    The numerator is the energy of the product's meters (:meth:`UnitPeriods.add_product_energy`), or,
    when it lists none, the unit's whole energy *including* feedstock and renewable energy (GB/T 2589
    综合能耗 counts all energy used; the dual-control exclusions apply to the cap, not to a product's
    energy standard). Energy and output are taken over the span both cover (:func:`intensity_window`).
    None without output of the product."""
    ytd, _ = intensity_window(periods, at_ts_ms, output_through_ms)
    quantity = ytd.output.get(product.product_id, 0.0)
    if quantity <= 0:
        return None
    pid = product.product_id
    tce = ytd.product_tce.get(pid, 0.0) if product.meters else ytd.tce + ytd.excluded_tce
    return tce * 1000.0 / quantity
