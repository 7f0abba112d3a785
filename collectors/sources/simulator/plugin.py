"""Source plugin ``simulator``: scans a deterministic simulated fleet (:class:`collectors.simulator.Fleet`)
every ``interval_s`` seconds, as a polled field source would scan its meters.

The reference for every other plugin: ``SOURCE_TYPES``, a ``Config`` (a :class:`SourceConfig` with a
``Literal`` type) and ``create(config, context) -> Source``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from collectors.simulator import EPOCH_MS, Fleet, SimUnit
from collectors.sources.base import Emit, SourceConfig, SourceError, SourceReading, run_polled
from collectors.sources.context import SourceContext

SOURCE_TYPES: tuple[str, ...] = ("simulator",)


class Config(SourceConfig):
    """``units`` simulated units of the fleet of ``seed`` (ids ``sim-<industry>-<nnn>``), or only
    those listed in ``unit_ids``; scanned every ``interval_s`` seconds."""

    type: Literal["simulator"]
    units: int = Field(4, ge=1, le=10_000)
    seed: int = 2026
    unit_ids: list[str] | None = Field(None, min_length=1, description="scan only these units")


class SimulatorSource:
    """A polled source over a :class:`Fleet`; readings are stamped with ``context.clock``."""

    def __init__(self, config: Config, context: SourceContext) -> None:
        self.name = config.name
        self.config = config
        self._clock = context.clock
        fleet = Fleet.generate(units=config.units, seed=config.seed)
        self._fleet = fleet
        try:
            self._units: tuple[SimUnit, ...] = (
                tuple(fleet.unit(u) for u in config.unit_ids) if config.unit_ids else fleet.units
            )
        except KeyError as exc:
            raise ValueError(
                f"source {config.name}: no unit {exc.args[0]!r} in a fleet of {config.units}"
            ) from exc
        self._last_ms: int | None = None

    async def read_once(self, timeout_s: float = 10.0) -> list[SourceReading]:
        """One scan of every unit at the clock's time (ms); ``interval`` meters report the quantity
        since the previous scan (the first scan: the last ``interval_s``)."""
        t_ms = int(self._clock() * 1000)
        if t_ms < EPOCH_MS:
            raise SourceError(f"clock {t_ms} ms is before the simulator epoch 2020-01-06")
        if self._last_ms is not None and t_ms <= self._last_ms:
            t_ms = self._last_ms + 1  # the clock went back: registers must not
        previous = self._last_ms if self._last_ms is not None else t_ms - int(self.config.interval_s * 1000)
        readings: list[SourceReading] = []
        for unit in self._units:
            message = self._fleet.scan(unit, t_ms, 0, max(previous, EPOCH_MS))
            readings.extend(
                SourceReading(unit.unit_id, r["meter_id"], r["energy"], r["kind"], r["value"], r["uom"], t_ms)
                for r in message["readings"]
            )
        self._last_ms = t_ms
        return readings

    async def run(self, emit: Emit) -> None:
        """Scan every ``interval_s`` until cancelled."""
        await run_polled(self, self.config.interval_s, emit)

    async def close(self) -> None:
        """Nothing to release."""


def create(config: Config, context: SourceContext) -> SimulatorSource:
    """The source for ``config``."""
    return SimulatorSource(config, context)
