"""Unit detail: energy by type, year to date against the cap and the schedule, year-end projection,
intensity against target, product energy against 标杆/基准/限额, levels and data quality."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from grafana import panels
from grafana.boards.base import dashboard
from grafana.filters import ONE_UNIT, group_by, per_interval, select

UID = "energymon-unit"
TCE = "suffix: tce"


def status(fields: str) -> str:
    """Fields of the unit's ``unit_status`` per interval."""
    return select(fields, "unit_status", ONE_UNIT, tail=per_interval())


def by_energy(field: str) -> str:
    """``field`` of the ``energy`` measurement summed per interval and energy type."""
    return select(f'sum("{field}")', "energy", ONE_UNIT, tail=per_interval("energy"))


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
#: The products' energy per unit of product, and their 标杆/基准/限额 once the worker writes them as
#: ``product_<id>_benchmark|baseline|limit`` (the regex takes them without a change here).
PRODUCTS = status("last(/^product_.+_(value|benchmark|baseline|limit)$/)")
LEVELS = select('last("level") AS "unit", last(/^.+_level$/)', "unit_status", ONE_UNIT)
COMPLETENESS = select(
    'last("completeness_pct") AS "completeness"', "data_quality", ONE_UNIT, tail=per_interval()
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
        [PRODUCTS],
        about="Energy per unit of product (kgce per product unit); thresholds dashed when written.",
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
        .with_panel(panels.timeseries("Data completeness per day", [COMPLETENESS], unit="percent", bars=True))
        .with_panel(panels.table("Meter events (roll-overs, swaps)", [METER_EVENTS], sort_by="events"))
    )
