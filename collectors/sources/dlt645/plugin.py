"""The ``dlt645`` source: DL/T 645-2007 electricity meters on one bus (a TCP gateway or a serial
line), polled every ``interval_s``; each configured DI of each meter becomes one reading."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from collectors.sources.base import Emit, MeterPoint, SourceConfig, SourceError, SourceReading, run_polled
from collectors.sources.context import SourceContext
from collectors.sources.dlt645.client import Dlt645Client, MeterTimeout
from collectors.sources.dlt645.frame import KNOWN_FORMATS, DataFormat, FrameError, normalise_di
from collectors.sources.dlt645.link import Link, SerialLink, TcpLink

SOURCE_TYPES = ("dlt645",)
log = logging.getLogger("energymon.collect.dlt645")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TcpGateway(_Strict):
    """A transparent serial-to-TCP gateway."""

    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)


class SerialLine(_Strict):
    """A local RS-485 line (``port``: a device or a pyserial URL). DL/T 645 default: 2400 8E1."""

    port: str = Field(min_length=1)
    baudrate: int = Field(2400, gt=0)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1


class Point(MeterPoint):
    """A DI to read and the MeterPoint its value becomes. ``length`` (BCD bytes), ``decimals`` and
    ``signed`` default to the DI's known format and are required for other DIs."""

    di: str
    length: int | None = Field(None, ge=1, le=8)
    decimals: int | None = Field(None, ge=0, le=8)
    signed: bool | None = None

    @field_validator("di")
    @classmethod
    def _di(cls, v: str) -> str:
        return normalise_di(v)

    @model_validator(mode="after")
    def _format_known(self) -> Point:
        if self.di not in KNOWN_FORMATS and (self.length is None or self.decimals is None):
            raise ValueError(f"DI {self.di} has no known format: give length and decimals")
        return self

    @property
    def format(self) -> DataFormat:
        """The DI's value format, the known one overridden by what the config gives."""
        known = KNOWN_FORMATS.get(self.di, DataFormat(0, 0))
        return DataFormat(
            self.length if self.length is not None else known.length,
            self.decimals if self.decimals is not None else known.decimals,
            self.signed if self.signed is not None else known.signed,
        )


class Meter(_Strict):
    """One meter on the bus: its 12-digit address and the DIs to read; a ``unit_id`` here is the
    default of its points."""

    address: str = Field(pattern=r"^\d{12}$")
    points: list[Point] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _unit_id_for_points(cls, data: Any) -> Any:
        if isinstance(data, dict) and "unit_id" in data and isinstance(data.get("points"), list):
            unit_id, data = data["unit_id"], {k: v for k, v in data.items() if k != "unit_id"}
            data["points"] = [{"unit_id": unit_id, **p} if isinstance(p, dict) else p for p in data["points"]]
        return data


class Config(SourceConfig):
    """A bus of DL/T 645 meters: ``tcp`` or ``serial``; ``timeout_s`` per attempt, ``retries``
    further attempts per DI; ``preamble``: FE wake-up bytes before each request."""

    type: Literal["dlt645"]
    tcp: TcpGateway | None = None
    serial: SerialLine | None = None
    timeout_s: float = Field(2.0, gt=0, le=60)
    retries: int = Field(2, ge=0, le=10)
    preamble: int = Field(4, ge=0, le=8)
    meters: list[Meter] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_link(self) -> Config:
        if (self.tcp is None) == (self.serial is None):
            raise ValueError("give exactly one of tcp (a gateway) and serial (a local line)")
        addresses = [m.address for m in self.meters]
        if len(set(addresses)) != len(addresses):
            raise ValueError("a meter address is listed twice")
        ids = [(p.unit_id, p.meter_id) for m in self.meters for p in m.points]
        if len(set(ids)) != len(ids):
            raise ValueError("a (unit_id, meter_id) is read twice")
        return self


def _link(config: Config) -> Link:
    if config.tcp is not None:
        return TcpLink(config.tcp.host, config.tcp.port)
    assert config.serial is not None  # the validator makes sure
    line = config.serial
    return SerialLink(line.port, line.baudrate, line.bytesize, line.parity, line.stopbits)


class Dlt645Source:
    """Reads every configured DI of every meter, one after the other, once per scan. A meter that
    doesn't answer is given up for the rest of the scan after its retries; one DI the meter refuses
    (D1H) costs only that reading. Per-reading errors are logged and kept in ``last_errors``; a
    scan raises SourceError only when nothing at all was read."""

    def __init__(self, config: Config, context: SourceContext) -> None:
        self.name = config.name
        self.config = config
        self._clock = context.clock
        self._client = Dlt645Client(
            _link(config), timeout_s=config.timeout_s, retries=config.retries, preamble=config.preamble
        )
        self.last_errors: list[str] = []

    async def read_once(self, timeout_s: float = 10.0) -> list[SourceReading]:
        """One scan of all meters within ``timeout_s`` s."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        readings: list[SourceReading] = []
        errors: list[str] = []
        for meter in self.config.meters:
            readings += await self._read_meter(meter, deadline, errors)
        self.last_errors = errors
        for error in errors:
            log.warning("source %s: %s", self.name, error)
        if errors and not readings:
            raise SourceError(f"{self.name}: nothing read: {'; '.join(errors)}")
        return readings

    async def _read_meter(self, meter: Meter, deadline: float, errors: list[str]) -> list[SourceReading]:
        readings: list[SourceReading] = []
        for point in meter.points:
            budget_s = deadline - asyncio.get_running_loop().time()
            try:
                value = await self._client.read(meter.address, point.di, point.format, budget_s)
                readings.append(point.reading(value, round(self._clock() * 1000)))
            except MeterTimeout as exc:
                errors.append(str(exc))
                break  # the meter is silent: don't spend the scan on its other DIs
            except (FrameError, SourceError) as exc:
                errors.append(f"meter {meter.address} DI {point.di}: {exc}")
        return readings

    async def run(self, emit: Emit) -> None:
        """Scan every ``interval_s`` until cancelled."""
        await run_polled(self, self.config.interval_s, emit)

    async def close(self) -> None:
        """Close the connection to the bus."""
        await self._client.close()


def create(config: Config, context: SourceContext) -> Dlt645Source:
    """The plugin's factory."""
    return Dlt645Source(config, context)
