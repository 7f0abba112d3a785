"""Template variables: region, industry and unit, from ``SHOW TAG VALUES`` of ``unit_status``."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import QueryVariable
from grafana_foundation_sdk.models.dashboard import VariableRefresh, VariableSort

from grafana.influxql import DATASOURCE

_SOURCE = 'SHOW TAG VALUES FROM "unit_status" WITH KEY = "{key}"'


def _tag_values(name: str, label: str, key: str, where: str = "") -> QueryVariable:
    query = _SOURCE.format(key=key) + (f" WHERE {where}" if where else "")
    return (
        QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )


def region() -> QueryVariable:
    """Province (all by default; "All" matches any value, ``.*``)."""
    return _tag_values("region", "region 地区", "region").multi(True).include_all(True).all_value(".*")


def industry() -> QueryVariable:
    """Industry within the chosen regions."""
    where = '"region" =~ /^$region$/'
    return (
        _tag_values("industry", "industry 行业", "industry", where)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def unit(*, single: bool = False) -> QueryVariable:
    """Units of the chosen regions and industries; ``single`` for the one-unit dashboard. "All" matches
    any unit (``.*``): every measurement the dashboards read carries the region and industry tags, and
    every query filters on them too, so no list of thousands of units is sent."""
    where = '"region" =~ /^$region$/ AND "industry" =~ /^$industry$/'
    variable = _tag_values("unit", "unit 用能单位", "unit_id", where)
    return variable if single else variable.multi(True).include_all(True).all_value(".*")


def all_three(*, single_unit: bool = False) -> list[QueryVariable]:
    """region, industry, unit (in that order: each depends on the ones before)."""
    return [region(), industry(), unit(single=single_unit)]
