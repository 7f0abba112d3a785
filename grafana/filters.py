"""The WHERE clauses dashboards share: Grafana's time macro and the template variables."""

from __future__ import annotations

#: Region and industry, multi-valued (regex form).
REGION_INDUSTRY = '"region" =~ /^$region$/ AND "industry" =~ /^$industry$/'
#: The units chosen (multi-valued, regex form).
UNITS = '"unit_id" =~ /^$unit$/'
#: The units chosen within the chosen regions and industries ("All" units is ``.*``).
CHOSEN_UNITS = f"{REGION_INDUSTRY} AND {UNITS}"
#: The one unit of the unit-detail dashboard.
ONE_UNIT = "\"unit_id\" = '$unit'"
#: ``energy`` points of main meters only: what the unit totals count (``energy.ledger``: a sub-meter's
#: energy is already in its main meter's, a monthly meter's is a statistic).
MAIN_METERS = "\"role\" = 'main'"


def where(*conditions: str) -> str:
    """``WHERE $timeFilter AND …`` with the given conditions."""
    return " AND ".join(("WHERE $timeFilter", *conditions))


def select(fields: str, measurement: str, *conditions: str, tail: str = "") -> str:
    """``SELECT fields FROM "measurement" WHERE $timeFilter AND conditions tail``."""
    text = f'SELECT {fields} FROM "{measurement}" {where(*conditions)}'
    return f"{text} {tail}" if tail else text


def per_interval(*tags: str) -> str:
    """``GROUP BY time($__interval)[, tags] fill(none)``."""
    group = ", ".join(("time($__interval)", *(f'"{t}"' for t in tags)))
    return f"GROUP BY {group} fill(none)"


def group_by(*tags: str) -> str:
    """``GROUP BY "tag", …``."""
    return "GROUP BY " + ", ".join(f'"{t}"' for t in tags)
