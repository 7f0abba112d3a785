"""The one interface every source of the site collector implements.

A source reads meters over one protocol and hands what one scan (or one pushed payload) produced to
the agent as a list of :class:`SourceReading`; the agent groups them into one readings message per
unit (ARCHITECTURE.md), writes it to the store-and-forward buffer and sends it on. A source never
talks to Kafka and never buffers: when it returns (or emits) readings, they are the agent's.

Two kinds, one interface:

* **polled** sources (Modbus, DL/T 645, the simulator) read their devices every ``interval_s``:
  :meth:`Source.read_once` is one scan;
* **pushed** sources (MQTT, HTTP push, files) wait for data: :meth:`Source.run` receives it and calls
  ``emit`` for each payload; their ``read_once`` waits at most ``timeout_s`` for the first payload
  (what ``energymon collect check`` prints).

:func:`run_polled` is the loop a polled source's ``run`` uses. Each source package holds the plugin
(``plugin.py``, exporting ``SOURCE_TYPES``, its ``Config`` model and ``create``), a ``README.md``,
a ``sample.yaml`` (the part of a site config for it), its tests and ``testcases/<case>/`` (a config
and the expected readings, one case per bug ever found), as Telegraf keeps its input plugins.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger("energymon.collect")

Kind = Literal["cumulative", "interval", "rate"]


@dataclass(frozen=True, slots=True)
class SourceReading:
    """One meter value as a source read it: for ``unit_id``'s meter ``meter_id``, ``value`` in ``uom``
    of ``energy`` (energy-type code), ``kind`` as in the readings message, taken at ``ts_ms`` (epoch
    ms, UTC: the meter's own time when it gives one, else the collector's clock at the read).
    ``quality`` is ``good`` / ``estimated`` / ``manual`` or None."""

    unit_id: str
    meter_id: str
    energy: str
    kind: Kind
    value: float
    uom: str
    ts_ms: int
    quality: str | None = None

    def to_message_reading(self) -> dict[str, Any]:
        """The reading as an item of a readings message's ``readings`` list."""
        item: dict[str, Any] = {
            "meter_id": self.meter_id,
            "energy": self.energy,
            "kind": self.kind,
            "value": self.value,
            "uom": self.uom,
            "ts": self.ts_ms,
        }
        for name, attribute in (
            ("quality", "quality"),
            ("start", "start_ms"),
            ("event", "event"),
            ("old_value", "old_value"),
        ):
            value = getattr(self, attribute, None)
            if value is not None:
                item[name] = value
        return item


@dataclass(frozen=True, slots=True)
class ForwardedReading(SourceReading):
    """A reading passed on from a readings message (HTTP push, MQTT) with what only such a message
    carries: ``start_ms``, the start of the period an ``interval`` reading covers, and an explicit
    meter swap (``event`` ``meter_swap`` with ``old_value``, the old meter's last register)."""

    start_ms: int | None = None
    event: str | None = None
    old_value: float | None = None


Emit = Callable[[list[SourceReading]], Awaitable[None]]


class SourceError(RuntimeError):
    """A source could not read (device unreachable, bad answer). The agent logs it, counts it in the
    source's status and carries on; the source retries on its next scan."""


class MeterPoint(BaseModel):
    """What every source maps a raw value to: the unit, meter, energy, kind and uom of a reading.
    Source configs extend it with where the value comes from (a register, a JSON path, a column)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    unit_id: str = Field(min_length=1, max_length=64)
    meter_id: str = Field(min_length=1, max_length=128)
    energy: str = Field(min_length=1, max_length=64)
    kind: Kind = "cumulative"
    uom: str = Field(min_length=1, max_length=16)

    def reading(self, value: float, ts_ms: int, quality: str | None = None) -> SourceReading:
        """This point's reading of ``value`` at ``ts_ms`` (raises SourceError for NaN/infinite)."""
        if not math.isfinite(value):
            raise SourceError(f"{self.meter_id}: not a finite value: {value!r}")
        return SourceReading(
            self.unit_id, self.meter_id, self.energy, self.kind, float(value), self.uom, ts_ms, quality
        )


class SourceConfig(BaseModel):
    """Fields every source's config has. ``name`` identifies the source in logs and status (and is
    the ``source`` of the messages it produces); ``type`` picks the plugin."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    type: str
    interval_s: float = Field(60.0, gt=0, description="polled sources: seconds between two scans")


class Source(Protocol):
    """A running source (see the module docstring)."""

    name: str

    async def read_once(self, timeout_s: float = 10.0) -> list[SourceReading]:
        """One scan (polled) or the first payload within ``timeout_s`` (pushed); raises SourceError."""
        ...

    async def run(self, emit: Emit) -> None:
        """Produce readings until cancelled, calling ``emit`` once per scan or payload. Errors of one
        scan are logged (and raised as SourceError to the caller only by ``read_once``)."""
        ...

    async def close(self) -> None:
        """Release connections, sockets, file handles."""
        ...


async def run_polled(source: Source, interval_s: float, emit: Emit) -> None:
    """Scan ``source`` every ``interval_s`` seconds (aligned to the wall clock, so all polled
    sources of a site scan together) and emit each non-empty scan; a failed scan is logged and the
    next one tried on time."""
    while True:
        try:
            readings = await source.read_once(timeout_s=max(1.0, interval_s * 0.8))
        except SourceError as exc:
            log.warning("source %s: %s", source.name, exc)
        else:
            if readings:
                await emit(readings)
        await asyncio.sleep(interval_s - time.time() % interval_s)
