"""The MQTT and HTTP push sources' sample configs validate (their files need not exist until create)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
import yaml

from collectors.sources.http import plugin as http_plugin
from collectors.sources.mqtt import plugin as mqtt_plugin

SOURCES = Path(__file__).parents[2] / "collectors/sources"


@pytest.mark.parametrize(("package", "plugin"), [("mqtt", mqtt_plugin), ("http", http_plugin)])
def test_sample_validates(package: str, plugin: ModuleType) -> None:
    entries = yaml.safe_load((SOURCES / package / "sample.yaml").read_text())["sources"]
    assert [plugin.Config.model_validate(e).type for e in entries] == list(plugin.SOURCE_TYPES)
