"""Monitoring centre overview: levels per region and industry, units by projected quota use, the
largest consumers, totals against the regions' plans, alert annotations."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from grafana import panels
from grafana.annotations import Annotation
from grafana.boards.base import dashboard
from grafana.filters import CHOSEN_UNITS, REGION_INDUSTRY, group_by, per_interval, select

UID = "energymon-overview"
_LAST_PER_UNIT = "unit_id", "region", "industry"


def _last_per_unit(fields: str) -> str:
    """A subquery: ``fields`` (last values of unit_status) once per unit of the chosen regions."""
    return select(fields, "unit_status", REGION_INDUSTRY, tail=group_by(*_LAST_PER_UNIT))


def level_count(level: str, *by: str) -> str:
    """How many units are at ``level`` now (their last ``level``), grouped by the tags ``by``."""
    inner = _last_per_unit('last("level") AS "level"')
    tail = f" {group_by(*by)}" if by else ""
    return f'SELECT count("level") AS "{level}" FROM ({inner}) WHERE "level" = \'{level}\'{tail}'


def against_plan(ytd: str, quota: str, label: str, *by: str) -> str:
    """Year to date and plan (sum of the units' caps) of ``ytd``/``quota`` fields, with the share used."""
    inner = _last_per_unit(f'last("{ytd}") AS "ytd", last("{quota}") AS "quota"')
    fields = (
        f'sum("ytd") AS "{label} ytd", sum("quota") AS "{label} plan", '
        f'sum("ytd") / sum("quota") * 100 AS "{label} used %"'
    )
    tail = f" {group_by(*by)}" if by else ""
    return f"SELECT {fields} FROM ({inner}){tail}"


UNIT_TABLE = _last_per_unit(
    'last("projected_pct") AS "projected %", last("used_pct") AS "used %", '
    'last("schedule_pct") AS "schedule %", last("ytd_tce") AS "ytd tce", last("quota_tce") AS "cap tce", '
    'last("projected_tce") AS "projected tce", last("level") AS "level"'
)
TOP_CONSUMERS = (
    'SELECT top("tce", "unit_id", 20) AS "tce" FROM ('
    + select('sum("tce") AS "tce"', "unit_energy", REGION_INDUSTRY, tail=group_by("unit_id"))
    + ")"
)
TCE_BY_REGION = select('sum("tce") AS "tce"', "unit_energy", REGION_INDUSTRY, tail=per_interval("region"))
ALERTS = select(
    '"message", "unit_id", "rule", "severity", "state"', "alert", CHOSEN_UNITS, "\"state\" <> 'resolved'"
)
_LEVEL_NAMES = [level for level, _text in panels.LEVELS if level != "orange"]


def build() -> Dashboard:
    """The overview dashboard."""
    levels_by_group = panels.table(
        "Units by warning level · region × industry",
        [level_count(level, "region", "industry") for level in _LEVEL_NAMES],
        merge=True,
        w=12,
        about="Each unit counted once, at the level of its last unit_status point in the time range.",
    )
    plan_fields = [("ytd_tce", "quota_tce", "tce"), ("ytd_co2_t", "co2_quota_t", "tCO₂")]
    return (
        dashboard(UID, "energymon · monitoring centre overview", __doc__ or "")
        .annotation(Annotation("Alerts", ALERTS, text="message", tags="unit_id,rule,severity,state"))
        .with_panel(panels.stat("Units by warning level", [level_count(lv) for lv in _LEVEL_NAMES], w=12))
        .with_panel(panels.colour_columns(levels_by_group, {lv: lv for lv in _LEVEL_NAMES}))
        .with_panel(
            panels.stat(
                "Total against the plan",
                [against_plan(ytd, quota, label) for ytd, quota, label in plan_fields],
                w=24,
                about="Year to date of the chosen units against the sum of their caps (the plan).",
            )
        )
        .with_panel(
            panels.table(
                "Plan by region",
                [against_plan(ytd, quota, label, "region") for ytd, quota, label in plan_fields],
                merge=True,
                w=24,
                h=6,
            )
        )
        .with_panel(
            panels.table(
                "Units by projected quota use",
                [UNIT_TABLE],
                sort_by="projected %",
                level_columns=["level"],
                w=16,
                h=12,
            )
        )
        .with_panel(
            panels.table("Largest consumers (tce in range)", [TOP_CONSUMERS], sort_by="tce", w=8, h=12)
        )
        .with_panel(
            panels.timeseries("Energy use by region", [TCE_BY_REGION], unit="suffix: tce", bars=True, w=24)
        )
    )
