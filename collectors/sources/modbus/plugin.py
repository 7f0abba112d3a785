"""Modbus source: reads register maps from the devices behind one gateway every ``interval_s``.

Three transports, one register map format (``config.py``): ``modbus_tcp`` (MBAP framing over TCP),
``modbus_rtu_over_tcp`` (RTU frames over a TCP socket: serial device servers / transparent
gateways) and ``modbus_rtu`` (RTU over a local serial line, pyserial). A scan reads every device in
turn; one that fails (after its retries) does not stop the others, and the scan raises
:class:`ScanError` naming the gateway and each failed device, carrying what the others answered.
"""

from __future__ import annotations

import asyncio
from typing import get_args

from collectors.sources.base import Emit, Source, SourceError, SourceReading, run_polled
from collectors.sources.context import SourceContext
from collectors.sources.modbus.config import Config, Device, ModbusType
from collectors.sources.modbus.plan import Request, plan
from collectors.sources.modbus.transport import connect, make_client, read_registers

#: ("modbus_tcp", "modbus_rtu", "modbus_rtu_over_tcp")
SOURCE_TYPES: tuple[str, ...] = get_args(ModbusType)

__all__ = ["SOURCE_TYPES", "Config", "ModbusSource", "ScanError", "create"]


class ScanError(SourceError):
    """A scan in which some devices or points failed. The message names the gateway and every
    failure; ``readings`` holds what was read (``run`` emits them before reporting the error)."""

    def __init__(self, message: str, readings: list[SourceReading]) -> None:
        super().__init__(message)
        self.readings = readings


class ModbusSource:
    """The source of one gateway (see the module docstring)."""

    def __init__(self, config: Config, context: SourceContext) -> None:
        self.name = config.name
        self.config = config
        self._clock = context.clock
        self._client = make_client(config)
        self._plans = [(device, plan(device)) for device in config.devices]

    async def read_once(self, timeout_s: float = 10.0) -> list[SourceReading]:
        """One scan of every device. Devices not started within ``timeout_s`` seconds are skipped
        (and reported); raises SourceError when the gateway cannot be reached, ScanError when some
        devices or points failed."""
        await connect(self._client, self.config)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        readings: list[SourceReading] = []
        failures: list[str] = []
        for device, requests in self._plans:
            if loop.time() > deadline:
                failures.append(f"{device.label}: not read, the scan took over {timeout_s:g} s")
                continue
            await self._read_device(device, requests, readings, failures)
        if failures:
            if not readings and self.config.serial is None:
                self._client.close()  # nothing answered: a half-open connection? reconnect next scan
            raise ScanError(f"{self.config.gateway}: " + "; ".join(failures), readings)
        return readings

    async def _read_device(
        self, device: Device, requests: list[Request], readings: list[SourceReading], failures: list[str]
    ) -> None:
        """Append ``device``'s readings (or failures) to the lists; stop at its first failed request."""
        for request in requests:
            try:
                registers = await read_registers(
                    self._client, device, request.function, request.address, request.count
                )
            except SourceError as exc:
                failures.append(f"{device.label}: {exc}")
                return
            ts_ms = round(self._clock() * 1000)
            for point, value in request.values(registers):
                try:
                    readings.append(point.reading(value, ts_ms))
                except SourceError as exc:
                    failures.append(f"{device.label}: {exc}")

    async def run(self, emit: Emit) -> None:
        """Scan every ``interval_s`` until cancelled; a partial scan's readings are emitted too."""
        await run_polled(_EmitPartial(self, emit), self.config.interval_s, emit)

    async def close(self) -> None:
        """Close the connection to the gateway (or the serial port)."""
        self._client.close()


class _EmitPartial:
    """``source`` for :func:`run_polled`, except that a ScanError's readings are emitted before it is
    raised on (and logged by ``run_polled``)."""

    def __init__(self, source: ModbusSource, emit: Emit) -> None:
        self.name = source.name
        self._source = source
        self._emit = emit

    async def read_once(self, timeout_s: float = 10.0) -> list[SourceReading]:
        try:
            return await self._source.read_once(timeout_s)
        except ScanError as exc:
            if exc.readings:
                await self._emit(exc.readings)
            raise

    async def run(self, emit: Emit) -> None:
        await self._source.run(emit)

    async def close(self) -> None:
        await self._source.close()


def create(config: Config, context: SourceContext) -> Source:
    """The source for ``config`` (connects on its first scan)."""
    return ModbusSource(config, context)
