"""Byte links to a DL/T 645 bus: a TCP gateway (transparent RS-485 ↔ TCP converter) or a serial line.

Both open lazily, send whole frames and hand back whatever bytes arrived; framing is the client's job.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

import serial


class Link(Protocol):
    """A byte pipe to the meters of one bus."""

    @property
    def is_open(self) -> bool: ...

    async def open(self, timeout_s: float) -> None:
        """Connect (raises OSError / TimeoutError)."""
        ...

    async def send(self, data: bytes) -> None:
        """Write ``data`` (raises OSError)."""
        ...

    async def receive(self, timeout_s: float) -> bytes:
        """The bytes that arrive within ``timeout_s`` s (at least one; TimeoutError when none do;
        ConnectionError when the peer closed)."""
        ...

    async def close(self) -> None:
        """Disconnect (idempotent)."""
        ...


class TcpLink:
    """A TCP connection to a serial gateway at ``host:port``."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def __str__(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    @property
    def is_open(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def open(self, timeout_s: float) -> None:
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), timeout_s
        )

    async def send(self, data: bytes) -> None:
        if self._writer is None:
            raise ConnectionError(f"{self} is not connected")
        self._writer.write(data)
        await self._writer.drain()

    async def receive(self, timeout_s: float) -> bytes:
        if self._reader is None:
            raise ConnectionError(f"{self} is not connected")
        chunk = await asyncio.wait_for(self._reader.read(512), timeout_s)
        if not chunk:
            raise ConnectionError(f"{self} closed the connection")
        return chunk

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class SerialLink:
    """A serial line through pyserial (``port``: a device such as ``/dev/ttyUSB0`` or any pyserial
    URL, e.g. ``rfc2217://host:port``); blocking calls run in a worker thread."""

    def __init__(self, port: str, baudrate: int, bytesize: int, parity: str, stopbits: int) -> None:
        self.port = port
        self._settings = {"baudrate": baudrate, "bytesize": bytesize, "parity": parity, "stopbits": stopbits}
        self._serial: serial.SerialBase | None = None

    def __str__(self) -> str:
        return self.port

    @property
    def is_open(self) -> bool:
        return self._serial is not None and self._serial.is_open

    async def open(self, timeout_s: float) -> None:
        self._serial = await asyncio.wait_for(asyncio.to_thread(self._open), timeout_s)

    def _open(self) -> serial.SerialBase:
        return serial.serial_for_url(self.port, timeout=0.1, **self._settings)

    async def send(self, data: bytes) -> None:
        port = self._port()
        port.reset_input_buffer()  # a late reply to an earlier request is of no use now
        await asyncio.to_thread(port.write, data)

    async def receive(self, timeout_s: float) -> bytes:
        port = self._port()
        port.timeout = max(timeout_s, 0.001)
        chunk: bytes = await asyncio.to_thread(lambda: port.read(max(1, port.in_waiting)))
        if not chunk:
            raise TimeoutError(f"nothing from {self} within {timeout_s:.1f} s")
        return chunk

    def _port(self) -> serial.SerialBase:
        if self._serial is None:
            raise ConnectionError(f"{self} is not open")
        return self._serial

    async def close(self) -> None:
        port, self._serial = self._serial, None
        if port is not None:
            await asyncio.to_thread(port.close)
