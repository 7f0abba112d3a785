"""The Modbus source's config: a gateway (TCP host or serial line), its devices and their register maps."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from collectors.sources.base import MeterPoint, SourceConfig
from collectors.sources.modbus.registers import MAX_ADDRESS, Order, RegisterType, width

ModbusType = Literal["modbus_tcp", "modbus_rtu", "modbus_rtu_over_tcp"]
Function = Literal["holding", "input"]

#: Modbus function codes of the two register tables.
FUNCTION_CODES: dict[str, int] = {"holding": 3, "input": 4}
#: The most registers one read request (function 3 or 4) may ask for (Modbus application protocol).
MAX_REQUEST_REGISTERS = 125


class RegisterPoint(MeterPoint):
    """A meter value held in registers: where (``address``, ``function``), how it is encoded
    (``type``, ``byte_order``, ``word_order``) and how it becomes the value in ``uom``
    (``value = raw × scale + offset``)."""

    address: int = Field(ge=0, le=MAX_ADDRESS, description="0-based protocol address of the first register")
    function: Function = "holding"
    type: RegisterType = "u16"
    byte_order: Order = "big"
    word_order: Order = "big"
    scale: float = 1.0
    offset: float = 0.0

    @field_validator("function", mode="before")
    @classmethod
    def _function_code(cls, value: Any) -> Any:
        """Accept the function codes 3 and 4 for ``holding`` and ``input``."""
        names = {code: name for name, code in FUNCTION_CODES.items()}
        return names.get(value, value) if isinstance(value, int) else value

    @model_validator(mode="after")
    def _fits(self) -> Self:
        """A value's registers must all lie within the address range."""
        last = self.address + width(self.type) - 1
        if last > MAX_ADDRESS:
            raise ValueError(
                f"{self.meter_id}: a {self.type} needs {width(self.type)} registers "
                f"({self.address}…{last}), past the last address {MAX_ADDRESS}"
            )
        return self

    @property
    def end(self) -> int:
        """The address after this value's last register."""
        return self.address + width(self.type)


class Device(BaseModel):
    """One Modbus device (slave) behind the gateway: its ``unit`` (device id), how long to wait for
    an answer (``timeout_s``), how often to ask again (``retries``) and its ``points``. A ``unit_id``
    here is the default for points that do not give their own."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=64, description="label in logs and errors")
    unit: int = Field(ge=0, le=255, description="Modbus device id (slave id)")
    timeout_s: float = Field(1.0, gt=0, le=60)
    retries: int = Field(2, ge=0, le=10)
    max_registers: int = Field(
        MAX_REQUEST_REGISTERS, ge=4, le=MAX_REQUEST_REGISTERS, description="registers per read request"
    )
    points: list[RegisterPoint] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _default_unit_id(cls, data: Any) -> Any:
        """Copy a device-level ``unit_id`` into every point that has none."""
        if not isinstance(data, dict) or "unit_id" not in data:
            return data
        data = dict(data)
        unit_id = data.pop("unit_id")
        points = data.get("points")
        if isinstance(points, list):
            data["points"] = [{"unit_id": unit_id, **p} if isinstance(p, dict) else p for p in points]
        return data

    @property
    def label(self) -> str:
        """How errors name this device: ``unit 3`` or ``unit 3 (boiler-house)``."""
        return f"unit {self.unit}" + (f" ({self.name})" if self.name else "")


class SerialLine(BaseModel):
    """An RS-485/RS-232 line (pyserial). Defaults are the Modbus serial-line spec's: 19200 bit/s, 8E1."""

    model_config = ConfigDict(extra="forbid")

    port: str = Field(min_length=1, description="device path, e.g. /dev/ttyUSB0")
    baudrate: int = Field(19200, gt=0)
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8


class Config(SourceConfig):
    """One gateway and its devices. ``modbus_tcp`` and ``modbus_rtu_over_tcp`` need ``host`` (and
    ``port``); ``modbus_rtu`` needs ``serial``."""

    type: ModbusType
    host: str | None = Field(None, min_length=1)
    port: int = Field(502, ge=1, le=65535)
    serial: SerialLine | None = None
    connect_timeout_s: float = Field(3.0, gt=0, le=60, description="seconds to open the connection")
    devices: list[Device] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """The transport fields match ``type``; unit ids and meter ids are unique in this source."""
        if self.type == "modbus_rtu":
            if self.serial is None or self.host is not None:
                raise ValueError("modbus_rtu reads a serial line: give `serial` (and no `host`)")
        elif self.host is None or self.serial is not None:
            raise ValueError(f"{self.type} reads a TCP gateway: give `host` and `port` (and no `serial`)")
        _unique("unit", [d.unit for d in self.devices])
        _unique("meter_id", [(p.unit_id, p.meter_id) for d in self.devices for p in d.points])
        return self

    @property
    def gateway(self) -> str:
        """How errors name the gateway: ``tcp 10.0.0.5:502``, ``rtu-over-tcp …``, ``rtu /dev/ttyUSB0``."""
        if self.serial is not None:
            return f"rtu {self.serial.port}"
        kind = "tcp" if self.type == "modbus_tcp" else "rtu-over-tcp"
        return f"{kind} {self.host}:{self.port}"


def _unique(what: str, values: list[Any]) -> None:
    """Raise ValueError naming the first value that occurs twice."""
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} is configured twice")
        seen.add(value)
