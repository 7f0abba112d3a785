"""What every energymon dashboard shares: uid, tags, time settings and the template variables."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync

from grafana import variables


def dashboard(uid: str, title: str, about: str, *, single_unit: bool = False) -> Dashboard:
    """A dashboard with a stable ``uid``, Asia/Shanghai time and the region/industry/unit variables."""
    board = (
        Dashboard(title)
        .uid(uid)
        .description(about)
        .tags(["energymon"])
        .timezone("Asia/Shanghai")
        .time("now-30d", "now")
        .refresh("1m")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .readonly()
    )
    for variable in variables.all_three(single_unit=single_unit):
        board = board.with_variable(variable)
    return board
