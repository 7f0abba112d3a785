"""Register data types: how many 16-bit registers a value takes and how to decode them.

Modbus sends each register big-endian (high byte first) and says nothing about values wider than one
register. Meters differ on both: ``byte_order`` is the order of the two bytes inside each register,
``word_order`` the order of the registers of a 32/64-bit value ("big": most significant register
first, at the lowest address). Decoding uses pymodbus's ``convert_from_registers`` (which handles the
word order) after swapping the bytes of each register when ``byte_order`` is "little".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pymodbus.client.mixin import ModbusClientMixin

RegisterType = Literal["u16", "i16", "u32", "i32", "u64", "i64", "float32", "float64"]
Order = Literal["big", "little"]

_DT = ModbusClientMixin.DATATYPE
_DATATYPES: dict[str, ModbusClientMixin.DATATYPE] = {
    "u16": _DT.UINT16,
    "i16": _DT.INT16,
    "u32": _DT.UINT32,
    "i32": _DT.INT32,
    "u64": _DT.UINT64,
    "i64": _DT.INT64,
    "float32": _DT.FLOAT32,
    "float64": _DT.FLOAT64,
}

#: The largest register address (addresses are 0-based protocol addresses, 0…65535).
MAX_ADDRESS = 0xFFFF


def width(type_: RegisterType) -> int:
    """How many 16-bit registers a value of ``type_`` takes (1, 2 or 4)."""
    return int(_DATATYPES[type_].value[1])


def _swap_bytes(register: int) -> int:
    """``register`` with its high and low byte exchanged."""
    return ((register & 0xFF) << 8) | (register >> 8)


def decode(registers: Sequence[int], type_: RegisterType, byte_order: Order, word_order: Order) -> float:
    """The value of ``type_`` held in ``registers`` (exactly ``width(type_)`` of them, as read)."""
    if len(registers) != width(type_):
        raise ValueError(f"{type_} needs {width(type_)} registers, got {len(registers)}")
    regs = [_swap_bytes(r) for r in registers] if byte_order == "little" else list(registers)
    value = ModbusClientMixin.convert_from_registers(regs, _DATATYPES[type_], word_order=word_order)
    if not isinstance(value, int | float):  # pragma: no cover - numeric DATATYPEs give scalars
        raise TypeError(f"{type_}: unexpected decoded value {value!r}")
    return float(value)
