"""``site.yaml``: one site collector's configuration, validated with every problem as
``file:line: field: message`` (the style and helpers of energymon/registry_files.py)::

    site: {id: js-suzhou-steel, name: 苏州某钢铁有限公司}
    kafka: {bootstrap_servers: "kafka1:9092"}   # optional: else the ENERGYMON_KAFKA__* settings
    state_dir: /var/lib/energymon             # optional: else $STATE_DIRECTORY, else .energymon/collector
    buffer: {path: buffer.db, max_mb: 1024, warn_pct: 80, retry_max_s: 30}   # path: inside state_dir
    clock: {max_drift_s: 5}
    sources:
      - {name: sim, type: simulator, interval_s: 60, units: 4}

Each source's fields are those of its plugin's ``Config`` (``collectors/sources/<name>/plugin.py``),
found by its ``type`` through :data:`PLUGIN_MODULES` and imported only when a config uses it.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from collectors.sources.base import Source, SourceConfig
from collectors.sources.context import SourceContext
from energymon.registry_files import Loc, RegistryError, YamlFile, read_yaml
from energymon.settings import KafkaSettings, secret_fields

#: Source ``type`` → the plugin module that handles it.
PLUGIN_MODULES: dict[str, str] = {
    "simulator": "collectors.sources.simulator.plugin",
    "modbus_tcp": "collectors.sources.modbus.plugin",
    "modbus_rtu": "collectors.sources.modbus.plugin",
    "modbus_rtu_over_tcp": "collectors.sources.modbus.plugin",
    "mqtt": "collectors.sources.mqtt.plugin",
    "http_push": "collectors.sources.http.plugin",
    "files": "collectors.sources.files.plugin",
    "dlt645": "collectors.sources.dlt645.plugin",
}
#: Where the state lives when neither ``state_dir`` nor systemd's $STATE_DIRECTORY says.
DEFAULT_STATE_DIR = Path(".energymon/collector")
_EXPECTED = "a site config (`site:`, `sources:` …)"


class ConfigError(RegistryError):
    """A site config that cannot be used; ``problems`` lists every problem, one per line of str()."""


class SiteInfo(BaseModel):
    """The site: ``id`` (prefix of every message's ``source``) and a human ``name``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = ""


class BufferConfig(BaseModel):
    """The store-and-forward buffer: its file (relative: inside the state dir), its bound in MB and
    the fill level (% of the bound) at which it warns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Path("buffer.db")
    max_mb: float = Field(1024.0, gt=0)
    warn_pct: float = Field(80.0, gt=0, le=100)
    retry_max_s: float = Field(30.0, gt=0, description="longest wait between two tries to reach the broker")


class ClockConfig(BaseModel):
    """Largest tolerated difference between the collector's and the broker's clocks, seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_drift_s: float = Field(5.0, gt=0)


class _SiteFile(BaseModel):
    """The fields of the file except ``sources`` (validated per plugin) and ``kafka`` (merged)."""

    model_config = ConfigDict(extra="forbid")

    site: SiteInfo
    kafka: dict[str, Any] | None = None
    state_dir: Path | None = None
    buffer: BufferConfig = BufferConfig()
    clock: ClockConfig = ClockConfig()
    sources: list[Any] = Field(min_length=1)


class SiteConfig(BaseModel):
    """A validated site config (see the module docstring); ``buffer.path`` is absolute or relative
    to the working directory, like ``state_dir``."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    file: Path
    site: SiteInfo
    kafka: KafkaSettings
    state_dir: Path
    buffer: BufferConfig
    clock: ClockConfig
    sources: tuple[SourceConfig, ...]

    def source_id(self, name: str) -> str:
        """The ``source`` of the messages of the source ``name``: ``<site id>/<name>``."""
        return f"{self.site.id}/{name}"


def plugin_module(source_type: str) -> ModuleType:
    """The plugin module of ``source_type``; ValueError with a clear message when there is none."""
    module = PLUGIN_MODULES.get(source_type)
    if module is None:
        raise ValueError(f"unknown source type {source_type!r}: expected one of {', '.join(PLUGIN_MODULES)}")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):
            raise ValueError(f"source type {source_type!r} is not available (no module {module})") from exc
        raise


def create_source(config: SourceConfig, context: SourceContext) -> Source:
    """The running source of ``config``, built by its plugin's ``create``."""
    source: Source = plugin_module(config.type).create(config, context)
    return source


def load_site_config(path: Path, base_kafka: KafkaSettings | None = None) -> SiteConfig:
    """The site config at ``path``; ``base_kafka`` (default: the ENERGYMON_KAFKA__* settings) under
    the file's ``kafka:`` overrides. Raises :class:`ConfigError` with every problem found."""
    f = YamlFile(str(path))
    data, ok = read_yaml(path, f, _EXPECTED)
    if ok and not isinstance(data, dict):
        f.problem((), f"expected {_EXPECTED}, found {type(data).__name__}")
        ok = False
    config = _validate(path, data, f, base_kafka) if ok else None
    if f.problems or config is None:
        raise ConfigError(sorted(f.problems, key=lambda p: p.line or 0))
    return config


def _validate(path: Path, data: dict[str, Any], f: YamlFile, base: KafkaSettings | None) -> SiteConfig | None:
    try:
        top = _SiteFile.model_validate(data)
    except ValidationError as exc:
        _report(f, (), exc)
        top = None
    sources = _sources(data.get("sources"), f)
    kafka = _kafka(data.get("kafka"), f, base)
    if top is None or sources is None or kafka is None:
        return None
    state_dir = top.state_dir or Path(os.environ.get("STATE_DIRECTORY") or DEFAULT_STATE_DIR)
    buffer = top.buffer.model_copy(update={"path": state_dir / top.buffer.path})
    return SiteConfig(
        file=path,
        site=top.site,
        kafka=kafka,
        state_dir=state_dir,
        buffer=buffer,
        clock=top.clock,
        sources=tuple(sources),
    )


def _sources(raw: Any, f: YamlFile) -> list[SourceConfig] | None:
    """Each source validated by its plugin's Config; None when any is invalid."""
    if not isinstance(raw, list):
        return None  # reported by _SiteFile
    out: list[SourceConfig] = []
    names: dict[str, int | None] = {}
    for i, item in enumerate(raw):
        loc: Loc = ("sources", i)
        if not isinstance(item, dict):
            f.problem(loc, "expected a mapping with `name:` and `type:`")
            continue
        name = item.get("name")
        if isinstance(name, str) and name in names:
            f.problem((*loc, "name"), f"duplicate source name {name!r} (first at line {names[name]})")
        elif isinstance(name, str):
            names[name] = f.line_of((*loc, "name"))
        source_type = item.get("type")
        if not isinstance(source_type, str):
            f.problem((*loc, "type"), "missing: the source type (e.g. simulator, modbus_tcp, mqtt)")
            continue
        try:
            model: type[SourceConfig] = plugin_module(source_type).Config
        except ValueError as exc:
            f.problem((*loc, "type"), str(exc))
            continue
        try:
            out.append(model.model_validate(item))
        except ValidationError as exc:
            _report(f, loc, exc)
    return out if len(out) == len(raw) and not f.problems else None


def _kafka(raw: Any, f: YamlFile, base: KafkaSettings | None) -> KafkaSettings | None:
    """``base`` (default: the environment's) with the file's overrides."""
    if base is None:
        from energymon.settings import load

        base = load().kafka
    if not isinstance(raw, dict):
        return base  # None, or reported by _SiteFile
    inline = [name for name in secret_fields(KafkaSettings) if name in raw]
    for name in inline:
        hint = f"use {name}_file or ENERGYMON_KAFKA__{name.upper()}"
        f.problem(("kafka", name), f"no secrets in the site config: {hint}")
    if inline:
        return None
    try:
        return KafkaSettings.model_validate({**base.model_dump(exclude_unset=True), **raw})
    except ValidationError as exc:
        _report(f, ("kafka",), exc)
        return None


def _report(f: YamlFile, loc: Loc, exc: ValidationError) -> None:
    for err in exc.errors(include_url=False):
        f.problem(loc + tuple(err["loc"]), err["msg"])
