"""The provisioning files: the datasource the dashboards name, and the provider reading their folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from grafana.generate import DASHBOARDS
from grafana.influxql import DATASOURCE

PROVISIONING = DASHBOARDS.parent / "provisioning"
COMPOSE = DASHBOARDS.parents[1] / "deploy" / "compose.yaml"


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return doc


def test_the_datasource_is_the_one_the_dashboards_name_and_speaks_influxql() -> None:
    (ds,) = load(PROVISIONING / "datasources" / "energymon.yaml")["datasources"]
    assert (ds["uid"], ds["type"]) == (DATASOURCE.uid, DATASOURCE.type_val)
    assert ds["jsonData"] == {"dbName": "energymon", "httpMode": "POST", "version": "InfluxQL"}
    assert ds["url"] == "${INFLUX_URL}" and "password" in ds["secureJsonData"]


def test_the_dashboard_provider_reads_the_folder_compose_mounts() -> None:
    (provider,) = load(PROVISIONING / "dashboards" / "energymon.yaml")["providers"]
    assert provider["type"] == "file"
    mounts = load(COMPOSE)["services"]["grafana"]["volumes"]
    assert f"../grafana/dashboards:{provider['options']['path']}:ro" in mounts
