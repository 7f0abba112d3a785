"""The pymodbus client of a gateway and one read request with the device's timeout and retries.

pymodbus (3.16) keeps one timeout and one retry count per client, but a gateway's devices differ, so
the client is built with ``retries=0`` and a timeout above every device's, and each attempt is bounded
here with the device's own ``timeout_s`` (``asyncio.timeout``); a late answer to an abandoned attempt
is dropped by pymodbus (its transaction / device id no longer matches).
"""

from __future__ import annotations

import asyncio

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient, ModbusBaseClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from collectors.sources.base import SourceError
from collectors.sources.modbus.config import Config, Device, Function

#: Exception codes worth asking again for: the device or gateway was busy, not the request wrong.
RETRY_CODES = frozenset(
    {
        ExcCodes.ACKNOWLEDGE,
        ExcCodes.DEVICE_BUSY,
        ExcCodes.GATEWAY_PATH_UNAVIABLE,
        ExcCodes.GATEWAY_NO_RESPONSE,
    }
)
#: Seconds pymodbus's own wait exceeds the longest device timeout (so that ours always ends first).
_MARGIN_S = 1.0


class RequestError(SourceError):
    """One read request failed after the device's retries (the message says why)."""


def make_client(config: Config) -> ModbusBaseClient:
    """The pymodbus asyncio client for ``config``'s gateway (not yet connected; no auto-reconnect:
    every scan reconnects if it must)."""
    timeout = max([config.connect_timeout_s, *(d.timeout_s for d in config.devices)]) + _MARGIN_S
    if config.serial is not None:
        line = config.serial
        return AsyncModbusSerialClient(
            line.port,
            framer=FramerType.RTU,
            baudrate=line.baudrate,
            bytesize=line.bytesize,
            parity=line.parity,
            stopbits=line.stopbits,
            timeout=timeout,
            retries=0,
            reconnect_delay=0,
        )
    assert config.host is not None  # Config guarantees a host for the TCP types
    framer = FramerType.SOCKET if config.type == "modbus_tcp" else FramerType.RTU
    return AsyncModbusTcpClient(
        config.host, port=config.port, framer=framer, timeout=timeout, retries=0, reconnect_delay=0
    )


async def connect(client: ModbusBaseClient, config: Config) -> None:
    """Connect ``client`` unless it is connected; SourceError naming the gateway if that fails."""
    if client.connected:
        return
    try:
        async with asyncio.timeout(config.connect_timeout_s):
            ok = await client.connect()
    except TimeoutError:
        ok = False
    if not ok:
        client.close()
        raise SourceError(
            f"{config.gateway}: cannot connect (refused, unreachable or no connection within "
            f"{config.connect_timeout_s:g} s)"
        )


async def read_registers(
    client: ModbusBaseClient, device: Device, function: Function, address: int, count: int
) -> list[int]:
    """``count`` registers from ``address`` of ``device``'s ``function`` table, asking up to
    ``device.retries`` more times after a timeout, a lost connection or a busy answer; raises
    RequestError (not naming the gateway or device: the caller does)."""
    read = client.read_holding_registers if function == "holding" else client.read_input_registers
    what = f"{function} registers {address}…{address + count - 1}"
    attempts = device.retries + 1
    for _ in range(attempts):
        try:
            async with asyncio.timeout(device.timeout_s):
                response = await read(address, count=count, device_id=device.unit)
        except TimeoutError:
            reason = f"no answer within {device.timeout_s:g} s"
            continue
        except ModbusException as exc:  # connection lost / refused while asking
            reason = str(exc)
            continue
        if response.isError():
            code = response.exception_code
            reason = f"exception {code:#04x} ({_code_name(code)})"
            if code in RETRY_CODES:
                continue
            raise RequestError(f"{what}: {reason}")
        if len(response.registers) < count:
            raise RequestError(f"{what}: answered {len(response.registers)} registers")
        return list(response.registers[:count])
    raise RequestError(f"{what}: {reason}, {attempts} attempt{'s' if attempts > 1 else ''}")


def _code_name(code: int) -> str:
    """``ILLEGAL_ADDRESS`` for 2, … (the code in hex when it is not a standard one)."""
    try:
        return ExcCodes(code).name
    except ValueError:
        return "non-standard"
