"""The dashboards as code: the committed JSON is what the code generates, and its shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from grafana.generate import DASHBOARDS, documents, generate, render
from grafana.queries import queries


def committed() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in DASHBOARDS.glob("*.json")}


def test_the_committed_json_equals_the_generated_json() -> None:
    generated = {uid: render(doc) for uid, doc in documents().items()}
    on_disk = {p.stem: p.read_text(encoding="utf-8") for p in DASHBOARDS.glob("*.json")}
    assert on_disk == generated, "grafana/dashboards/ drifted: run `python -m grafana.generate` and commit"


def test_generation_is_deterministic(tmp_path: Path) -> None:
    first = {p.name: p.read_bytes() for p in generate(tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in generate(tmp_path / "b")}
    assert first == second and sorted(first) == [
        "energymon-alerts.json",
        "energymon-overview.json",
        "energymon-unit.json",
    ]


@pytest.mark.parametrize("uid", ["energymon-alerts", "energymon-overview", "energymon-unit"])
def test_every_dashboard_has_region_industry_unit_variables_and_only_influxql(uid: str) -> None:
    doc = committed()[uid]
    assert [v["name"] for v in doc["templating"]["list"]] == ["region", "industry", "unit"]
    assert all(v["query"].startswith("SHOW TAG VALUES") for v in doc["templating"]["list"])
    targets = [t for p in doc["panels"] for t in p["targets"]]
    assert targets and all(t["rawQuery"] and t["datasource"]["uid"] == "energymon-influxdb" for t in targets)
    assert all(q.startswith(("SELECT", "SHOW")) for _where, q in queries(doc))


def test_the_overview_colours_levels_and_annotates_alerts() -> None:
    doc = committed()["energymon-overview"]
    (units,) = [p for p in doc["panels"] if p["title"] == "Units by projected quota use"]
    assert units["options"]["sortBy"] == [{"desc": True, "displayName": "projected %"}]
    (level,) = [o for o in units["fieldConfig"]["overrides"] if o["matcher"]["options"] == "level"]
    (mapping,) = next(p["value"] for p in level["properties"] if p["id"] == "mappings")
    assert {k: v["color"] for k, v in mapping["options"].items()} == {
        "red": "red",
        "orange": "orange",
        "yellow": "yellow",
        "green": "green",
    }
    (alerts,) = doc["annotations"]["list"]
    assert 'FROM "alert"' in alerts["target"]["query"] and alerts["textColumn"] == "message"


def test_the_unit_detail_shows_one_unit() -> None:
    doc = committed()["energymon-unit"]
    unit = doc["templating"]["list"][2]
    assert not unit.get("multi") and all("'$unit'" in q for w, q in queries(doc) if w.startswith("panel"))


def test_energy_sums_count_main_meters_and_alert_queries_filter_region_and_industry() -> None:
    found = [q for doc in committed().values() for _where, q in queries(doc)]
    energy = [q for q in found if 'FROM "energy"' in q]
    alerts = [q for q in found if 'FROM "alert"' in q]
    assert energy and all("\"role\" = 'main'" in q for q in energy)
    assert alerts and all('"region" =~ /^$region$/ AND "industry" =~ /^$industry$/' in q for q in alerts)


def test_the_unit_detail_draws_each_products_standards_as_their_own_query() -> None:
    doc = committed()["energymon-unit"]
    (panel,) = [p for p in doc["panels"] if p["title"].startswith("Product energy")]
    selected = [t["query"].split(" FROM ")[0] for t in panel["targets"]]
    assert selected == [
        f"SELECT last(/^product_.+_{name}$/)" for name in ("value", "benchmark", "baseline", "limit")
    ]
