"""The MQTT source's config (README.md, sample.yaml)."""

from __future__ import annotations

import re
import ssl
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from aiomqtt import Wildcard
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from collectors.sources.base import MeterPoint, SourceConfig
from collectors.sources.push import check_secret_source

TsFormat = Literal["epoch_ms", "epoch_s", "iso8601"]

#: ``{1}``, ``{2}``…: the first, second… wildcard level of the topic pattern (see README.md)
PLACEHOLDER = re.compile(r"\{(\d+)\}")
#: a dotted JSON path: ``data.energy``, ``values.0.v`` (a leading ``$.`` is allowed)
PATH = r"^(\$\.)?[^.\s]+(\.[^.\s]+)*$"


class TlsConfig(BaseModel):
    """TLS to the broker: ``ca_file`` (PEM; else the system's CAs), a client certificate
    (``cert_file`` + ``key_file``) if the broker wants one; ``insecure`` skips the check of the
    broker's host name (tests, never production). The files are read when the source is created."""

    model_config = ConfigDict(extra="forbid")

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False

    @model_validator(mode="after")
    def _cert_with_key(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self

    def ssl_context(self) -> ssl.SSLContext:
        """A client context with these files; ValueError names the field of a missing or bad file."""
        field = "tls.ca_file"
        try:
            ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
            if self.cert_file and self.key_file:
                field = "tls.cert_file / tls.key_file"
                ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"{field}: {exc}") from exc
        if self.insecure:
            ctx.check_hostname = False
        return ctx


class TopicFilter(BaseModel):
    """A topic pattern to subscribe to (MQTT wildcards ``+`` and ``#``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = Field(min_length=1, max_length=1024)

    @field_validator("topic")
    @classmethod
    def _valid_pattern(cls, v: str) -> str:
        Wildcard(v)  # ValueError: "Invalid wildcard: …"
        return v

    @property
    def wildcards(self) -> int:
        """How many ``+`` / ``#`` levels the pattern has."""
        return sum(level in ("+", "#") for level in self.topic.split("/"))


class MessageSubscription(TopicFilter):
    """Payloads are readings messages (ARCHITECTURE.md), validated as the stream app does."""

    format: Literal["readings_message"]


class JsonSubscription(MeterPoint, TopicFilter):
    """Payloads are JSON objects: ``value`` (a dotted path) is the reading of this meter point;
    ``ts`` (a path, optional) its time in ``ts_format``, else the collector's clock.
    ``unit_id`` and ``meter_id`` may hold ``{n}``: the topic's level matched by the n-th wildcard."""

    format: Literal["json"]
    value: str = Field(pattern=PATH)
    ts: str | None = Field(None, pattern=PATH)
    ts_format: TsFormat = "epoch_ms"

    @model_validator(mode="after")
    def _placeholders_exist(self) -> JsonSubscription:
        for field in ("unit_id", "meter_id"):
            for n in PLACEHOLDER.findall(getattr(self, field)):
                if not 1 <= int(n) <= self.wildcards:
                    raise ValueError(
                        f"{field}: {{{n}}} but topic {self.topic!r} has {self.wildcards} wildcard level(s)"
                    )
        return self

    @cached_property
    def point(self) -> MeterPoint:
        """The meter point part (placeholders unfilled)."""
        return MeterPoint(**self.model_dump(include=set(MeterPoint.model_fields)))


Subscription = Annotated[MessageSubscription | JsonSubscription, Field(discriminator="format")]


class Config(SourceConfig):
    """One broker connection with its subscriptions. ``client_id`` defaults to
    ``energymon-<site>-<name>``; with ``clean_session: false`` (the default) and ``qos`` ≥ 1 the
    broker keeps what arrives while the collector is away. Reconnects wait ``reconnect_min_s``,
    doubling up to ``reconnect_max_s`` seconds."""

    type: Literal["mqtt"]
    host: str = Field(min_length=1)
    port: int | None = Field(None, ge=1, le=65535, description="default 1883, or 8883 with tls")
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    tls: TlsConfig | None = None
    client_id: str | None = Field(None, min_length=1, max_length=128)
    clean_session: bool = False
    qos: Literal[0, 1, 2] = 1
    keepalive_s: int = Field(60, ge=5, le=3600)
    connect_timeout_s: float = Field(10.0, gt=0, le=120)
    reconnect_min_s: float = Field(1.0, gt=0, le=60)
    reconnect_max_s: float = Field(60.0, gt=0, le=3600)
    subscriptions: list[Subscription] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        check_secret_source(self.password, self.password_file, "password")
        if (self.password or self.password_file) and not self.username:
            raise ValueError("a password needs a username")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s is below reconnect_min_s")
        return self

    @property
    def broker_port(self) -> int:
        """``port``, or MQTT's default for plain / TLS connections."""
        return self.port or (8883 if self.tls else 1883)
