"""Settings: environment variables prefixed ``ENERGYMON_`` (nested with ``__``), an optional ``.env``
file and an optional TOML file named by ``ENERGYMON_CONFIG_FILE``.

Precedence, highest first: environment, ``.env``, TOML file, defaults.
Examples: ``ENERGYMON_KAFKA__BOOTSTRAP_SERVERS=broker1:9092,broker2:9092``,
``ENERGYMON_INFLUX__PASSWORD_FILE=/run/secrets/influx``.

A secret (``*_password``, ``*_secret``, ``*_token``; each a SecretStr) comes from the environment
(or ``.env``) or from the file named by its ``*_file`` setting (e.g. a Docker/Kubernetes secret or a
systemd credential), never from the TOML file, which refuses them. ``energymon config`` prints secrets
masked, and :func:`load` keeps them out of the process's logs (:mod:`energymon.redact`).

Kafka security (SASL PLAIN/SCRAM, TLS with a CA, client certificate and host-name check) lives in
:class:`KafkaSettings`, the one place every Kafka client of energymon takes its options from.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from energymon import redact
from energymon.redact import Redacted

MASK = redact.MASK


class _SecretFiles(BaseModel):
    """Fills every unset secret ``<name>`` from the file named by its ``<name>_file`` setting.
    Validation errors never show the input (it may hold a secret)."""

    model_config = ConfigDict(hide_input_in_errors=True)

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


class KafkaTlsError(RuntimeError):
    """A broker that does not complete a TLS handshake with the configured settings (not a TLS
    listener, an untrusted certificate, a name mismatch)."""


class KafkaSettings(_SecretFiles):
    """Where the broker is and how to talk to it.

    Every Kafka client energymon makes gets its connection and security options from here:
    kafka-python clients through :meth:`kafka_python_options`, the Faust worker (aiokafka) through
    ``streams.app.broker_credentials`` built on :meth:`ssl_context` and :meth:`sasl_credentials`.
    """

    bootstrap_servers: str | None = Field(
        None,
        description="Comma-separated host:port list. Unset: `energymon up` starts a local tansu broker.",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism; unset with a SASL protocol: PLAIN."
    )
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    ssl_cafile: Path | None = Field(
        None, description="CA bundle (PEM) the broker's certificate must chain to; unset: the system's CAs."
    )
    ssl_certfile: Path | None = Field(None, description="Client certificate (PEM) for mutual TLS.")
    ssl_keyfile: Path | None = Field(None, description="Its private key (PEM) unless the certificate has it.")
    ssl_password: SecretStr | None = Field(None, description="Password of an encrypted client key.")
    ssl_password_file: Path | None = None
    ssl_check_hostname: bool = Field(
        True, description="Require the broker's certificate to name the host connected to."
    )
    ssl_handshake_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Longest wait for a broker's TLS handshake before a client is made (KafkaTlsError).",
    )
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

    @model_validator(mode="after")
    def _consistent_security(self) -> KafkaSettings:
        """SASL settings only with a SASL protocol (and complete), TLS files only with a TLS one: a
        setting the protocol would ignore is an error, never a silent plaintext connection."""
        protocol = self.security_protocol
        sasl_given = [n for n in ("sasl_mechanism", "sasl_username", "sasl_password") if getattr(self, n)]
        if protocol.startswith("SASL_"):
            missing = [n for n in ("sasl_username", "sasl_password") if not getattr(self, n)]
            if missing:
                raise ValueError(f"security_protocol {protocol} needs {' and '.join(missing)}")
        elif sasl_given:
            raise ValueError(
                f"{', '.join(sasl_given)} set but security_protocol is {protocol}: the broker would get "
                "no credentials (use SASL_SSL or SASL_PLAINTEXT)"
            )
        tls_given = [
            n for n in ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password") if getattr(self, n)
        ]
        if tls_given and not self.tls:
            raise ValueError(
                f"{', '.join(tls_given)} set but security_protocol is {protocol}: the connection would "
                "not be encrypted (use SSL or SASL_SSL)"
            )
        if (self.ssl_keyfile or self.ssl_password) and not self.ssl_certfile:
            raise ValueError("ssl_keyfile and ssl_password need ssl_certfile (the client certificate)")
        return self

    @property
    def tls(self) -> bool:
        """Whether connections are encrypted (SSL or SASL_SSL)."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    def servers(self) -> str:
        """The bootstrap servers; raises a clear error when none are configured."""
        if not self.bootstrap_servers:
            raise RuntimeError(
                "no Kafka broker configured: set ENERGYMON_KAFKA__BOOTSTRAP_SERVERS "
                "(or run `energymon up`, which starts a local one)"
            )
        return self.bootstrap_servers

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of every client (None without TLS): TLS 1.2 or newer, the broker's
        certificate verified against ``ssl_cafile`` (else the system's CAs) and, unless
        ``ssl_check_hostname`` is off, its name; the client certificate when one is set. A file that
        cannot be used raises ValueError naming its setting."""
        if not self.tls:
            return None
        try:
            context = ssl.create_default_context(cafile=str(self.ssl_cafile) if self.ssl_cafile else None)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"kafka ssl_cafile {self.ssl_cafile}: {_reason(exc)}") from None
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile:
            password = self.ssl_password.get_secret_value() if self.ssl_password else None
            try:
                context.load_cert_chain(
                    str(self.ssl_certfile), str(self.ssl_keyfile) if self.ssl_keyfile else None, password
                )
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(
                    f"kafka ssl_certfile {self.ssl_certfile} / ssl_keyfile {self.ssl_keyfile}: "
                    f"{_reason(exc)} (a wrong ssl_password?)"
                ) from None
        return context

    def sasl_credentials(self) -> tuple[str, str, Redacted] | None:
        """(mechanism, username, password) with a SASL protocol, else None; the password is
        :class:`~energymon.redact.Redacted` (masked in reprs)."""
        if not self.security_protocol.startswith("SASL_") or not self.sasl_password:
            return None
        return (
            self.sasl_mechanism or "PLAIN",
            self.sasl_username or "",
            Redacted(self.sasl_password.get_secret_value()),
        )

    def check_tls(self, context: ssl.SSLContext | None = None) -> None:
        """With TLS, complete a handshake with the first bootstrap server that accepts a connection
        within ``ssl_handshake_timeout_s``; :class:`KafkaTlsError` when it fails. kafka-python 3.0
        waits for ever on a listener that never answers the handshake (a plaintext one on tansu), so
        every client is made only after this check. Servers that refuse the connection or cannot be
        reached are skipped: the clients retry those themselves."""
        context = context or self.ssl_context()
        if context is None:
            return
        for server in self.servers().split(","):
            host, _, port = server.strip().rpartition(":")
            host = host.strip("[]")
            try:
                sock = socket.create_connection((host, int(port)), timeout=self.ssl_handshake_timeout_s)
            except (OSError, ValueError):
                continue
            try:
                with context.wrap_socket(sock, server_hostname=host):
                    return
            except ssl.SSLCertVerificationError as exc:
                raise KafkaTlsError(
                    f"Kafka broker {server}: its TLS certificate is not accepted: {exc.verify_message} "
                    "(check ssl_cafile and ssl_check_hostname)"
                ) from None
            except TimeoutError:
                raise KafkaTlsError(
                    f"Kafka broker {server}: no TLS handshake within {self.ssl_handshake_timeout_s:g} s: "
                    f"is it a TLS listener? (security_protocol is {self.security_protocol})"
                ) from None
            except (ssl.SSLError, OSError) as exc:
                raise KafkaTlsError(
                    f"Kafka broker {server}: TLS handshake failed: {_reason(exc)}: is it a TLS listener "
                    f"that accepts this client? (security_protocol is {self.security_protocol})"
                ) from None
            finally:
                sock.close()

    def kafka_python_options(self) -> dict[str, Any]:
        """Connection and security options for every kafka-python client (producer, consumer,
        admin). With TLS the broker's handshake is checked first (:meth:`check_tls`)."""
        opts: dict[str, Any] = {
            "bootstrap_servers": self.servers().split(","),
            "security_protocol": self.security_protocol,
        }
        sasl = self.sasl_credentials()
        if sasl is not None:
            opts["sasl_mechanism"], opts["sasl_plain_username"], opts["sasl_plain_password"] = sasl
        context = self.ssl_context()
        if context is not None:
            self.check_tls(context)
            opts["ssl_context"] = context
        return opts


def _reason(exc: BaseException) -> str:
    """An OS or TLS error in a few words (its reason or strerror, else its text)."""
    return str(getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc) or type(exc).__name__


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
    snapshot_every: int = Field(
        32,
        ge=1,
        description=(
            "Write a unit's full snapshot every this many batches that touch it; in between, a log "
            "record of the batch's raw messages (replayed on restart: at most this many minus one)."
        ),
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
        hide_input_in_errors=True,
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
            sources.append(_TomlWithoutSecrets(settings_cls, toml_file=toml_file))
        sources.append(file_secret_settings)
        return tuple(sources)

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain JSON-able data with every secret replaced by a mask."""
        masked: dict[str, Any] = _mask(self.model_dump(mode="python"))
        return masked

    def secret_values(self) -> list[str]:
        """The value of every secret that is set (to keep them out of logs)."""
        return [secret.get_secret_value() for secret in _secrets_of(self)]


def secret_fields(model: type[BaseModel]) -> list[str]:
    """The names of ``model``'s secret (SecretStr) fields."""
    return [
        name
        for name, field in model.model_fields.items()
        if field.annotation is SecretStr or SecretStr in get_args(field.annotation)
    ]


def _secrets_of(model: BaseModel) -> Iterator[SecretStr]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _secrets_of(value)
        elif isinstance(value, SecretStr):
            yield value


class _TomlWithoutSecrets(TomlConfigSettingsSource):
    """The TOML config file, which may not hold secrets: a config file gets copied, committed and
    shown around; secrets come from the environment or ``*_file`` settings."""

    def __call__(self) -> dict[str, Any]:
        data: dict[str, Any] = super().__call__()
        found = [
            f"[{section}] {name}"
            for section, values in data.items()
            if isinstance(values, dict) and section in Settings.model_fields
            for name in secret_fields(_section_model(section))
            if name in values
        ]
        if found:
            raise ValueError(
                f"{os.environ.get('ENERGYMON_CONFIG_FILE')}: secrets may not be written in the config file "
                f"({', '.join(found)}): give each as an environment variable (ENERGYMON_<SECTION>__<NAME>) "
                "or as <name>_file naming a file that holds it"
            )
        return data


def _section_model(section: str) -> type[BaseModel]:
    annotation = Settings.model_fields[section].annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else BaseModel


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, Path):
        return str(value)
    return value


def load() -> Settings:
    """Read the settings from the environment (and the files it names), and keep their secrets out of
    this process's logs (:mod:`energymon.redact`)."""
    settings = Settings()
    redact.register(settings.secret_values())
    redact.install()
    return settings
