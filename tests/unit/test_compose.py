"""deploy/compose.yaml: nothing here can start a container, so what can be checked without one —
it parses, every image is pinned, every service has a health check, and every ENERGYMON_ variable
names a real setting (derived from energymon/settings.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from energymon.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
#: name:tag with a version number in the tag, or a digest.
PINNED = re.compile(r"^[\w./-]+(:[\w.-]*\d[\w.-]*)?(@sha256:[0-9a-f]{64})?$")


def setting_names(model: type[BaseModel] = Settings, prefix: str = "ENERGYMON_") -> set[str]:
    """Every ENERGYMON_… variable the settings accept (nested models with ``__``)."""
    names = set()
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            names |= setting_names(ann, f"{prefix}{name.upper()}__")
        else:
            names.add(prefix + name.upper())
    return names


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict) and doc["services"], "compose.yaml has no services"
    return dict(doc["services"])


def test_the_stack_has_its_parts(services: dict[str, dict[str, Any]]) -> None:
    assert {
        "kafka",
        "influxdb",
        "influxdb-init",
        "grafana",
        "worker",
        "alert-dispatcher",
        "simulator",
    } <= set(services)
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert "dbrp create" in services["influxdb-init"]["command"][0]
    mounts = services["grafana"]["volumes"]
    assert any(m.startswith("../grafana/provisioning:") for m in mounts)
    assert any(m.startswith("../grafana/dashboards:") for m in mounts)


def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    images = {name: s["image"] for name, s in services.items()}
    assert len(images) == len(services), "a service without an image"
    loose = {n: i for n, i in images.items() if ":" not in i or "latest" in i or not PINNED.match(i)}
    assert not loose, f"unpinned images: {loose}"
    assert images["kafka"].startswith("apache/kafka:") and images["influxdb"].startswith("influxdb:2.7.")
    assert images["grafana"].startswith("grafana/grafana:11.")


def test_every_service_has_a_health_check(services: dict[str, dict[str, Any]]) -> None:
    missing = [n for n, s in services.items() if not (s.get("healthcheck") or {}).get("test")]
    assert not missing, f"no health check: {missing}"


def test_every_energymon_variable_is_a_setting(services: dict[str, dict[str, Any]]) -> None:
    valid = setting_names()
    used = {
        (n, v) for n, s in services.items() for v in s.get("environment") or {} if v.startswith("ENERGYMON_")
    }
    assert used, "no ENERGYMON_ variables at all"
    unknown = sorted(f"{n}: {v}" for n, v in used if v not in valid)
    assert not unknown, f"not settings: {unknown}"


def test_the_dockerfile_builds_energymon_from_a_pinned_base() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    (base,) = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert PINNED.match(base) and "latest" not in base and ":" in base
    assert 'ENTRYPOINT ["energymon"]' in text
