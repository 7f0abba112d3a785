"""A DL/T 645-2007 meter emulator: an asyncio TCP server playing a serial gateway with meters behind it.

It answers 11H read requests for the meters it has (address → DI → value): 91H with the value, D1H
"无请求数据" for a DI it doesn't have, D1H "其他错误" for other control codes. It ignores frames for
other addresses and frames with a bad checksum (as a meter on a shared bus does), accepts the FE
wake-up preamble, and can prefix its replies with one and echo requests (as some gateways do).

    async with MeterEmulator({"123456789012": {"00010000": 12345.67}}) as emulator:
        ...  # connect to 127.0.0.1:emulator.port
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

from collectors.sources.dlt645.frame import (
    KNOWN_FORMATS,
    READ,
    DataFormat,
    FrameError,
    encode_error_reply,
    encode_read_reply,
    parse_frame,
    split_frame,
)

log = logging.getLogger("energymon.dlt645.emulator")

NO_DATA = 0x02
OTHER_ERROR = 0x01


class MeterEmulator:
    """Meters ``meters`` (address → DI → value, DIs formatted by ``formats`` or KNOWN_FORMATS)
    behind one TCP port. ``requests`` records every (address, DI) asked, answered or not
    (DI "" for requests other than a read)."""

    def __init__(
        self,
        meters: dict[str, dict[str, float]],
        *,
        formats: dict[str, DataFormat] | None = None,
        preamble: int = 4,
        echo: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        self.meters = meters
        self.formats = {**KNOWN_FORMATS, **(formats or {})}
        self.preamble = preamble
        self.echo = echo
        self.host = host
        self.port = 0
        self.requests: list[tuple[str, str]] = []
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen on ``host`` and a free port (``self.port``)."""
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop the connections."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._clients):
                writer.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> MeterEmulator:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = bytearray()
        self._clients.add(writer)
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(512):
                buffer += chunk
                while True:
                    raw, used = split_frame(buffer)
                    del buffer[:used]
                    if raw is None:
                        break
                    if self.echo:
                        writer.write(raw)
                    if reply := self.answer(raw):
                        writer.write(reply)
                    await writer.drain()
        self._clients.discard(writer)
        writer.close()

    def answer(self, raw: bytes) -> bytes | None:
        """The reply to one request frame, or None when no meter here would answer it."""
        try:
            frame = parse_frame(raw)
        except FrameError as exc:
            log.debug("ignored a frame: %s", exc)
            return None
        if frame.control & 0x80:  # a reply (another master's echo): not for a meter
            return None
        is_read = frame.control == READ and len(frame.data) == 4
        di = frame.data[::-1].hex().upper() if is_read else ""
        self.requests.append((frame.address, di))
        values = self.meters.get(frame.address)
        if values is None:
            return None
        if not is_read:
            return encode_error_reply(frame.address, OTHER_ERROR, self.preamble)
        if di not in values or di not in self.formats:
            return encode_error_reply(frame.address, NO_DATA, self.preamble)
        return encode_read_reply(frame.address, di, values[di], self.formats[di], self.preamble)
