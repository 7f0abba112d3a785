"""Buffers line-protocol lines and writes them in batches through a backend, retrying until they land.

``await writer.write(lines)`` returns only when every line is written: the Faust agent awaits it
before its batch's offsets can be committed (streams.app), so an InfluxDB outage delays data and
loses none. Lines wait in a buffer at most ``flush_interval_s`` for more lines (0: not at all); a
buffer of ``batch_size`` lines goes at once, and lines written while a request is in flight go
together in the next one. Each request is retried with exponential backoff while the backend says
InfluxDB is unavailable (timeouts, connection errors, 5xx, 429); a 4xx raises
:class:`~streams.sinks.errors.InfluxWriteRejected` to every caller waiting on that buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Sequence
from typing import Protocol

from streams.sinks.errors import InfluxUnavailable
from streams.sinks.retry import Backoff, retrying


class Transport(Protocol):
    """One backend: sends one batch per call (raising InfluxUnavailable or InfluxWriteRejected)."""

    async def send(self, lines: Sequence[str]) -> None:
        """Write ``lines`` in one request; returns once InfluxDB accepted them."""

    async def close(self) -> None:
        """Release connections and threads."""


class InfluxWriter:
    """Batched writes through a :class:`Transport`; counts ``points_written`` and ``retries``."""

    def __init__(
        self,
        transport: Transport,
        batch_size: int = 5000,
        flush_interval_s: float = 0.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.transport = transport
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.backoff = backoff or Backoff()
        self.points_written = 0
        self.retries = 0
        self._buffer: list[str] = []
        self._done: asyncio.Future[None] | None = None  # resolves when the buffer's lines are written
        self._first_at = 0.0  # loop time the buffer's first line came
        self._wake = asyncio.Event()  # set: send the buffer now
        self._flush_now = False
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, lines: Sequence[str]) -> None:
        """Write ``lines``; returns when they (and any buffered before them) are all written."""
        if not lines:
            return
        loop = asyncio.get_running_loop()
        if self._done is None:
            self._done = loop.create_future()
            self._first_at = loop.time()
        done = self._done
        self._buffer.extend(lines)
        if len(self._buffer) >= self.batch_size:
            self._wake.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush_all())
        # shielded: a caller that gives up does not cancel the write others wait on
        await asyncio.shield(done)

    async def flush(self) -> None:
        """Send what is buffered now, without waiting out the flush interval; returns once written."""
        if self._done is not None:
            self._flush_now = True
            self._wake.set()
            await asyncio.shield(self._done)

    async def _flush_all(self) -> None:
        loop = asyncio.get_running_loop()
        while self._buffer:
            linger = self._first_at + self.flush_interval_s - loop.time()
            if linger > 0 and len(self._buffer) < self.batch_size and not self._flush_now:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), linger)
            lines, done = self._buffer, self._done
            self._buffer, self._done, self._flush_now = [], None, False
            assert done is not None
            try:
                for start in range(0, len(lines), self.batch_size):
                    chunk = lines[start : start + self.batch_size]
                    await retrying(functools.partial(self.transport.send, chunk), self.backoff, self._retried)
                    self.points_written += len(chunk)
            except asyncio.CancelledError:
                done.cancel()
                raise
            except Exception as exc:
                done.set_exception(exc)
            else:
                done.set_result(None)

    def _retried(self, _attempt: int, _exc: InfluxUnavailable) -> None:
        self.retries += 1

    async def close(self) -> None:
        """Write what is buffered, then close the backend."""
        try:
            await self.flush()
        finally:
            await self.transport.close()
