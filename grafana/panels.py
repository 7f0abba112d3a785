"""Panel shapes the dashboards share, each built from InfluxQL queries (refIds A, B, C … in order)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, Self, TypeVar

from grafana_foundation_sdk.builders import stat as stat_panel
from grafana_foundation_sdk.builders import table as table_panel
from grafana_foundation_sdk.builders import timeseries as ts_panel
from grafana_foundation_sdk.builders.common import TableSortByFieldState
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DataTransformerConfig,
    DynamicConfigValue,
    ValueMap,
    ValueMapping,
    ValueMappingResult,
)

from grafana.influxql import DATASOURCE, Influx, ResultFormat

#: Warning levels (NDRC 一级/二级/三级) and alert severities, shown in their colours.
LEVELS: tuple[tuple[str, str], ...] = (
    ("red", "一级 red"),
    ("orange", "orange"),
    ("yellow", "二级 yellow"),
    ("green", "三级 green"),
)


class _Targeted(Protocol):
    def with_target(self, target: cogbuilder.Builder[cogvariants.Dataquery]) -> Self: ...
    def datasource(self, datasource: DataSourceRef) -> Self: ...
    def title(self, title: str) -> Self: ...
    def description(self, description: str) -> Self: ...
    def span(self, w: int) -> Self: ...
    def height(self, h: int) -> Self: ...


P = TypeVar("P", bound=_Targeted)


def _setup(panel: P, title: str, queries: Sequence[str], fmt: ResultFormat, w: int, h: int, about: str) -> P:
    panel = panel.title(title).datasource(DATASOURCE).span(w).height(h)
    if about:
        panel = panel.description(about)
    for i, query in enumerate(queries):
        panel = panel.with_target(Influx(query, chr(ord("A") + i), fmt))
    return panel


def level_mappings() -> list[ValueMapping]:
    """The level strings shown in their colours."""
    options = {
        level: ValueMappingResult(text=text, color=level, index=i) for i, (level, text) in enumerate(LEVELS)
    }
    return [ValueMap(options)]


def timeseries(
    title: str,
    queries: Sequence[str],
    *,
    unit: str = "",
    bars: bool = False,
    w: int = 12,
    h: int = 8,
    about: str = "",
) -> ts_panel.Panel:
    """A time series (lines, or bars for per-interval totals)."""
    panel = _setup(ts_panel.Panel(), title, queries, "time_series", w, h, about)
    if unit:
        panel = panel.unit(unit)
    if bars:
        panel = panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(80)
    return panel


def dashed(panel: ts_panel.Panel, lines: dict[str, str]) -> ts_panel.Panel:
    """Draw the series whose names match each regex of ``lines`` as dashed lines in its colour
    (``{regex: colour}``: caps, plans, targets)."""
    for name_regex, color in lines.items():
        panel = panel.override_by_regexp(
            name_regex,
            [
                DynamicConfigValue("custom.lineStyle", {"dash": [10, 10], "fill": "dash"}),
                DynamicConfigValue("color", {"fixedColor": color, "mode": "fixed"}),
            ],
        )
    return panel


def right_axis(panel: ts_panel.Panel, name_regex: str, unit: str) -> ts_panel.Panel:
    """Draw the series whose names match ``name_regex`` on a right axis in ``unit`` (counts beside
    percentages)."""
    return panel.override_by_regexp(
        name_regex,
        [DynamicConfigValue("custom.axisPlacement", "right"), DynamicConfigValue("unit", unit)],
    )


def table(
    title: str,
    queries: Sequence[str],
    *,
    sort_by: str = "",
    merge: bool = False,
    keep_time: bool = False,
    level_columns: Sequence[str] = (),
    w: int = 12,
    h: int = 8,
    about: str = "",
) -> table_panel.Panel:
    """A table; ``sort_by`` a column (descending), ``merge`` the queries into one table, and
    ``level_columns`` shown as coloured cells of their level. The time column is hidden unless
    ``keep_time`` (last values and counts carry no meaningful time)."""
    panel = _setup(table_panel.Panel(), title, queries, "table", w, h, about)
    if sort_by:
        panel = panel.sort_by([TableSortByFieldState().display_name(sort_by).desc(True)])
    if merge:
        panel = panel.with_transformation(DataTransformerConfig(id_val="merge", options={}))
    if not keep_time:
        hide = {"excludeByName": {"Time": True}}
        panel = panel.with_transformation(DataTransformerConfig(id_val="organize", options=hide))
    for column in level_columns:
        panel = panel.override_by_name(
            column,
            [
                DynamicConfigValue("mappings", level_mappings()),
                DynamicConfigValue("custom.cellOptions", {"type": "color-background"}),
            ],
        )
    return panel


def level_table(title: str, queries: Sequence[str], *, w: int = 12, h: int = 5) -> table_panel.Panel:
    """A table whose every cell is a level, shown in its colour."""
    return (
        table(title, queries, w=w, h=h)
        .mappings(level_mappings())
        .cell_options(common.TableColoredBackgroundCellOptions())
    )


def colour_columns(panel: table_panel.Panel, columns: dict[str, str]) -> table_panel.Panel:
    """Colour the cells of each named column (``{column: colour}``)."""
    for column, color in columns.items():
        panel = panel.override_by_name(
            column,
            [
                DynamicConfigValue("color", {"fixedColor": color, "mode": "fixed"}),
                DynamicConfigValue("custom.cellOptions", {"type": "color-background"}),
            ],
        )
    return panel


def stat(
    title: str, queries: Sequence[str], *, unit: str = "", w: int = 6, h: int = 5, about: str = ""
) -> stat_panel.Panel:
    """Big numbers: the last value of each query's series."""
    panel = _setup(stat_panel.Panel(), title, queries, "time_series", w, h, about)
    return panel.unit(unit) if unit else panel
