"""One DL/T 645 master on one bus: read a DI from a meter with a timeout and retries.

The bus carries one exchange at a time (a lock serialises callers). Frames that are not the answer
(an echo of the request, another meter's or an earlier request's late reply) are skipped; a bad
checksum or a silent meter fails the attempt and the request is sent again, up to ``retries`` more
times; a D1H error reply is final (the meter answered).
"""

from __future__ import annotations

import asyncio
import logging

from collectors.sources.dlt645.frame import (
    ChecksumError,
    DataFormat,
    UnexpectedFrame,
    decode_reply,
    encode_read,
    split_frame,
)
from collectors.sources.dlt645.link import Link

log = logging.getLogger("energymon.collect.dlt645")


class MeterTimeout(TimeoutError):
    """A meter gave no usable reply in any attempt."""


class Dlt645Client:
    """Reads meters over ``link``: ``timeout_s`` per attempt, ``retries`` further attempts, each
    request preceded by ``preamble`` FE wake-up bytes."""

    def __init__(self, link: Link, *, timeout_s: float, retries: int, preamble: int) -> None:
        self.link = link
        self.timeout_s = timeout_s
        self.retries = retries
        self.preamble = preamble
        self._lock = asyncio.Lock()

    async def read(self, address: str, di: str, fmt: DataFormat, budget_s: float | None = None) -> float:
        """``di``'s value from the meter at ``address``; all attempts together take at most
        ``budget_s`` s. Raises MeterTimeout, ErrorReply, FrameError (a reply that can't be decoded)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (budget_s if budget_s is not None else float("inf"))
        request = encode_read(address, di, self.preamble)
        attempts, reason = 0, "scan time budget used up"
        async with self._lock:
            while attempts <= self.retries:
                timeout_s = min(self.timeout_s, deadline - loop.time())
                if timeout_s <= 0:
                    reason = "scan time budget used up"
                    break
                attempts += 1
                try:
                    return await self._exchange(request, address, di, fmt, timeout_s)
                except (TimeoutError, ChecksumError) as exc:
                    reason = str(exc) or f"no reply within {timeout_s:.1f} s"
                except OSError as exc:  # connection refused / reset / closed: reconnect next attempt
                    reason = f"{self.link}: {exc}"
                    await self.link.close()
        raise MeterTimeout(f"meter {address} DI {di}: no valid reply after {attempts} attempt(s): {reason}")

    async def _exchange(
        self, request: bytes, address: str, di: str, fmt: DataFormat, timeout_s: float
    ) -> float:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        if not self.link.is_open:
            try:
                await self.link.open(timeout_s)
            except TimeoutError as exc:
                raise ConnectionError(f"connecting took over {timeout_s:.1f} s") from exc
        await self.link.send(request)
        buffer = bytearray()
        while True:
            raw, used = split_frame(buffer)
            del buffer[:used]
            if raw is None:
                buffer += await self.link.receive(deadline - loop.time())
                continue
            try:
                return decode_reply(raw, fmt, address=address, di=di).value
            except UnexpectedFrame as exc:
                log.debug("%s: skipped a frame: %s", self.link, exc)

    async def close(self) -> None:
        """Close the link."""
        await self.link.close()
