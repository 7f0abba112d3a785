"""Unit detail: energy by type, year to date against the cap and the schedule, year-end projection,
intensity against target, product energy against 标杆/基准/限额, levels and data quality."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from grafana import panels
from grafana.boards.base import dashboard
from grafana.filters import MAIN_METERS, ONE_UNIT, group_by, per_interval, select

UID = "energymon-unit"
TCE = "suffix: tce"


def status(fields: str) -> str:
    """Fields of the unit's ``unit_status`` per interval."""
    return select(fields, "unit_status", ONE_UNIT, tail=per_interval())


def by_energy(field: str) -> str:
    """``field`` of the main meters' ``energy`` points summed per interval and energy type: what the
    unit's totals count (sub-meters are inside a main meter, monthly meters are statistics)."""
    return select(f'sum("{field}")', "energy", ONE_UNIT, MAIN_METERS, tail=per_interval("energy"))


def against_cap(ytd: str, quota: str) -> str:
    """Year to date, the cap and the schedule line (cap × schedule share) per interval."""
    return status(
        f'last("{ytd}") AS "year to date", last("{quota}") AS "cap", '
        f'last("{quota}") * last("schedule_pct") / 100 AS "schedule"'
    )


PROJECTION = status('last("projected_tce") AS "projected year end", last("quota_tce") AS "cap"')
SHARES = select(
    'last("projected_pct") AS "projected %", last("used_pct") AS "used %", '
    'last("schedule_pct") AS "schedule %"',
    "unit_status",
    ONE_UNIT,
)
INTENSITY = status('last("intensity") AS "intensity", last("intensity_target") AS "target"')
INTENSITY_CHANGE = status(
    'last("intensity_change_pct") AS "change y/y %", '
    'last("intensity_change_vs_base_pct") AS "change vs base year %"'
)
#: The products' energy per unit of product (``product_<id>_value``) and their 标杆/基准/限额
#: (``product_<id>_benchmark|baseline|limit``), all in the product's ``value_uom``: one query each.
PRODUCT_FIELDS = ("value", "benchmark", "baseline", "limit")
PRODUCTS = [status(f"last(/^product_.+_{name}$/)") for name in PRODUCT_FIELDS]
LEVELS = select('last("level") AS "unit", last(/^.+_level$/)', "unit_status", ONE_UNIT)
COMPLETENESS = select(
    'last("completeness_pct") AS "completeness"', "data_quality", ONE_UNIT, tail=per_interval()
)
#: Readings and messages refused (``rejected``) and those of them refused as too late (``late``).
REFUSED = select(
    'last("rejected") AS "rejected", last("late") AS "late"', "data_quality", ONE_UNIT, tail=per_interval()
)
METER_EVENTS = select(
    'count("detail") AS "events"', "meter_event", ONE_UNIT, tail=group_by("meter_id", "event")
)


CAP_LINES = {"cap": "red", "schedule": "blue"}


def build() -> Dashboard:
    """The unit-detail dashboard (one unit at a time)."""
    thresholds = {
        f".*_{name}$": color
        for name, color in (("benchmark", "green"), ("baseline", "orange"), ("limit", "red"))
    }
    products = panels.timeseries(
        "Product energy against 标杆 / 基准 / 限额",
        PRODUCTS,
        about="Energy per unit of product and its 标杆 (green), 基准 (orange) and 限额 (red) dashed, "
        "in the product's value unit (e.g. kgce/t).",
    )
    quality = panels.timeseries(
        "Data quality per day: completeness, readings rejected and late",
        [COMPLETENESS, REFUSED],
        unit="percent",
        bars=True,
        about="Completeness (%) of each closed China day; rejected and late (counts, right axis) so far.",
    )
    cap = panels.timeseries("Year to date against the cap", [against_cap("ytd_tce", "quota_tce")], unit=TCE)
    co2 = panels.timeseries("CO₂ year to date against the cap", [against_cap("ytd_co2_t", "co2_quota_t")])
    return (
        dashboard(UID, "energymon · unit detail", __doc__ or "", single_unit=True)
        .with_panel(panels.level_table("Levels now", [LEVELS], w=24, h=4))
        .with_panel(panels.timeseries("Energy by type (physical quantity)", [by_energy("qty")], bars=True))
        .with_panel(panels.timeseries("Energy by type (tce)", [by_energy("tce")], unit=TCE, bars=True))
        .with_panel(panels.dashed(cap, CAP_LINES))
        .with_panel(
            panels.dashed(panels.timeseries("Year-end projection", [PROJECTION], unit=TCE, w=8), CAP_LINES)
        )
        .with_panel(panels.stat("Quota use", [SHARES], unit="percent", w=4, h=8))
        .with_panel(panels.dashed(co2, CAP_LINES))
        .with_panel(
            panels.dashed(
                panels.timeseries("Energy intensity against target", [INTENSITY]), {"target": "red"}
            )
        )
        .with_panel(
            panels.timeseries(
                "Intensity change (year on year, against the base year)", [INTENSITY_CHANGE], unit="percent"
            )
        )
        .with_panel(panels.dashed(products, thresholds))
        .with_panel(panels.right_axis(quality, "late|rejected", "none"))
        .with_panel(panels.table("Meter events (roll-overs, swaps)", [METER_EVENTS], sort_by="events"))
    )
