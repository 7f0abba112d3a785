"""Settings: environment, secret files, masking, and the README documenting every one."""

import json
import logging
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr
from typer.testing import CliRunner

from energymon.cli import app
from energymon.settings import (
    MASK,
    AlertSettings,
    GrafanaSettings,
    InfluxSettings,
    KafkaSettings,
    Settings,
    load,
    secret_fields,
)

SECTIONS: dict[str, type[BaseModel]] = {
    "kafka": KafkaSettings, "influx": InfluxSettings, "alerts": AlertSettings, "grafana": GrafanaSettings,
}  # fmt: skip

README = Path(__file__).resolve().parents[2] / "README.md"


def env_names(model: type[BaseModel], prefix: str = "ENERGYMON_") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            names += env_names(ann, f"{prefix}{name.upper()}__")
        else:
            names.append(prefix + name.upper())
    return names


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [n for n in env_names(Settings) if f"`{n}`" not in text]
    assert not missing, f"README lacks {missing}"


def test_environment_with_nested_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENERGYMON_KAFKA__BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("ENERGYMON_INFLUX__BATCH_SIZE", "1234")
    s = Settings()
    assert s.kafka.kafka_python_options()["bootstrap_servers"] == ["k1:9092", "k2:9092"]
    assert s.influx.batch_size == 1234


def test_secret_from_file_is_used_and_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "influx-password"
    secret.write_text("s3cr3t-value\n")
    monkeypatch.setenv("ENERGYMON_INFLUX__PASSWORD_FILE", str(secret))
    monkeypatch.setenv("ENERGYMON_ALERTS__WEBHOOK_SECRET", "hook-secret")
    s = Settings()
    assert s.influx.password is not None and s.influx.password.get_secret_value() == "s3cr3t-value"
    masked = s.masked()
    assert masked["influx"]["password"] == MASK and masked["alerts"]["webhook_secret"] == MASK
    assert "s3cr3t-value" not in json.dumps(masked) and "hook-secret" not in json.dumps(masked)


def test_toml_file_is_read_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "energymon.toml"
    conf.write_text('[influx]\ndatabase = "from_toml"\nbatch_size = 10\n')
    monkeypatch.setenv("ENERGYMON_CONFIG_FILE", str(conf))
    monkeypatch.setenv("ENERGYMON_INFLUX__BATCH_SIZE", "20")
    s = Settings()
    assert s.influx.database == "from_toml" and s.influx.batch_size == 20


def test_config_command_prints_masked_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENERGYMON_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("ENERGYMON_KAFKA__SASL_USERNAME", "energymon")
    monkeypatch.setenv("ENERGYMON_KAFKA__SASL_PASSWORD", "kafka-secret")
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["kafka"]["sasl_password"] == MASK and "kafka-secret" not in result.output


def test_invalid_settings_give_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENERGYMON_INFLUX__BATCH_SIZE", "many")
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 2 and "batch_size" in result.output


def test_missing_broker_is_named() -> None:
    with pytest.raises(RuntimeError, match="ENERGYMON_KAFKA__BOOTSTRAP_SERVERS"):
        Settings().kafka.servers()


def test_an_unreadable_secret_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENERGYMON_KAFKA__SASL_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="sasl_password_file"):
        Settings()


#: Every secret setting: (section, name), and the settings it needs beside it to be valid.
SECRETS = [(section, name) for section, model in SECTIONS.items() for name in secret_fields(model)]
COMPANIONS: dict[tuple[str, str], dict[str, str]] = {
    ("kafka", "sasl_password"): {"SECURITY_PROTOCOL": "SASL_SSL", "SASL_USERNAME": "energymon"},
    ("kafka", "ssl_password"): {"SECURITY_PROTOCOL": "SSL", "SSL_CERTFILE": "/etc/energymon/client.pem"},
}


def test_the_secrets_are_the_ones_the_docs_name() -> None:
    assert SECRETS == [
        ("kafka", "sasl_password"), ("kafka", "ssl_password"), ("influx", "password"), ("influx", "token"),
        ("alerts", "webhook_secret"), ("alerts", "api_token"), ("grafana", "token"),
    ]  # fmt: skip


@pytest.mark.parametrize(("section", "name"), SECRETS)
def test_every_secret_comes_from_its_file_and_is_never_shown(
    section: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    value = f"{section}-{name}-f1le-value"
    secret = tmp_path / "secret"
    secret.write_text(value + "\n")
    prefix = f"ENERGYMON_{section.upper()}__"
    for key, companion in COMPANIONS.get((section, name), {}).items():
        monkeypatch.setenv(prefix + key, companion)
    monkeypatch.setenv(f"{prefix}{name.upper()}_FILE", str(secret))
    s = load()
    field = getattr(getattr(s, section), name)
    assert isinstance(field, SecretStr) and field.get_secret_value() == value
    assert s.secret_values() == [value]
    assert value not in json.dumps(s.masked()) + repr(s) + str(s)
    caplog.set_level(logging.INFO)
    logging.getLogger("tests.settings").info("settings %s (%s)", s.model_dump(), value)
    assert value not in caplog.text  # load() registered it with energymon.redact


def test_a_secret_in_the_toml_file_is_refused_without_showing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "energymon.toml"
    conf.write_text('[influx]\ndatabase = "x"\npassword = "toml-pa55word"\n[grafana]\ntoken = "toml-t0ken"\n')
    monkeypatch.setenv("ENERGYMON_CONFIG_FILE", str(conf))
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 2
    refused = "secrets may not be written in the config file ([influx] password, [grafana] token)"
    assert refused in result.output
    assert "toml-pa55word" not in result.output and "toml-t0ken" not in result.output


def test_a_validation_error_does_not_show_the_secrets_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENERGYMON_KAFKA__SASL_PASSWORD", "val1dation-secret")  # without a SASL protocol
    monkeypatch.setenv("ENERGYMON_INFLUX__TOKEN", "val1dation-token")
    monkeypatch.setenv("ENERGYMON_INFLUX__BATCH_SIZE", "many")
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 2 and "the broker would get no credentials" in result.output
    assert "val1dation" not in result.output
