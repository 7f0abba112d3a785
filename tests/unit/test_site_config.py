"""site.yaml validation (collectors/site_config.py): every problem names the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.site_config import ConfigError, SiteConfig, load_site_config
from collectors.sources.simulator.plugin import Config as SimulatorConfig
from energymon.settings import KafkaSettings

BASE = KafkaSettings(bootstrap_servers="env-broker:9092")
GOOD = """\
site: {id: js-01, name: 苏州}
state_dir: /var/lib/energymon
buffer: {max_mb: 2048}
sources:
  - name: sim
    type: simulator
    units: 2
"""


def load(tmp_path: Path, text: str) -> SiteConfig:
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    return load_site_config(path, BASE)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return [str(p) for p in info.value.problems]


def test_a_valid_config_has_plugin_configs_and_paths_in_the_state_dir(tmp_path: Path) -> None:
    config = load(tmp_path, GOOD)
    assert config.sources == (SimulatorConfig(name="sim", type="simulator", units=2),)
    assert config.buffer.path == Path("/var/lib/energymon/buffer.db")
    assert config.kafka.bootstrap_servers == "env-broker:9092"
    assert config.source_id("sim") == "js-01/sim"


def test_kafka_overrides_replace_the_environment_settings(tmp_path: Path) -> None:
    config = load(tmp_path, GOOD + "kafka: {bootstrap_servers: 'site:9093', security_protocol: SSL}\n")
    assert (config.kafka.bootstrap_servers, config.kafka.security_protocol) == ("site:9093", "SSL")


def test_a_bad_plugin_field_names_file_line_and_field(tmp_path: Path) -> None:
    text = GOOD.replace("units: 2", "units: 0")
    path = tmp_path / "site.yaml"
    assert problems(tmp_path, text) == [
        f"{path}:7: sources[0].units: Input should be greater than or equal to 1"
    ]


def test_unknown_fields_and_duplicate_source_names_are_reported_together(tmp_path: Path) -> None:
    text = GOOD + "  - {name: sim, type: simulator, colour: red}\nclock: {max_drift: 3}\n"
    found = problems(tmp_path, text)
    assert any(":8: sources[1].name: duplicate source name 'sim' (first at line 5)" in p for p in found)
    assert any(":8: sources[1].colour: Extra inputs are not permitted" in p for p in found)
    assert any(":9: clock.max_drift: Extra inputs are not permitted" in p for p in found)


def test_an_unknown_or_missing_plugin_type_is_a_clear_error(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("type: simulator", "type: opcua"))
    assert len(found) == 1 and ":6: sources[0].type: unknown source type 'opcua'" in found[0]


def test_a_plugin_that_is_not_installed_yet_is_not_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collectors import site_config

    monkeypatch.setitem(site_config.PLUGIN_MODULES, "dlt645", "collectors.sources.nonexistent.plugin")
    found = problems(tmp_path, GOOD.replace("type: simulator", "type: dlt645"))
    assert len(found) == 1 and "source type 'dlt645' is not available" in found[0]


def test_missing_site_and_sources_and_bad_yaml(tmp_path: Path) -> None:
    found = problems(tmp_path, "buffer: {max_mb: -1}\n")
    assert any(p.endswith(": site: Field required") for p in found)
    assert any(p.endswith(": sources: Field required") for p in found)
    assert any(":1: buffer.max_mb: Input should be greater than 0" in p for p in found)
    assert any("not valid YAML" in p for p in problems(tmp_path, "site: [unclosed\n"))
    assert any("empty file" in p for p in problems(tmp_path, ""))


def test_the_shipped_samples_are_valid(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    site = load_site_config(root / "deploy" / "collector" / "site.yaml", BASE)
    assert site.site.id == "CHANGE-ME-site-id"
    sample = (root / "collectors" / "sources" / "simulator" / "sample.yaml").read_text(encoding="utf-8")
    assert load(tmp_path, "site: {id: s}\n" + sample).sources[0].type == "simulator"
