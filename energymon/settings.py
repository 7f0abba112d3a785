"""Settings: environment variables prefixed ``ENERGYMON_`` (nested with ``__``), an optional ``.env``
file and an optional TOML file named by ``ENERGYMON_CONFIG_FILE``.

Precedence, highest first: environment, ``.env``, TOML file, defaults.
Examples: ``ENERGYMON_KAFKA__BOOTSTRAP_SERVERS=broker1:9092,broker2:9092``,
``ENERGYMON_INFLUX__PASSWORD_FILE=/run/secrets/influx``.

A secret (``*_password``, ``*_secret``, ``*_token``) may be given directly or through a ``*_file``
setting naming a file that holds it; ``energymon config`` prints it masked either way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

MASK = "********"


class _SecretFiles(BaseModel):
    """Fills every unset secret ``<name>`` from the file named by its ``<name>_file`` setting."""

    @model_validator(mode="after")
    def _secrets_from_files(self) -> Any:
        for name in type(self).model_fields:
            path = getattr(self, f"{name}_file", None) if not name.endswith("_file") else None
            if path is None or getattr(self, name) is not None:
                continue
            try:
                setattr(self, name, SecretStr(Path(path).read_text(encoding="utf-8").strip()))
            except OSError as exc:
                raise ValueError(f"cannot read {name}_file {path}: {exc.strerror}") from exc
        return self


class KafkaSettings(_SecretFiles):
    """Where the broker is and how to talk to it."""

    bootstrap_servers: str | None = Field(
        None,
        description="Comma-separated host:port list. Unset: `energymon up` starts a local tansu broker.",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    topic_partitions: int = Field(4, ge=1, description="Partitions of topics energymon creates.")
    replication_factor: int = Field(1, ge=1)
    tansu: bool = Field(
        False,
        description=(
            "Work around the local tansu broker (single-record producer batches for exact table "
            "recovery, short group session timeouts). `energymon up` turns it on for its own broker."
        ),
    )
    session_timeout_s: float = Field(
        30.0, gt=0, description="Consumer-group session timeout (tansu mode uses 6 s)."
    )

    def servers(self) -> str:
        """The bootstrap servers; raises a clear error when none are configured."""
        if not self.bootstrap_servers:
            raise RuntimeError(
                "no Kafka broker configured: set ENERGYMON_KAFKA__BOOTSTRAP_SERVERS "
                "(or run `energymon up`, which starts a local one)"
            )
        return self.bootstrap_servers

    def kafka_python_options(self) -> dict[str, Any]:
        """Connection options for kafka-python clients (producer, consumer, admin)."""
        opts: dict[str, Any] = {
            "bootstrap_servers": self.servers().split(","),
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            opts["sasl_mechanism"] = self.sasl_mechanism
            opts["sasl_plain_username"] = self.sasl_username
            opts["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        for key, value in (
            ("ssl_cafile", self.ssl_cafile),
            ("ssl_certfile", self.ssl_certfile),
            ("ssl_keyfile", self.ssl_keyfile),
        ):
            if value is not None:
                opts[key] = str(value)
        return opts


class InfluxSettings(_SecretFiles):
    """The InfluxDB that receives every point: 1.x (`/write`, user/password) or 2.x/3.x (token)."""

    url: str | None = Field(
        None, description="e.g. http://influx:8086. Unset: `energymon up` starts a local influxd."
    )
    backend: Literal["v1", "v2"] = Field(
        "v1", description="v1: InfluxDB 1.x `/write` API; v2: InfluxDB 2.x/3.x through influxdb-client."
    )
    database: str = "energymon"
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    token: SecretStr | None = Field(None, description="API token (v2 backend).")
    token_file: Path | None = None
    org: str = Field("energymon", description="Organisation (v2 backend).")
    bucket: str | None = Field(None, description="Bucket (v2 backend). Unset: the database name.")
    batch_size: int = Field(5000, ge=1, description="Lines per write request.")
    flush_interval_s: float = Field(
        0.0, ge=0, description="Longest wait for more lines before a batch that is not full is sent (s)."
    )
    gzip: bool = Field(True, description="Compress write requests (Content-Encoding: gzip).")
    timeout_s: float = Field(10.0, gt=0)
    retry_max_backoff_s: float = Field(30.0, gt=0)
    retention_raw: str = Field("400d", description="How long raw points are kept (InfluxQL duration).")
    retention_hourly: str = Field("1825d", description="How long hourly rollups are kept.")
    retention_daily: str = Field("INF", description="How long daily rollups are kept (INF: for ever).")

    def bucket_name(self) -> str:
        """The v2 bucket: ``bucket``, or the database name when unset."""
        return self.bucket or self.database

    def base_url(self) -> str:
        """The InfluxDB URL; raises a clear error when none is configured."""
        if not self.url:
            raise RuntimeError(
                "no InfluxDB configured: set ENERGYMON_INFLUX__URL "
                "(or run `energymon up`, which starts a local one)"
            )
        return self.url.rstrip("/")


class StreamSettings(BaseModel):
    """The Faust worker."""

    app_id: str = "energymon"
    store: str = Field(
        "rocksdb://",
        description=(
            "Faust table store: rocksdb:// (rocksdict, survives restarts) or memory:// (tests; "
            "`energymon up` uses it with its own in-memory broker)."
        ),
    )
    web_port: int | None = Field(None, description="Faust web port; unset runs the worker --without-web.")
    batch_max: int = Field(100, ge=1, description="Messages taken from `readings` per batch.")
    batch_within_s: float = Field(0.5, gt=0, description="Longest wait to fill a batch.")
    lateness_s: int = Field(
        7200, ge=0, description="How far behind a unit's newest reading a reading may arrive (seconds)."
    )
    electricity_basis: Literal["equivalent", "equal_value"] = Field(
        "equivalent", description="当量值 (0.1229 kgce/kWh) or 等价值 (per-year thermal coal rate)."
    )
    grid_factor_series: str = Field(
        "mee_grid_average", description="CO₂ factor series for electricity (see energy/data/co2_factors.csv)."
    )
    grid_region: str | None = Field(None, description="Default grid region/province for CO₂ factors.")
    fold_buckets: int = Field(
        200, ge=1, description="Fold a unit's period journal into its archive at this many buckets."
    )
    fold_every_s: float = Field(
        60.0, gt=0, description="…or when this many seconds passed since the unit's last fold."
    )


class AlertSettings(_SecretFiles):
    """The first alert rule and where alerts go."""

    hourly_tce_ceiling: float = Field(
        25.0, gt=0, description="Raise `hourly_ceiling` when a unit uses more than this many tce in an hour."
    )
    lang: Literal["zh", "en", "both"] = Field("zh", description="Language of alert messages.")
    silent_intervals: int = Field(4, ge=1, description="A meter is silent after this many 15-min intervals.")
    completeness_min_pct: float = Field(90.0, ge=0, le=100, description="Daily data completeness floor (%).")
    spike_factor: float = Field(2.0, ge=1, description="An hour above this × its baseline is a spike.")
    spike_min_tce: float = Field(0.1, ge=0, description="…and at least this many tce above it.")
    spike_baseline_days: int = Field(7, ge=1, description="Days in the moving baseline of each hour of day.")
    day_month_max_deviation_pct: float = Field(
        5.0, ge=0, description="Largest deviation of the days' sum from a monthly report (%)."
    )
    webhook_url: str | None = Field(None, description="POST every alert as JSON here.")
    webhook_secret: SecretStr | None = None
    webhook_secret_file: Path | None = None
    webhook_timeout_s: float = Field(5.0, gt=0)
    routing_file: Path | None = Field(
        None, description="Alert routing file (YAML: channels, regions). Unset: log + webhook_url."
    )
    outbox_file: Path | None = Field(
        None, description="Outbox SQLite file; unset: <state_dir>/alerts/outbox.db."
    )
    fold_window_s: float = Field(300.0, ge=0, description="Repeats of a notification this close are folded.")
    escalate_after_min: float | None = Field(
        30.0, gt=0, description="Escalate a red alert unacknowledged this many minutes (unset: never)."
    )
    retry_initial_s: float = Field(1.0, gt=0, description="First retry wait of a failed delivery (s).")
    retry_max_s: float = Field(300.0, gt=0, description="Cap of the exponential retry wait (s).")
    api_host: str = Field("127.0.0.1", description="Address the alerts HTTP API listens on.")
    api_port: int | None = Field(None, ge=0, le=65535, description="Alerts HTTP API port; unset: no API.")
    api_token: SecretStr | None = None
    api_token_file: Path | None = None


class GrafanaSettings(_SecretFiles):
    """The Grafana that `energymon grafana push` provisions over its HTTP API."""

    url: str | None = Field(None, description="e.g. http://grafana:3000; required by `grafana push`.")
    token: SecretStr | None = Field(None, description="Service-account token (Editor or Admin).")
    token_file: Path | None = None
    folder: str = Field("energymon", description="Title of the folder the dashboards go into.")
    folder_uid: str = Field("energymon", description="Stable uid of that folder.")
    datasource_name: str = Field("energymon InfluxDB", description="Name of the InfluxDB datasource.")
    influx_url: str | None = Field(
        None, description="InfluxDB URL as Grafana's server reaches it. Unset: the influx url setting."
    )
    timeout_s: float = Field(10.0, gt=0, description="Timeout of one API request (s).")


class SimulatorSettings(BaseModel):
    """The built-in simulated fleet."""

    units: int = Field(20, ge=1)
    seed: int = 2026
    scan_interval_s: float = Field(1.0, gt=0, description="Real seconds between two scans of a unit.")
    history: Literal["year", "none"] = Field(
        "year",
        description=(
            "year: first send this year's history, one scan per unit per day at 00:00 China time from "
            "1 January up to the minute backfill, so quotas have a year to date; none: no daily history."
        ),
    )
    backfill_s: int = Field(
        3600, ge=0, description="History sent at start-up (after the daily history), one scan per minute."
    )
    registry_file: Path | None = Field(
        None,
        description=(
            "Registry file or directory the simulator publishes (units it does not describe get a bare "
            "record). Unset: deploy/registry/simulator.yaml of the source tree, when it exists and "
            "the seed is 2026 (the fleet it describes)."
        ),
    )


class LocalStackSettings(BaseModel):
    """Ports of the servers `energymon up` starts itself (used only when they are not configured)."""

    broker_port: int = Field(19092, ge=0, le=65535, description="0 = any free port.")
    influx_port: int = Field(18086, ge=0, le=65535, description="0 = any free port.")


class Settings(BaseSettings):
    """Everything energymon can be told. See README.md for each setting."""

    model_config = SettingsConfigDict(
        env_prefix="ENERGYMON_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    state_dir: Path = Field(Path(".energymon"), description="Tables, InfluxDB data, logs, stats.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    kafka: KafkaSettings = KafkaSettings()
    influx: InfluxSettings = InfluxSettings()
    stream: StreamSettings = StreamSettings()
    alerts: AlertSettings = AlertSettings()
    simulator: SimulatorSettings = SimulatorSettings()
    grafana: GrafanaSettings = GrafanaSettings()
    local: LocalStackSettings = LocalStackSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        toml_file = os.environ.get("ENERGYMON_CONFIG_FILE")
        if toml_file:
            if not Path(toml_file).is_file():
                raise ValueError(f"ENERGYMON_CONFIG_FILE={toml_file}: no such file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        sources.append(file_secret_settings)
        return tuple(sources)

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain JSON-able data with every secret replaced by a mask."""
        masked: dict[str, Any] = _mask(self.model_dump(mode="python"))
        return masked


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, Path):
        return str(value)
    return value


def load() -> Settings:
    """Read the settings from the environment (and the files it names)."""
    return Settings()
