"""Alerts: open alerts, counts by rule and severity, and the history, of the units chosen by region,
industry and unit (``alert`` carries the region and industry tags)."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from grafana import panels
from grafana.boards.base import dashboard
from grafana.filters import CHOSEN_UNITS, group_by, per_interval, select

UID = "energymon-alerts"
RAISED_OR_UPDATED = "\"state\" <> 'resolved'"

#: The last state of each unit and rule; open when it is not ``resolved``. (An alert's key also holds
#: the indicator, which is no tag of ``alert``: two open indicators of one rule show as one row.)
OPEN = (
    "SELECT * FROM ("
    + select(
        'last("state") AS "state", "severity", "message", "value", "threshold"',
        "alert",
        CHOSEN_UNITS,
        tail=group_by("unit_id", "rule"),
    )
    + f") WHERE {RAISED_OR_UPDATED}"
)
BY_RULE_SEVERITY = select(
    'count("state") AS "alerts"', "alert", CHOSEN_UNITS, RAISED_OR_UPDATED, tail=group_by("rule", "severity")
)
OVER_TIME = select(
    'count("state") AS "alerts"', "alert", CHOSEN_UNITS, RAISED_OR_UPDATED, tail=per_interval("rule")
)
HISTORY = select(
    '"unit_id", "rule", "severity", "state", "message", "value", "threshold"',
    "alert",
    CHOSEN_UNITS,
    tail="ORDER BY time DESC LIMIT 1000",
)


def build() -> Dashboard:
    """The alerts dashboard."""
    return (
        dashboard(UID, "energymon · alerts", __doc__ or "")
        .with_panel(panels.table("Open alerts", [OPEN], keep_time=True, level_columns=["severity"], w=24))
        .with_panel(
            panels.table(
                "Alerts raised or escalated, by rule and severity",
                [BY_RULE_SEVERITY],
                sort_by="alerts",
                level_columns=["severity"],
            )
        )
        .with_panel(panels.timeseries("Alerts raised or escalated over time", [OVER_TIME], bars=True))
        .with_panel(
            panels.table("History", [HISTORY], keep_time=True, level_columns=["severity"], w=24, h=12)
        )
    )
